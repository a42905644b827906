#!/usr/bin/env bash
# Runs Sluice's benchmarks and writes docs/benchmarks.md.
#
#   scripts/bench.sh            # microbenchmarks (criterion), then the report
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
# (Reserved: the end-to-end benchmark goes here and writes the "End to end" section of
# docs/benchmarks.md.)
