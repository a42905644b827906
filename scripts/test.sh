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
# What the system tests run as programs: the C API and preload libraries, sluice-run and
# the apps (cdylibs and binaries of other packages are not built for a package's tests).
cargo build --release -p sluice-capi -p sluice-preload -p sluice-apps
# One test at a time: the system tests start DPDK processes that share the two cores.
cargo test --workspace --release -- --test-threads=1
# Frame's unsafe reference counting (stack/buf) under Miri, where a nightly toolchain with
# Miri is installed (rustup component add --toolchain nightly miri rust-src); the counting
# vtable of its tests checks the same without Miri above.
if rustup toolchain list 2>/dev/null | grep -q '^nightly' && ! cargo +nightly miri --version >/dev/null 2>&1; then
  timeout 300 rustup component add --toolchain nightly miri rust-src >/dev/null 2>&1 || true
fi
if cargo +nightly miri --version >/dev/null 2>&1; then
  cargo +nightly miri test -p sluice-buf
else
  echo "test.sh: no nightly toolchain with Miri; sluice-buf not run under Miri"
fi
