#!/usr/bin/env bash
# Installs what Sluice needs on Debian 12 and reserves hugepages. Idempotent: safe to run twice.
# Usage: scripts/setup.sh            (as root)
#        SLUICE_HUGEPAGES=1024 scripts/setup.sh   (number of 2 MiB pages; default 512)
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/setup.sh: must run as root (it installs Debian packages and reserves hugepages); try: sudo $0" >&2
  exit 1
fi

# The real programs sluice-run is tested and benchmarked with: iperf3, sockperf, redis,
# nginx (their services are not started: see policy-rc.d below).
PKGS=(dpdk libdpdk-dev dpdk-dev libclang-dev pkg-config psmisc iproute2 iputils-ping curl wrk socat procps iperf3 tcpdump
      sockperf redis-server redis-tools nginx-light python3)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Packages with a service (redis, nginx) must not start it: the tests run their own,
  # inside namespaces. policy-rc.d tells invoke-rc.d not to; ours goes afterwards.
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod +x "$policy"
    own_policy=1
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ "$own_policy" = 1 ]; then rm -f "$policy"; fi
else
  echo "setup: Debian packages already installed"
fi

want=${SLUICE_HUGEPAGES:-512}
have=$(cat /proc/sys/vm/nr_hugepages)
if [ "$have" -lt "$want" ]; then
  echo "$want" > /proc/sys/vm/nr_hugepages
  echo "setup: reserved $(cat /proc/sys/vm/nr_hugepages) hugepages of 2 MiB (asked $want, had $have)"
else
  echo "setup: $have hugepages already reserved"
fi
if ! grep -qs ' /dev/hugepages hugetlbfs ' /proc/mounts; then
  mkdir -p /dev/hugepages
  mount -t hugetlbfs nodev /dev/hugepages
  echo "setup: mounted hugetlbfs on /dev/hugepages"
else
  echo "setup: hugetlbfs already mounted on /dev/hugepages"
fi
# Pages held by DPDK processes that were killed (files in /dev/hugepages not open by anyone).
if command -v fuser >/dev/null 2>&1; then
  for f in /dev/hugepages/sluice*; do
    [ -e "$f" ] || continue
    fuser -s "$f" 2>/dev/null || rm -f "$f"
  done
fi
# Runtime directories of Sluice processes that are gone (/var/run/dpdk/sluice-PID; a clean
# exit removes its own, a killed process cannot).
for d in /var/run/dpdk/sluice-*; do
  [ -d "$d" ] || continue
  pid=${d##*/sluice-}
  case "$pid" in ''|*[!0-9]*) continue ;; esac
  kill -0 "$pid" 2>/dev/null || rm -rf "$d"
done
free=$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)
echo "setup: HugePages_Free=$free, DPDK $(pkg-config --modversion libdpdk)"
if [ "$free" -lt 64 ]; then
  echo "setup: fewer than 64 free hugepages; stop other DPDK processes or raise SLUICE_HUGEPAGES" >&2
  exit 1
fi
