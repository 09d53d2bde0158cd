#!/usr/bin/env bash
# Installs what netconform needs on a Debian machine (run as root), then the npm packages.
# Idempotent and quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

# installed, not merely known to dpkg (a removed package keeps its status entry)
installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }

need=()
# qemu-system-x86 and kmod: the microVM kernel runner (scenarios the host kernel cannot run);
# conntrack: flushing connection tracking between scenarios on a reused dockerd;
# nftables: nft, for the docker-29-nftables profile and nftables steps and checks (its
# service stays disabled, as Debian ships it; the suite only runs nft inside lab namespaces),
# and libnftables, which the trace monitor of rule paths loads;
# stress-ng: the noisy neighbour of `npm run bench -- noisy` (npm test and the suite beside a busy CPU);
# xz-utils, git and pkgconf: Docker 29 from its pinned sources (tarballs, or a clone of the tag)
for pkg in iproute2 iptables nftables util-linux gcc libc6-dev busybox-static procps qemu-system-x86 kmod conntrack stress-ng xz-utils git pkgconf; do
  installed "$pkg" || need+=("$pkg")
done
if ! command -v node >/dev/null 2>&1; then need+=(nodejs npm); fi
# Chromium renders reports/report.html headless in specs/report-browser.spec.ts (which skips,
# saying why, without it). NETCONFORM_CHROMIUM=none leaves it out (a runner that only runs the suite).
if [ "${NETCONFORM_CHROMIUM:-}" != none ] && ! command -v chromium >/dev/null 2>&1; then need+=(chromium); fi
# The real engine for `--engine docker`: Debian's docker.io (dockerd 20.10), unless a dockerd
# is installed already (certify another build with `run --dockerd /path/to/dockerd`).
installing_docker=no
if ! command -v dockerd >/dev/null 2>&1 && ! installed docker.io; then
  need+=(docker.io)
  installing_docker=yes
fi

# Open vSwitch userspace for VL-02's OVS variant: each lab runs its own ovsdb-server and
# ovs-vswitchd inside its namespaces (in the microVM, whose kernel has the datapath). The
# package's own service must never start on this machine: it is installed only under a
# policy-rc.d that forbids starting services (below); without OVS those scenarios skip, saying why.
installing_ovs=no
if ! command -v ovs-vswitchd >/dev/null 2>&1 && ! installed openvswitch-switch; then
  need+=(openvswitch-switch)
  installing_ovs=yes
fi

# firewalld for the recovery scenarios (SC-06/SC-07, tag firewalld): each lab runs its own, on a
# private D-Bus in the lab host's namespace; the package's service never starts here (no systemd
# as PID 1 in CI containers, and the policy-rc.d below forbids it where there is).
if ! command -v firewalld >/dev/null 2>&1 && ! installed firewalld; then
  need+=(firewalld)
fi

if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  # The suite starts its own dockerd (and OVS daemons) inside lab namespaces; installing
  # docker.io or openvswitch-switch must not start one in this machine's namespace.
  # policy-rc.d answering 101 ("action forbidden") holds back invoke-rc.d and
  # deb-systemd-invoke during the install.
  guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    guard=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' > "$guard"
    chmod 755 "$guard"
    trap 'rm -f "$guard"' EXIT
  fi
  # a policy-rc.d that was there already must forbid starts too, or Open vSwitch stays out
  if [ "$installing_ovs" = yes ] && { /usr/sbin/policy-rc.d openvswitch-switch start >/dev/null 2>&1; [ $? -ne 101 ]; }; then
    echo "setup: /usr/sbin/policy-rc.d allows starting services: not installing openvswitch-switch (its daemon would start here)" >&2
    need=("${need[@]/openvswitch-switch}")
    installing_ovs=no
  fi
  echo "setup: installing Debian packages: ${need[*]}"
  apt-get update -qq
  # unquoted: a package dropped above leaves an empty word behind
  apt-get install -y -qq --no-install-recommends ${need[@]} >/dev/null
  if [ "$installing_docker" = yes ] && [ -d /run/systemd/system ]; then
    # nor at the next boot: the units stay installed but disabled
    systemctl disable --quiet docker.service docker.socket containerd.service 2>/dev/null || true
  fi
  if [ -d /run/systemd/system ]; then
    systemctl disable --quiet firewalld.service 2>/dev/null || true
  fi
  if [ "$installing_ovs" = yes ] && [ -d /run/systemd/system ]; then
    systemctl disable --quiet openvswitch-switch.service ovs-vswitchd.service ovsdb-server.service ovs-record-hostname.service 2>/dev/null || true
  fi
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

# Stock Debian kernels for the microVM runner, unpacked into a cache (never installed): Debian
# 12's (the default guest), 13's and unstable's, for the kernel matrix. NETCONFORM_KERNEL=none
# skips them; NETCONFORM_KERNEL_SUITES="bookworm" (say) fetches fewer.
cache=${NETCONFORM_KERNEL_CACHE:-/var/cache/netconform/kernels}
if [ "${NETCONFORM_KERNEL:-}" != none ]; then
  missing=()
  for suite in ${NETCONFORM_KERNEL_SUITES:-bookworm trixie sid}; do
    [ -e "$cache/$suite/boot" ] || missing+=(--suite "$suite")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: fetching guest kernels for the microVM runner (${missing[*]//--suite /})"
    # Not fatal: without them (no Debian mirror, e.g. on Ubuntu) such scenarios are skipped, saying why.
    ./scripts/get-kernel.sh "${missing[@]}" >/dev/null || echo "setup: a guest kernel could not be fetched; scenarios needing it will be skipped, saying why" >&2
  fi
fi

# The real Docker releases the suite certifies besides Debian 12's 20.10 (docker:26, docker:28),
# from Debian's own packages, unpacked (never installed) into a cache folder per version.
# NETCONFORM_ENGINES=none skips it; then those targets stop before the first lab, saying so.
engines=${NETCONFORM_ENGINE_CACHE:-/var/cache/netconform/engines}
if [ "${NETCONFORM_ENGINES:-}" != none ] && { [ ! -x "$engines/26/dockerd" ] || [ ! -x "$engines/28/dockerd" ]; }; then
  echo "setup: fetching Docker 26 and 28 (Debian trixie and sid) for the engine matrix"
  ./scripts/get-engines.sh >/dev/null || echo "setup: not every Docker release could be fetched; docker:26/docker:28 targets need them (scripts/get-engines.sh)" >&2
fi

# Docker 29, which no Debian suite ships, built from its pinned upstream sources when they are
# at hand (NETCONFORM_SOURCES: a folder with the tarballs and their SHA256SUMS; .ci/run names
# ../shared/sources): 15-20 minutes once, then cached. Without them docker:29 targets stop
# before the first lab, saying how to build it.
if [ "${NETCONFORM_ENGINES:-}" != none ] && [ -n "${NETCONFORM_SOURCES:-}" ] && [ ! -x "$engines/29/dockerd" ]; then
  echo "setup: building Docker 29 from the sources in $NETCONFORM_SOURCES (15-20 minutes, once)"
  ./scripts/get-engines.sh 29:source >/dev/null || echo "setup: Docker 29 could not be built; docker:29 targets need it (scripts/get-engines.sh 29:source)" >&2
fi
