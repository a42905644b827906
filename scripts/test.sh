#!/usr/bin/env bash
# Runs every test of Sluice: unit, simulated-pair and DPDK tests (EAL, virtio_user <-> net_vhost,
# net_tap in a network namespace). Sets the machine up first. Safe to run twice.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export RUST_BACKTRACE=1
# The DPDK tests create namespaces and tap devices: root is required (setup.sh checked it).
cargo build --workspace --all-targets --release
cargo test --workspace --release -- --test-threads=1
