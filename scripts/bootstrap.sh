#!/usr/bin/env bash
# Idempotent bootstrap for a fresh Debian/Ubuntu machine (as root): system packages, the pinned
# Node (npm package "node", installed by npm ci into node_modules/.bin) and binfmt for arm images.
# Quick when everything is already in place: it only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  runc iproute2 nftables iptables iputils-ping procps psmisc curl ca-certificates
  busybox-static attr docker-registry skopeo umoci qemu-user-static binfmt-support
  systemd  # systemd-analyze verify checks the unit install.sh writes (tests/release/install.test.ts)
  debootstrap systemd-container  # tests/release/systemd.test.ts boots systemd in a Debian root
  libstdc++6-arm64-cross  # the arm64 release binary (dynamically linked) runs under qemu-user in tests
)

say() { printf 'bootstrap: %s\n' "$*" >&2; }

if [ "$(id -u)" != 0 ]; then
  say "must run as root (network namespaces, mounts, cgroups and runc need it)"
  exit 1
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts the registry as a system service on :5000; the lab runs its own inside a namespace.
  if command -v systemctl >/dev/null 2>&1; then systemctl disable --now docker-registry >/dev/null 2>&1 || true; fi
fi

# binfmt_misc: mount it where the kernel has it, and enable the qemu handlers so arm64/armhf
# binaries run on x86 (harmless on an ARM host).
if [ -d /proc/sys/fs/binfmt_misc ] && [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || say "binfmt_misc could not be mounted; foreign-arch images will not run"
fi
if [ -e /proc/sys/fs/binfmt_misc/register ]; then
  for h in qemu-aarch64 qemu-arm; do
    [ -e "/proc/sys/fs/binfmt_misc/$h" ] || update-binfmts --enable "$h" >/dev/null 2>&1 || true
  done
fi

# npm ci only when package-lock.json changed since the last install.
stamp=node_modules/.tsswarm-lock.sha256
# patches/ holds small fixes to dependencies (applied by patch-package on install); a new or
# changed patch reinstalls too.
want=$(cat package-lock.json patches/*.patch 2>/dev/null | sha256sum | cut -d' ' -f1)
if [ ! -x node_modules/.bin/node ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "npm install (locked versions)"
  # npm 11 drops other platforms' optional packages (biome, msgpackr-extract) from the lock, which
  # makes `npm ci` refuse it; `npm install --no-save` installs the same locked versions.
  npm install --no-save --no-audit --no-fund --loglevel=error >/dev/null
  echo "$want" > "$stamp"
fi

# The Node binaries the release executables are made of (npm packages node-linux-{x64,arm64} of the
# pinned version, into .cache/release), so that tests/release builds without reaching a registry;
# the arm64 one also runs the agents of linux/arm64 lab nodes (cli/lab/agents.ts).
PATH="$PWD/node_modules/node/bin:$PATH" node scripts/release/build.ts --fetch-node

# The Debian root tests/release/systemd.test.ts boots with systemd-nspawn (built once, ~1 min; that
# test fails naming it when it is missing).
scripts/systemd-rootfs.sh >/dev/null || say "no systemd test root: tests/release/systemd.test.ts will fail"

# tap compiles its plugin set into .tap/plugins; a clean clone has none, and the default set
# loads the ts-node plugin, which our native TypeScript 7 cannot serve. Rebuild when .taprc or
# the installed packages change.
tapstamp=.tap/.tsswarm-taprc.sha256
tapwant=$(cat .taprc "$stamp" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$tapstamp" 2>/dev/null)" != "$tapwant" ]; then
  PATH="$PWD/node_modules/node/bin:$PATH" node_modules/.bin/tap build >/dev/null
  mkdir -p .tap && echo "$tapwant" > "$tapstamp"
fi
