#!/usr/bin/env bash
# Builds a Docker release no Debian suite ships from its pinned upstream sources, into the
# engine cache beside the Debian builds (scripts/get-engines.sh RELEASE:source calls this):
#
#   scripts/build-engine.sh [--dir CACHE] RELEASE        (known: 29 → moby docker-v29.7.2, runc v1.3.6)
#
# Sources: the tarballs (moby-docker-vX.tar.xz, runc-vY.tar.xz, SHA256SUMS) in the folder
# NETCONFORM_SOURCES names, each checked against its pinned sha256; without it, a shallow
# `git clone` of the pinned tag (its commit checked). The Go toolchain is Debian's own (sid's
# golang-1.26, whose 1.26.10 satisfies moby's go 1.26.3), and libseccomp's headers are
# bookworm's libseccomp-dev: both downloaded with a private apt (scripts/lib/debian-apt.sh) and
# unpacked under the cache, never installed. runc is built too (Debian 12's 1.1.5 fails on 29:
# `namespace {"time" ""} does not exist`), with seccomp (without it every container fails).
#
# Result: CACHE/<version>/ with dockerd, docker-proxy and runc built here, trixie's containerd
# and shim, Debian 12's tini-static as docker-init, and a MANIFEST naming the tag, commit and
# sha256 of each source and the Go that built it; CACHE/<release> links it. A folder is
# complete or absent (built beside, checked with `dockerd --version`, then renamed); a release
# whose folder is there is not built again. About 15-20 minutes on 2 cores; progress goes to
# stderr, the result line (RELEASE FOLDER) to stdout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/debian-apt.sh"

cache=${NETCONFORM_ENGINE_CACHE:-/var/cache/netconform/engines}
release=
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) cache=$2; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    [0-9]*) release=$1; shift ;;
    *) echo "build-engine: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

say() { echo "build-engine: $*" >&2; }

# The pins of each release: its moby tag and commit, the runc it needs, and the sha256 of the
# tarballs `git archive` makes of them (../shared/sources/SHA256SUMS).
case "$release" in
  29)
    version=29.7.2
    moby_tag=docker-v29.7.2 moby_commit=6a43e3d5afddf4111da0f864bbc7cae5d7e95001
    moby_sha=23f243066e8d95cda5cff7566a65c2d5805c1dc3f38c1005103c12d5f674f1f2
    runc_tag=v1.3.6 runc_commit=491b69bab9fa206b984fb26ba07d3110d62e671f
    runc_sha=d042f52cc4365463e6a599d80d6b042b892293c52ae83ac0b11e272f33c6bb8a
    go_pkg=1.26
    ;;
  '') say "name the release to build (known: 29)"; exit 2 ;;
  *) say "no pinned sources for Docker $release (known: 29)"; exit 2 ;;
esac

for tool in apt-get dpkg-deb flock tar xz sha256sum gcc pkg-config; do
  command -v "$tool" >/dev/null || { say "$tool is missing (./scripts/setup.sh installs what the build needs)"; exit 2; }
done

mkdir -p "$cache"
# one build at a time (get-engines.sh holds .lock while it calls this: a lock of its own)
exec 8>"$cache/.build.lock"
flock 8

if [ -x "$cache/$release/dockerd" ] && [ -f "$cache/$release/MANIFEST" ]; then
  say "Docker $release is already in $(readlink -f "$cache/$release") (built from $(sed -n 's/^source moby //p' "$cache/$release/MANIFEST"))"
  echo "$release $(readlink -f "$cache/$release")"
  exit 0
fi

t0=$(date +%s)
step() { say "[$(( $(date +%s) - t0 )) s] $*"; }
tmp=$(mktemp -d "$cache/.build-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/src" "$tmp/debs" "$tmp/x" "$tmp/engine"

# --- sources: a pinned tarball, or a shallow clone of the pinned tag ---
fetch_source() { # NAME TAG COMMIT SHA256 REPO → folder on stdout
  local name=$1 tag=$2 commit=$3 sha=$4 repo=$5 ball
  ball=${NETCONFORM_SOURCES:+$NETCONFORM_SOURCES/$name-$tag.tar.xz}
  if [ -n "$ball" ] && [ -f "$ball" ]; then
    echo "$sha  $ball" | sha256sum -c --quiet - >&2 || { say "$ball does not match its pinned sha256 $sha"; return 1; }
    tar -C "$tmp/src" -xJf "$ball"
    # git archive names the folder after the tag (runc-1.3.6 for v1.3.6)
    find "$tmp/src" -mindepth 1 -maxdepth 1 -type d -name "$name-*${tag#v}" | head -n1
  else
    [ -n "${NETCONFORM_SOURCES:-}" ] && say "no $name-$tag.tar.xz in $NETCONFORM_SOURCES: cloning $repo"
    git clone -q --depth 1 --branch "$tag" "$repo" "$tmp/src/$name" >&2 || { say "cannot clone $repo at $tag (no tarball in NETCONFORM_SOURCES either)"; return 1; }
    [ "$(git -C "$tmp/src/$name" rev-parse HEAD)" = "$commit" ] || { say "$repo $tag is not the pinned commit $commit"; return 1; }
    echo "$tmp/src/$name"
  fi
}
step "sources: moby $moby_tag, runc $runc_tag${NETCONFORM_SOURCES:+ (from $NETCONFORM_SOURCES)}"
moby=$(fetch_source moby "$moby_tag" "$moby_commit" "$moby_sha" https://github.com/moby/moby.git)
runc=$(fetch_source runc "$runc_tag" "$runc_commit" "$runc_sha" https://github.com/opencontainers/runc.git)
[ -d "$moby/cmd/dockerd" ] && [ -f "$runc/main.go" ] || { say "the sources do not look like moby and runc ($moby, $runc)"; exit 1; }

# --- Debian's Go and libseccomp headers, and the companions, unpacked (never installed) ---
step "Debian's golang-$go_pkg (sid), libseccomp-dev (bookworm), containerd (trixie), tini (bookworm)"
fetch_debs() { # SUITE PKG…
  local suite=$1
  shift
  priv_apt_init "$suite" "$cache/.apt/$suite" || { say "apt-get update of $suite failed"; return 1; }
  priv_apt_download "$tmp/debs" "$@" || { say "could not download $* from $suite"; return 1; }
}
fetch_debs sid "golang-$go_pkg-go" "golang-$go_pkg-src"
fetch_debs bookworm libseccomp-dev tini
fetch_debs trixie containerd
for deb in "$tmp"/debs/*.deb; do
  dpkg-deb -x "$deb" "$tmp/x"
  dpkg-deb -f "$deb" Package Version | paste -sd' ' >>"$tmp/debs.txt"
done
export GOROOT="$tmp/x/usr/lib/go-$go_pkg" PATH="$tmp/x/usr/lib/go-$go_pkg/bin:$PATH"
# the build cache stays: a build stopped half-way (or a later release) does not start again from nothing
export GOTOOLCHAIN=local GOPROXY=off GOFLAGS=-mod=vendor GOCACHE="$cache/.go-cache" GOPATH="$tmp/go"
go_version=$(go version)
step "$go_version"

# runc first (a minute): libseccomp linked in statically from bookworm's libseccomp-dev, found
# through a pkg-config file of our own (the package's names /usr, where nothing is installed)
step "building runc ${runc_tag#v} (cgo, seccomp)"
mkdir -p "$tmp/pkgconfig"
printf 'Name: libseccomp\nDescription: libseccomp unpacked for this build\nVersion: %s\nCflags: -I%s\nLibs: %s\n' \
  "$(dpkg-deb -f "$tmp"/debs/libseccomp-dev_*.deb Version | sed 's/-.*//')" "$tmp/x/usr/include" "$tmp/x/usr/lib/x86_64-linux-gnu/libseccomp.a" >"$tmp/pkgconfig/libseccomp.pc"
(cd "$runc" && CGO_ENABLED=1 PKG_CONFIG_PATH="$tmp/pkgconfig" \
  go build -o "$tmp/engine/runc" -tags seccomp -ldflags "-X main.version=${runc_tag#v} -X main.gitCommit=${runc_commit:0:12}" .) || { say "go build of runc failed"; exit 1; }
"$tmp/engine/runc" --version 2>&1 | grep -q "seccomp" || { say "runc was built without seccomp: $("$tmp/engine/runc" --version 2>&1 | tr '\n' ' ')"; exit 1; }

# a heartbeat while go builds (it prints nothing for minutes)
beat() { while sleep 60; do step "still building $1…"; done; }

step "building dockerd and docker-proxy $version (the longest part: 15 minutes or so on 2 cores)"
beat dockerd & bpid=$!
(cd "$moby" && CGO_ENABLED=0 go build -o "$tmp/engine/" -tags 'exclude_graphdriver_btrfs netgo osusergo' \
  -ldflags "-X github.com/moby/moby/v2/dockerversion.Version=$version -X github.com/moby/moby/v2/dockerversion.GitCommit=${moby_commit:0:10}" \
  ./cmd/dockerd ./cmd/docker-proxy) || { kill $bpid; say "go build of dockerd failed"; exit 1; }
kill $bpid

cp "$tmp/x/usr/bin/containerd" "$tmp/x/usr/bin/containerd-shim-runc-v2" "$tmp/engine/"
cp -L "$tmp/x/usr/bin/tini-static" "$tmp/engine/docker-init"

v=$("$tmp/engine/dockerd" --version 2>&1) || { say "the built dockerd does not run: $v"; exit 1; }
[ "$(sed -n 's/^Docker version \([0-9][0-9.]*\).*/\1/p' <<<"$v")" = "$version" ] || { say "dockerd says \"$v\", not $version"; exit 1; }
for name in containerd docker-init; do
  "$tmp/engine/$name" --version >/dev/null 2>&1 || { say "$name does not run on this machine"; exit 1; }
done
{
  echo "source moby $moby_tag $moby_commit sha256:$moby_sha"
  echo "source runc $runc_tag $runc_commit sha256:$runc_sha"
  echo "built with $go_version"
  grep -E '^Package: (containerd|tini) ' "$tmp/debs.txt"
  echo "$v"
} >"$tmp/engine/MANIFEST"

rm -rf "${cache:?}/$version"
mv -T "$tmp/engine" "$cache/$version"
ln -sfn "$version" "$cache/.$release.new" && mv -T "$cache/.$release.new" "$cache/$release"
step "Docker $version in $cache/$version"
echo "$release $cache/$version"
