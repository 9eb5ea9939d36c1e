#!/bin/sh
# The minimal Debian root that tests/release/systemd.test.ts boots (systemd as PID 1, under
# systemd-nspawn) to run install.sh and the release binary under the real unit. Built once by
# scripts/bootstrap.sh with debootstrap into .cache/systemd-rootfs/SUITE-KEY (KEY: the suite, the
# packages and REV, so a change rebuilds); tests only read it (they reach no registry).
#   scripts/systemd-rootfs.sh          build it if missing; print its directory
#   scripts/systemd-rootfs.sh --path   print its directory if it is built, else exit 1
set -eu
cd "$(dirname "$0")/.."

SUITE=bookworm
# What install.sh checks for (runc, ip, nft, nsenter from util-linux, which minbase has) and systemd.
PACKAGES=systemd,dbus,runc,iproute2,nftables,ca-certificates
REV=1 # bump when the build below changes
MIRROR=${TSSWARM_DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE=${TSSWARM_SYSTEMD_ROOTFS_CACHE:-$PWD/.cache/systemd-rootfs}

key=$(printf '%s\n' "$SUITE" "$PACKAGES" "$REV" | sha256sum | cut -c1-12)
dir=$CACHE/$SUITE-$key
if [ -f "$dir/.tsswarm-rootfs-complete" ]; then
	echo "$dir"
	exit 0
fi
if [ "${1:-}" = --path ]; then
	echo "no systemd test root at $dir: scripts/bootstrap.sh builds it (scripts/systemd-rootfs.sh)" >&2
	exit 1
fi
command -v debootstrap >/dev/null 2>&1 || {
	echo "systemd-rootfs: debootstrap is not installed (apt-get install debootstrap)" >&2
	exit 1
}

mkdir -p "$CACHE"
tmp=$(mktemp -d "$CACHE/.build-XXXXXX")
trap 'rm -rf --one-file-system "$tmp"' EXIT
start=$(date +%s)
if ! debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$tmp/root" "$MIRROR" >"$tmp/log" 2>&1; then
	tail -n 20 "$tmp/log" >&2
	echo "systemd-rootfs: debootstrap $SUITE from $MIRROR failed" >&2
	exit 1
fi
rm -rf "$tmp/root/var/cache/apt/archives/"*.deb
touch "$tmp/root/.tsswarm-rootfs-complete"
# Another build may have finished first: keep that one.
mv -T "$tmp/root" "$dir" 2>/dev/null || [ -f "$dir/.tsswarm-rootfs-complete" ]
# Older keys are left-overs of earlier revisions.
for old in "$CACHE/$SUITE"-*; do
	[ "$old" = "$dir" ] || rm -rf --one-file-system "$old"
done
echo "systemd-rootfs: built $dir in $(($(date +%s) - start)) s" >&2
echo "$dir"
