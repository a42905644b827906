#!/usr/bin/env bash
# Runs Sluice's benchmarks and writes docs/benchmarks.md.
#
#   scripts/bench.sh            # microbenchmarks (criterion) and the end-to-end run
#   SLUICE_BENCH_E2E=0 scripts/bench.sh   # microbenchmarks only
#
# Microbenchmarks: `cargo bench -p sluice-bench` (a few minutes on 2 cores), then
# `bench-report` rewrites the "Microbenchmarks" section of docs/benchmarks.md from
# target/criterion/*/new/{benchmark,estimates}.json; the rest of the file is kept.
set -euo pipefail
cd "$(dirname "$0")/.."

# ---- Microbenchmarks -------------------------------------------------------------
cargo bench -p sluice-bench "$@"
cargo run --release -q -p sluice-bench --bin bench-report -- --command "scripts/bench.sh"

# ---- End to end ------------------------------------------------------------------
# Sluice over virtio vs the kernel over veth vs testpmd's link limit, one core per side:
# writes docs/benchmarks-e2e.md and docs/img/e2e-*.svg (a few minutes).
if [ "${SLUICE_BENCH_E2E:-1}" != 0 ]; then
  scripts/bench-e2e.sh
fi
