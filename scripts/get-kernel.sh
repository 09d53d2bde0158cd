#!/usr/bin/env bash
# Fetches Debian's stock kernel (linux-image-amd64, resolved to the concrete
# linux-image-<release> package) for the microVM kernel runner, unpacks it into a cache folder
# and indexes its modules. Nothing is installed: /boot and /lib/modules stay untouched.
#
#   scripts/get-kernel.sh [--dir CACHE] [--package linux-image-6.1.0-NN-amd64]
#
# Prints the kernel folder to give to `netconform run --kernel` (or NETCONFORM_KERNEL). The
# default cache is /var/cache/netconform/kernels, where the runner also looks by itself
# (through the `current` link). Idempotent: a kernel already unpacked is not fetched again.
set -euo pipefail

cache=${NETCONFORM_KERNEL_CACHE:-/var/cache/netconform/kernels}
pkg=
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) cache=$2; shift 2 ;;
    --package) pkg=$2; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "get-kernel: unknown argument $1" >&2; exit 2 ;;
  esac
done

say() { echo "get-kernel: $*" >&2; }

for tool in apt-get apt-cache dpkg-deb depmod; do
  command -v "$tool" >/dev/null || { say "$tool is missing (apt-get install -y kmod dpkg apt)"; exit 2; }
done

# The meta package names the concrete one, e.g. linux-image-amd64 -> linux-image-6.1.0-56-amd64.
resolve() {
  apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n1
}
if [ -z "$pkg" ]; then
  pkg=$(resolve)
  if [ -z "$pkg" ]; then
    apt-get update -qq
    pkg=$(resolve)
  fi
  [ -n "$pkg" ] || { say "cannot resolve linux-image-amd64 to a kernel package (is a Debian mirror configured?)"; exit 2; }
fi
release=${pkg#linux-image-}
dir="$cache/$release"

if [ -f "$dir/lib/modules/$release/modules.dep" ] && ls "$dir"/boot/vmlinuz-* >/dev/null 2>&1; then
  say "$pkg is already in $dir"
else
  mkdir -p "$cache"
  tmp=$(mktemp -d "$cache/.fetch-XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  say "downloading $pkg"
  (cd "$tmp" && apt-get download -qq "$pkg" 2>/dev/null) || { apt-get update -qq; (cd "$tmp" && apt-get download -qq "$pkg"); }
  say "unpacking into $dir"
  mkdir -p "$tmp/root"
  dpkg-deb -x "$tmp"/*.deb "$tmp/root"
  depmod -b "$tmp/root" "$release"
  rm -rf "$dir"
  mv "$tmp/root" "$dir"
fi
ln -sfn "$release" "$cache/current"
echo "$dir"
