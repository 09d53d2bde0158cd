#!/usr/bin/env bash
# Fetches the current stock kernel of a Debian suite for the microVM kernel runner, unpacks it
# into a cache folder and indexes its modules. Nothing is installed: /boot, /lib/modules and
# the machine's apt configuration stay untouched (a private sources list, scripts/lib/debian-apt.sh).
#
#   scripts/get-kernel.sh [--suite bookworm|trixie|sid|all] [--dir CACHE] [--package linux-image-R]
#
# bookworm (Debian 12, the default), trixie (13) and sid (unstable) package their kernels
# differently: up to trixie linux-image-R holds boot/vmlinuz-R and the modules; from sid on it
# is a meta package over linux-binary-R (usr/lib/modules/R/vmlinuz), linux-modules-R and
# linux-base-R. Both are unpacked into one layout: CACHE/R/boot/vmlinuz-R and
# CACHE/R/lib/modules/R. CACHE/<suite> links each suite's kernel, CACHE/current the default
# guest kernel (bookworm's once fetched). Prints each kernel folder, for `run --kernel`.
# Idempotent: a kernel already unpacked is not fetched again. Default cache:
# /var/cache/netconform/kernels (NETCONFORM_KERNEL_CACHE).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/debian-apt.sh"

cache=${NETCONFORM_KERNEL_CACHE:-/var/cache/netconform/kernels}
suites=()
pkg=
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) cache=$2; shift 2 ;;
    --suite) suites+=("$2"); shift 2 ;;
    --package) pkg=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "get-kernel: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

say() { echo "get-kernel: $*" >&2; }

for tool in apt-get apt-cache dpkg-deb depmod flock; do
  command -v "$tool" >/dev/null || { say "$tool is missing (apt-get install -y kmod dpkg apt util-linux)"; exit 2; }
done

canonical() {
  case "$1" in
    bookworm|12|debian-12) echo bookworm ;;
    trixie|13|debian-13) echo trixie ;;
    sid|unstable) echo sid ;;
    *) say "unknown suite '$1' (known: bookworm, trixie, sid, all)"; exit 2 ;;
  esac
}
[ ${#suites[@]} -gt 0 ] || suites=(bookworm)
if [ "${suites[*]}" = all ]; then suites=(bookworm trixie sid); fi
if [ -n "$pkg" ] && [ ${#suites[@]} -ne 1 ]; then say "--package names one kernel: give one --suite with it"; exit 2; fi

mkdir -p "$cache"
# Several setups (worktrees, CI steps) may fetch at once: one at a time, each then finds the
# others' kernels in place.
exec 9>"$cache/.lock"
flock 9

# linux-image-amd64 → linux-image-R; the packages that carry R's files (itself, or for the
# split packaging its linux-binary/modules/base-R dependencies).
concrete_image() {
  priv_apt apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n1
}
parts_of() {
  local image=$1 release=${1#linux-image-}
  echo "$image"
  priv_apt apt-cache depends "$image" 2>/dev/null | awk -v r="$release" '$1 == "Depends:" && ($2 == "linux-binary-" r || $2 == "linux-modules-" r || $2 == "linux-base-" r) { print $2 }'
}

fetch_suite() {
  local suite=$1 image=$pkg release dir tmp
  priv_apt_init "$suite" "$cache/.apt/$suite" || { say "cannot read Debian's $suite package lists (is a Debian mirror reachable?)"; return 2; }
  [ -n "$image" ] || image=$(concrete_image)
  [ -n "$image" ] || { say "cannot resolve linux-image-amd64 to a kernel package in $suite"; return 2; }
  release=${image#linux-image-}
  dir="$cache/$release"
  if [ -f "$dir/lib/modules/$release/modules.dep" ] && [ -f "$dir/boot/vmlinuz-$release" ]; then
    say "$suite: $image is already in $dir"
  else
    tmp=$(mktemp -d "$cache/.fetch-XXXXXX")
    # shellcheck disable=SC2064
    trap "rm -rf '$tmp'" EXIT
    mapfile -t parts < <(parts_of "$image")
    say "$suite: downloading ${parts[*]}"
    priv_apt_download "$tmp" "${parts[@]}"
    say "$suite: unpacking into $dir"
    mkdir -p "$tmp/x" "$tmp/root/boot" "$tmp/root/lib/modules"
    for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$tmp/x"; done
    local mods
    for mods in "$tmp/x/lib/modules/$release" "$tmp/x/usr/lib/modules/$release"; do
      [ -d "$mods" ] && mv "$mods" "$tmp/root/lib/modules/$release" && break
    done
    [ -d "$tmp/root/lib/modules/$release" ] || { say "$image has no lib/modules/$release"; return 2; }
    if [ -f "$tmp/x/boot/vmlinuz-$release" ]; then
      mv "$tmp/x/boot/vmlinuz-$release" "$tmp/root/boot/"
    elif [ -f "$tmp/root/lib/modules/$release/vmlinuz" ]; then
      mv "$tmp/root/lib/modules/$release/vmlinuz" "$tmp/root/boot/vmlinuz-$release"
    else
      say "$image carries no kernel image (looked in boot/ and lib/modules/$release/)"
      return 2
    fi
    depmod -b "$tmp/root" "$release"
    rm -rf "$dir"
    mv "$tmp/root" "$dir"
    rm -rf "$tmp"
    trap - EXIT
  fi
  # the suite's previous kernel goes, unless another link still names it
  local old
  old=$(readlink "$cache/$suite" 2>/dev/null || true)
  ln -sfn "$release" "$cache/$suite"
  if [ -n "$old" ] && [ "$old" != "$release" ] && ! readlink "$cache"/* 2>/dev/null | grep -qxF "$old"; then
    rm -rf "${cache:?}/$old"
  fi
  # the default guest kernel: Debian 12's (the host's own distribution), else the first fetched
  if [ "$suite" = bookworm ] || [ ! -e "$cache/current" ]; then ln -sfn "$release" "$cache/current"; fi
  echo "$dir"
}

status=0
for s in "${suites[@]}"; do
  fetch_suite "$(canonical "$s")" || status=$?
done
exit $status
