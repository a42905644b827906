#!/usr/bin/env bash
# Runs every test of Sluice: unit and property tests, the simulated pairs, the C ABI and
# packetdrill harness, and the system tests on real DPDK devices (EAL, virtio_user <->
# net_vhost, net_tap inside network namespaces with the kernel, curl, wrk, socat and
# Python as peers). Sets the machine up first (root: packages, hugepages). Safe to run twice.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export RUST_BACKTRACE=1
# Namespaces left by an interrupted earlier run.
for ns in $(ip netns list 2>/dev/null | awk '/^sluice-/ {print $1}'); do
  for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
  ip netns del "$ns" 2>/dev/null || true
done
cargo test --workspace --release --no-run
# One test at a time: the system tests start DPDK processes that share the two cores.
cargo test --workspace --release -- --test-threads=1
