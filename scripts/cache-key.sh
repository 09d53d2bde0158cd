#!/usr/bin/env bash
# The keys under which CI caches what setup fetches or builds, each the hash of what pins it, so
# that a cache is reused until one of its pins moves and never after:
#
#   scripts/cache-key.sh engines|kernels|guests   one key, e.g. engines-3f2a9c0d1e4b5a6f
#   scripts/cache-key.sh --pins KIND              the pins the key hashes, one per line
#   scripts/cache-key.sh --github                 every key as KIND=KEY lines (for $GITHUB_OUTPUT)
#
# engines: the Debian packages scripts/get-engines.sh unpacks (their candidate versions in each
#   suite), the upstream tags and sha256 scripts/build-engine.sh builds, the Go it builds with,
#   and both scripts (a change to how a build is made is a new build).
# kernels: the stock kernel package of each suite scripts/get-kernel.sh fetches, and the script.
# guests: the saved guests' format (harness/vm/snapshot.ts), the kernels, and qemu's version.
# Versions come from a private apt (scripts/lib/debian-apt.sh) in the engine cache's .apt folder
# (NETCONFORM_ENGINE_CACHE); nothing is installed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
. "$here/lib/debian-apt.sh"
apt_state=${NETCONFORM_ENGINE_CACHE:-/var/cache/netconform/engines}/.apt

candidates() { # SUITE PKG… → "SUITE PKG VERSION" for each, in one apt-cache call
  local suite=$1
  shift
  priv_apt_init "$suite" "$apt_state/$suite" >/dev/null || { echo "cache-key: apt-get update of $suite failed" >&2; exit 1; }
  priv_apt apt-cache policy "$@" 2>/dev/null | awk -v s="$suite" '/^[^ ].*:$/ { p = substr($0, 1, length($0) - 1) } /^ *Candidate:/ { print s, p, $2 }'
}

file_hash() { echo "$(basename "$1") $(sha256sum "$1" | cut -c1-16)"; }

pins() {
  case "$1" in
    engines)
      candidates trixie docker.io containerd
      candidates sid docker.io golang-1.26-go golang-1.26-src
      candidates bookworm runc tini libseccomp-dev
      grep -E '^ *(moby_tag|moby_sha|runc_tag|runc_sha|version)=' "$here/build-engine.sh" | tr -s ' ' | sed 's/^ //'
      file_hash "$here/get-engines.sh"
      file_hash "$here/build-engine.sh"
      ;;
    kernels)
      for suite in bookworm trixie sid; do candidates "$suite" linux-image-amd64; done
      file_hash "$here/get-kernel.sh"
      ;;
    guests)
      grep -E '^const SAVED_GUEST_FORMAT' "$root/harness/vm/snapshot.ts"
      candidates bookworm qemu-system-x86
      pins kernels
      ;;
    *) echo "cache-key: unknown cache '$1' (known: engines, kernels, guests)" >&2; exit 2 ;;
  esac
}

key() { echo "$1-$(pins "$1" | sha256sum | cut -c1-16)"; }

case "${1:-}" in
  --pins) pins "${2:?name the cache: engines, kernels or guests}" ;;
  --github) for k in engines kernels guests; do echo "$k=$(key "$k")"; done ;;
  engines|kernels|guests) key "$1" ;;
  *) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
