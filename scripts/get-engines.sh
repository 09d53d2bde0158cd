#!/usr/bin/env bash
# Fetches the real Docker engines the suite certifies from Debian's own packages and unpacks
# each, with every companion beside dockerd, into a cache folder per version. Nothing is
# installed and the machine's apt configuration is never changed: each suite gets a private
# sources list, package lists and download cache (NOTES.md, "Newer real engines").
#
#   scripts/get-engines.sh [--dir CACHE] [RELEASE:SUITE …]     (default: 26:trixie 28:sid)
#   scripts/get-engines.sh 29:source      a release no Debian suite ships, built from its pinned
#                                         upstream sources (scripts/build-engine.sh; 15-20 minutes)
#
# One folder per dockerd version, e.g. /var/cache/netconform/engines/28.5.2/, holding
#   dockerd docker-proxy            docker.io of SUITE (its major must be RELEASE)
#   containerd containerd-shim-runc-v2   trixie's containerd (1.7; Debian 12's 1.6 is too old for 28)
#   runc                            Debian 12's (trixie's needs GLIBC_2.38)
#   docker-init                     Debian 12's tini-static (the .deb's docker-init is a
#                                   relative symlink that dangles once copied)
#   MANIFEST                        the packages and versions it was made from
# and a link per release (26 -> 26.1.5) that `--engine docker:26` follows. A folder is complete
# or absent (unpacked beside, checked with `dockerd --version`, then renamed); a release whose
# folder is there is not fetched again. Prints one line per release: RELEASE FOLDER.
set -euo pipefail

cache=${NETCONFORM_ENGINE_CACHE:-/var/cache/netconform/engines}
wanted=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) cache=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    [0-9]*:*) wanted+=("$1"); shift ;;
    *) echo "get-engines: unknown argument $1 (expected RELEASE:SUITE, e.g. 28:sid)" >&2; exit 2 ;;
  esac
done
[ ${#wanted[@]} -gt 0 ] || wanted=(26:trixie 28:sid)

say() { echo "get-engines: $*" >&2; }

for tool in apt-get dpkg-deb flock; do
  command -v "$tool" >/dev/null || { say "$tool is missing (apt-get install -y apt dpkg util-linux)"; exit 2; }
done

mkdir -p "$cache"
# one fetch at a time on this machine (worktrees share the cache)
exec 9>"$cache/.lock"
flock 9

# The Debian mirror the machine already uses, else Debian's own.
mirror=$(grep -hsoE '^(URIs:|deb)[[:space:]]+https?://[^[:space:]]+/debian/?([[:space:]]|$)' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
  grep -oE 'https?://[^[:space:]]+' | head -n1 || true)
mirror=${mirror:-http://deb.debian.org/debian}
mirror=${mirror%/}

# apt-get with a suite's private sources list, lists and cache (never /etc/apt's).
apt_opts() {
  local dir="$cache/.apt/$1"
  echo "-o Dir::Etc::SourceList=$dir/sources.list -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists=$dir/lists -o Dir::Cache=$dir/cache -o APT::Sandbox::User=root"
}
declare -A updated=()
suite_ready() {
  local suite=$1 dir="$cache/.apt/$1"
  [ -n "${updated[$suite]:-}" ] && return 0
  mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
  local sources
  sources="deb $mirror $suite main"
  # a stable suite's current packages (runc's fixes among them) come with its updates and security suites
  if [ "$suite" != sid ] && [ "$suite" != unstable ]; then
    sources+=$'\n'"deb $mirror $suite-updates main"$'\n'"deb ${mirror%/debian}/debian-security $suite-security main"
  fi
  local changed=no
  [ "$(cat "$dir/sources.list" 2>/dev/null)" = "$sources" ] || changed=yes
  echo "$sources" > "$dir/sources.list"
  # lists of a moving suite (sid) go stale: refresh them once a day, and when the sources change
  if [ $changed = yes ] || [ -z "$(find "$dir/lists" -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null)" ]; then
    say "reading the package lists of $suite"
    # shellcheck disable=SC2046
    apt-get $(apt_opts "$suite") update -qq >/dev/null || { say "apt-get update of $suite ($mirror) failed"; return 1; }
  fi
  updated[$suite]=1
}
# download PKG of SUITE into DIR
download() {
  local suite=$1 pkg=$2 dir=$3
  suite_ready "$suite" || return 1
  # shellcheck disable=SC2046
  (cd "$dir" && apt-get $(apt_opts "$suite") download -qq "$pkg" >/dev/null 2>&1) || { say "could not download $pkg from $suite"; return 1; }
}
candidate() {
  # shellcheck disable=SC2046
  apt-cache $(apt_opts "$1") policy "$2" 2>/dev/null | sed -n 's/^ *Candidate: //p'
}

# Companions every engine folder gets, as SUITE:PACKAGE:PATH-IN-PACKAGE:NAME
COMPANIONS=(
  trixie:containerd:usr/bin/containerd:containerd
  trixie:containerd:usr/bin/containerd-shim-runc-v2:containerd-shim-runc-v2
  bookworm:runc:usr/sbin/runc:runc
  bookworm:tini:usr/bin/tini-static:docker-init
)

# in a subshell: its temporary folder goes on every way out
fetch_release() (
  release=$1 suite=$2
  # done already: the release link points at a complete folder
  if [ -x "$cache/$release/dockerd" ] && [ -f "$cache/$release/MANIFEST" ]; then
    say "Docker $release is already in $(readlink -f "$cache/$release")"
    echo "$release $(readlink -f "$cache/$release")"
    return 0
  fi
  suite_ready "$suite" || return 1
  cand=$(candidate "$suite" docker.io)
  [ -n "$cand" ] && [ "$cand" != "(none)" ] || { say "$suite has no docker.io"; return 1; }
  if [ "${cand%%.*}" != "$release" ]; then
    say "$suite now carries docker.io $cand, not $release.x: name the suite that has $release (e.g. $release:trixie)"
    return 1
  fi
  tmp=$(mktemp -d "$cache/.fetch-XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp/debs" "$tmp/x" "$tmp/engine"
  say "downloading docker.io $cand ($suite) and its companions"
  download "$suite" docker.io "$tmp/debs" || return 1
  for spec in "${COMPANIONS[@]}"; do
    IFS=: read -r s p path name <<<"$spec"
    [ -e "$tmp/debs/.$s-$p" ] && continue
    download "$s" "$p" "$tmp/debs" || return 1
    touch "$tmp/debs/.$s-$p"
  done
  for deb in "$tmp"/debs/*.deb; do
    dpkg-deb -x "$deb" "$tmp/x" || return 1
    dpkg-deb -f "$deb" Package Version | paste -sd' ' >>"$tmp/engine/MANIFEST"
  done
  cp "$tmp/x/usr/sbin/dockerd" "$tmp/x/usr/sbin/docker-proxy" "$tmp/engine/" || return 1
  for spec in "${COMPANIONS[@]}"; do
    IFS=: read -r s p path name <<<"$spec"
    # -L: a link in the package (docker-init -> tini-static) would dangle once copied
    cp -L "$tmp/x/$path" "$tmp/engine/$name" || return 1
  done
  v=$("$tmp/engine/dockerd" --version 2>&1) || { say "the unpacked dockerd does not run: $v"; return 1; }
  # "Docker version 28.5.2+dfsg3, build 1234567" -> 28.5.2
  version=$(sed -n 's/^Docker version \([0-9][0-9.]*\).*/\1/p' <<<"$v")
  [ "${version%%.*}" = "$release" ] || { say "dockerd says \"$v\", not Docker $release"; return 1; }
  for name in containerd runc docker-init; do
    "$tmp/engine/$name" --version >/dev/null 2>&1 || { say "$name does not run on this machine: $("$tmp/engine/$name" --version 2>&1 | head -n1)"; return 1; }
  done
  echo "$v" >>"$tmp/engine/MANIFEST"
  # a complete folder of this version (another release link's, or an earlier run's) stays as it is
  if [ ! -f "$cache/$version/MANIFEST" ]; then
    rm -rf "${cache:?}/$version"
    mv -T "$tmp/engine" "$cache/$version" || return 1
  fi
  ln -sfn "$version" "$cache/.$release.new" && mv -T "$cache/.$release.new" "$cache/$release" || return 1
  say "Docker $version in $cache/$version"
  echo "$release $cache/$version"
)

status=0
for w in "${wanted[@]}"; do
  if [ "${w#*:}" = source ]; then
    "$(dirname "$0")/build-engine.sh" --dir "$cache" "${w%%:*}" || status=1
  else
    fetch_release "${w%%:*}" "${w#*:}" || status=1
  fi
done
exit $status
