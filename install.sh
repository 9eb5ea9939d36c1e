#!/bin/sh
# Installs the tsswarm release executable on a Debian-like host (amd64 or arm64) and runs it as a
# systemd service; with TSSWARM_JOIN_TOKEN and TSSWARM_JOIN_ADDR set, the node joins a cluster on its
# first start. Checks the binary's SHA-256 and what the host must provide. See README ("Install").
set -eu

usage() {
	cat <<'EOF'
usage: install.sh (--binary FILE | --base-url URL) [options]
       install.sh --uninstall [--purge] [--root DIR]

  --binary FILE      install this file (its SHA256SUMS is looked for beside it, or give --sums)
  --sums FILE        the SHA256SUMS file that names --binary
  --base-url URL     download URL/SHA256SUMS and this host's binary from URL
  --root DIR         install under DIR instead of / (no systemctl, for trying it out or tests)
  --skip-checks      install even if the host lacks something the agent needs (named, as a warning)
  --no-start         write the unit but do not enable or start it
  --uninstall        stop the agent, remove its containers and everything this script wrote;
                     the data dir (images, volumes, state) stays unless --purge
  --purge            with --uninstall: also remove the data dir (refused while containers are mounted)

environment: TSSWARM_JOIN_TOKEN and TSSWARM_JOIN_ADDR (IP:PORT of a manager): join on first start;
TSSWARM_AGENT_ARGS: extra flags for `tsswarm agent` (e.g. --advertise-addr IP --label zone=attic).
EOF
}

say() { printf 'install.sh: %s\n' "$*" >&2; }
die() {
	say "$*"
	exit 1
}

ROOT="" BINARY="" SUMS="" BASE_URL="" SKIP_CHECKS=0 START=1 UNINSTALL=0 PURGE=0
while [ $# -gt 0 ]; do
	case $1 in
	--binary) BINARY=${2:?--binary needs a file}; shift ;;
	--sums) SUMS=${2:?--sums needs a file}; shift ;;
	--base-url) BASE_URL=${2:?--base-url needs a URL}; shift ;;
	--root) ROOT=${2:?--root needs a directory}; shift ;;
	--skip-checks) SKIP_CHECKS=1 ;;
	--no-start) START=0 ;;
	--uninstall) UNINSTALL=1 ;;
	--purge) PURGE=1 ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown argument: $1" ;;
	esac
	shift
done
if [ -n "$ROOT" ]; then
	mkdir -p "$ROOT"
	ROOT=$(cd "$ROOT" && pwd)
	[ "$ROOT" = / ] && ROOT=""
fi

# Everything the installer writes; the manifest lists it so that --uninstall removes exactly that.
BIN=/usr/local/bin/tsswarm
JOIN=/usr/local/lib/tsswarm/first-join
CONF_DIR=/etc/tsswarm
ENV_FILE=$CONF_DIR/tsswarm.env
MANIFEST=$CONF_DIR/installed-files
UNIT=/etc/systemd/system/tsswarm.service
DATA=/var/lib/tsswarm

have_systemd() { [ -z "$ROOT" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }

# ---------------------------------------------------------------------------------------- uninstall
if [ "$UNINSTALL" = 1 ]; then
	[ -f "$ROOT$MANIFEST" ] || die "nothing to uninstall: $ROOT$MANIFEST not found"
	if have_systemd; then
		systemctl disable --now tsswarm.service >/dev/null 2>&1 || true
	fi
	# The agent's containers outlive it by design (KillMode=process, for restarts and upgrades);
	# with the binary gone nothing could remove them. While it is still here, it removes them
	# (their images, volumes and the rest of the data dir stay). Not in a --root dry run.
	if [ -z "$ROOT" ] && [ -x "$BIN" ] && [ -d "$DATA/containers" ]; then
		ids=$("$BIN" ps -aq --no-trunc --data-root "$DATA" 2>/dev/null) || die "could not list this node's containers ($BIN ps -aq); the agent is stopped, nothing else was removed"
		if [ -n "$ids" ]; then
			n=$(printf '%s\n' "$ids" | wc -l)
			say "removing this node's $n container(s) (the data dir keeps images and volumes)"
			# shellcheck disable=SC2086 # one id per word
			"$BIN" rm -f --data-root "$DATA" $ids >/dev/null || die "could not remove the containers; the agent is stopped and its files are still installed (run --uninstall again)"
		fi
	fi
	# Files first, then the directories the install created (deepest first, only when empty).
	files=$(sed -n 's/^f //p' "$ROOT$MANIFEST")
	dirs=$(sed -n 's/^d //p' "$ROOT$MANIFEST" | sort -r)
	for f in $files; do rm -f "$ROOT$f"; done
	rm -f "$ROOT$MANIFEST"
	for d in $dirs; do rmdir "$ROOT$d" 2>/dev/null || true; done
	have_systemd && systemctl daemon-reload
	if [ "$PURGE" = 1 ] && [ -d "$ROOT$DATA" ]; then
		# Container rootfs (overlayfs) and bind mounts live below the data dir: never delete through them.
		if awk -v d="$ROOT$DATA/" '{ if (index($5 "/", d) == 1) found = 1 } END { exit !found }' /proc/self/mountinfo; then
			die "not purging $ROOT$DATA: something is mounted below it (remove the containers first: tsswarm rm -f \$(tsswarm ps -aq))"
		fi
		rm -rf --one-file-system "$ROOT$DATA"
		say "removed $ROOT$DATA"
	elif [ -d "$ROOT$DATA" ]; then
		say "kept the data dir $ROOT$DATA (--purge removes it)"
	fi
	say "uninstalled"
	exit 0
fi

# ------------------------------------------------------------------------------------- host checks
case $(uname -m) in
x86_64 | amd64) ARCH=amd64 ;;
aarch64 | arm64) ARCH=arm64 ;;
armv7l | armv6l) die "this is a 32-bit ARM userland ($(uname -m)): there is no Node 24 for it; see README, 'armv7'" ;;
*) die "unsupported machine $(uname -m): releases exist for amd64 and arm64" ;;
esac

# TSSWARM_CHECK_ROOT: where /proc and /sys are looked for (tests point it at a fake tree).
K=${TSSWARM_CHECK_ROOT:-}
missing=""
need() { missing="$missing
  - $*"; }
kmod() {
	# Loaded, built in, or loadable for the running kernel.
	[ -d "$K/sys/module/$1" ] && return 0
	rel=$(uname -r)
	grep -qs "/$1\.ko" "/lib/modules/$rel/modules.builtin" "/lib/modules/$rel/modules.dep"
}
command -v runc >/dev/null 2>&1 || need "runc (apt-get install runc)"
command -v ip >/dev/null 2>&1 || need "ip (apt-get install iproute2)"
command -v nft >/dev/null 2>&1 || need "nft (apt-get install nftables)"
command -v nsenter >/dev/null 2>&1 || need "nsenter (apt-get install util-linux)"
for ns in mnt net pid ipc uts; do
	[ -e "$K/proc/self/ns/$ns" ] || need "kernel: $ns namespaces"
done
grep -qsw overlay "$K/proc/filesystems" || kmod overlay || need "kernel: overlayfs (CONFIG_OVERLAY_FS)"
kmod vxlan || need "kernel: VXLAN (CONFIG_VXLAN)"
if [ -f "$K/sys/fs/cgroup/cgroup.controllers" ]; then
	for c in cpu memory pids; do
		grep -qsw "$c" "$K/sys/fs/cgroup/cgroup.controllers" || need "kernel: cgroup v2 controller $c$([ "$c" = memory ] && echo ' (Raspberry Pi: add cgroup_enable=memory to /boot/firmware/cmdline.txt and reboot)')"
	done
elif [ -d "$K/sys/fs/cgroup" ]; then
	for c in cpu memory pids; do
		[ -d "$K/sys/fs/cgroup/$c" ] || need "kernel: cgroup v1 controller $c$([ "$c" = memory ] && echo ' (Raspberry Pi: add cgroup_enable=memory to /boot/firmware/cmdline.txt and reboot)')"
	done
else
	need "kernel: cgroups (nothing mounted on /sys/fs/cgroup)"
fi
if [ -n "$missing" ]; then
	if [ "$SKIP_CHECKS" = 1 ]; then
		say "warning: this host lacks what the agent needs:$missing"
	else
		die "this host lacks what the agent needs:$missing
(--skip-checks installs anyway)"
	fi
fi

if [ -n "${TSSWARM_JOIN_TOKEN:-}" ] && [ -z "${TSSWARM_JOIN_ADDR:-}" ]; then
	die "TSSWARM_JOIN_TOKEN is set but TSSWARM_JOIN_ADDR (a manager's IP:PORT) is not"
fi

# ------------------------------------------------------------------------------- binary and check
[ -n "$BINARY" ] || [ -n "$BASE_URL" ] || {
	usage >&2
	die "give --binary FILE or --base-url URL"
}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fetch() {
	if command -v curl >/dev/null 2>&1; then curl -fsSL -o "$2" "$1"
	elif command -v wget >/dev/null 2>&1; then wget -q -O "$2" "$1"
	else die "neither curl nor wget is installed to download $1"; fi
}
if [ -n "$BASE_URL" ]; then
	BASE_URL=${BASE_URL%/}
	fetch "$BASE_URL/SHA256SUMS" "$TMP/SHA256SUMS" || die "could not download $BASE_URL/SHA256SUMS"
	SUMS=$TMP/SHA256SUMS
	name=$(awk -v a="-linux-$ARCH" '{ n = $2; sub(/^\*/, "", n); if (substr(n, length(n) - length(a) + 1) == a) print n }' "$SUMS" | tail -n 1)
	[ -n "$name" ] || die "$BASE_URL/SHA256SUMS names no linux-$ARCH binary"
	fetch "$BASE_URL/$name" "$TMP/$name" || die "could not download $BASE_URL/$name"
	BINARY=$TMP/$name
else
	[ -f "$BINARY" ] || die "--binary $BINARY: no such file"
	[ -n "$SUMS" ] || SUMS=$(dirname "$BINARY")/SHA256SUMS
	[ -f "$SUMS" ] || die "no SHA256SUMS beside $BINARY (give --sums FILE)"
	name=$(basename "$BINARY")
fi
want=$(awk -v n="$name" '{ f = $2; sub(/^\*/, "", f); if (f == n) print $1 }' "$SUMS" | head -n 1)
[ -n "$want" ] || die "$SUMS has no line for $name"
got=$(sha256sum "$BINARY" | cut -d' ' -f1)
[ "$got" = "$want" ] || die "checksum mismatch for $name: SHA256SUMS says $want, the file is $got; not installing"
chmod 0755 "$BINARY" 2>/dev/null || true
version=$("$BINARY" --version) || die "$name does not run on this host"
say "verified $name ($version)"

# --------------------------------------------------------------------------------------- install
: >"$TMP/manifest"
mkdir_p() {
	# Records each directory it creates, so that --uninstall removes those and no other.
	d=$1 todo=""
	while [ ! -d "$ROOT$d" ]; do
		todo="$d $todo"
		d=$(dirname "$d")
	done
	for d in $todo; do
		mkdir -m 0755 "$ROOT$d"
		echo "d $d" >>"$TMP/manifest"
	done
}
# An upgrade keeps the directories the first install recorded.
[ -f "$ROOT$MANIFEST" ] && grep '^d ' "$ROOT$MANIFEST" >>"$TMP/manifest" || true
put() { # put MODE DEST: writes stdin to DEST (atomically: an upgrade may replace a running binary)
	mkdir_p "$(dirname "$2")"
	(umask 077 && cat >"$ROOT$2.tmp")
	chmod "$1" "$ROOT$2.tmp"
	mv -f "$ROOT$2.tmp" "$ROOT$2"
	echo "f $2" >>"$TMP/manifest"
}

put 0755 "$BIN" <"$BINARY"

{
	echo "# tsswarm agent settings, read by $UNIT (written by install.sh)."
	echo "TSSWARM_AGENT_ARGS=\"${TSSWARM_AGENT_ARGS:-}\""
	if [ -n "${TSSWARM_JOIN_TOKEN:-}" ]; then
		echo "TSSWARM_JOIN_TOKEN=$TSSWARM_JOIN_TOKEN"
		echo "TSSWARM_JOIN_ADDR=$TSSWARM_JOIN_ADDR"
	fi
} | put 0600 "$ENV_FILE"

put 0755 "$JOIN" <<'EOF'
#!/bin/sh
# Run by tsswarm.service after the agent starts: joins the cluster once, on the first start, when
# /etc/tsswarm/tsswarm.env names a token. A failed join fails the start, so systemd retries it.
set -eu
[ -n "${TSSWARM_JOIN_TOKEN:-}" ] || exit 0
data=${TSSWARM_DATA_ROOT:-/var/lib/tsswarm}
[ -e "$data/cluster/state.json" ] && exit 0
i=0
until [ -S "$data/api/tsswarm.sock" ]; do
	i=$((i + 1))
	[ $i -le 300 ] || { echo "first-join: no agent socket at $data/api/tsswarm.sock after 60 s" >&2; exit 1; }
	sleep 0.2
done
# The binary installed beside this script (/usr/local/bin/tsswarm).
exec "$(dirname "$0")/../../bin/tsswarm" join --data-root "$data" --token "$TSSWARM_JOIN_TOKEN" "$TSSWARM_JOIN_ADDR"
EOF

put 0644 "$UNIT" <<EOF
# Written by install.sh; install.sh --uninstall removes it.
[Unit]
Description=tsswarm agent
Documentation=https://github.com/tsswarm/tsswarm
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
EnvironmentFile=-$ENV_FILE
ExecStart=$BIN agent --data-root $DATA \$TSSWARM_AGENT_ARGS
ExecStartPost=$JOIN
# Containers and their shims live in the unit's cgroup but must outlive the agent (restarts,
# upgrades): only the agent process is signalled, and the agent manages the sub-cgroups itself.
Delegate=yes
KillMode=process
Restart=always
RestartSec=5
TasksMax=infinity
LimitNOFILE=1048576

[Install]
WantedBy=multi-user.target
EOF

mkdir_p "$CONF_DIR"
sort -u "$TMP/manifest" >"$ROOT$MANIFEST.tmp"
echo "f $MANIFEST" >>"$ROOT$MANIFEST.tmp"
mv -f "$ROOT$MANIFEST.tmp" "$ROOT$MANIFEST"

say "installed $ROOT$BIN ($version) and $ROOT$UNIT"
if have_systemd && [ "$START" = 1 ]; then
	systemctl daemon-reload
	systemctl enable tsswarm.service >/dev/null 2>&1
	# An upgrade: the new binary takes over; KillMode=process leaves the containers running.
	systemctl restart tsswarm.service
	say "started tsswarm.service (journalctl -u tsswarm -f)"
elif [ -z "$ROOT" ]; then
	say "not started (systemd not running, or --no-start): run $BIN agent"
fi
