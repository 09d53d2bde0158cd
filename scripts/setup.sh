#!/usr/bin/env bash
# Installs what netconform needs on a Debian machine (run as root), then the npm packages.
# Idempotent and quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
# qemu-system-x86 and kmod: the microVM kernel runner (scenarios the host kernel cannot run)
for pkg in iproute2 iptables util-linux gcc libc6-dev busybox-static procps qemu-system-x86 kmod; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if ! command -v node >/dev/null 2>&1; then need+=(nodejs npm); fi
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "setup: Node.js 20 or newer is required (found $(node --version))" >&2
  exit 2
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
fi

# A stock Debian kernel for the microVM runner, unpacked into a cache (never installed).
# NETCONFORM_KERNEL=none skips it; scripts/get-kernel.sh fetches a newer one when asked.
cache=${NETCONFORM_KERNEL_CACHE:-/var/cache/netconform/kernels}
if [ "${NETCONFORM_KERNEL:-}" != none ] && [ ! -e "$cache/current/boot" ]; then
  echo "setup: fetching a guest kernel for the microVM runner"
  # Not fatal: without it (no Debian mirror, e.g. on Ubuntu) such scenarios are skipped, saying why.
  ./scripts/get-kernel.sh >/dev/null || echo "setup: no guest kernel; scenarios needing features the host kernel lacks will be skipped" >&2
fi
