#!/usr/bin/env bash
# End-to-end benchmarks: Sluice vs the Linux kernel on this machine (one core per side),
# and the raw link limit with dpdk-testpmd. Writes docs/benchmarks-e2e.md and the plots
# under docs/img/. Takes a few minutes. Run as root; safe to run twice.
#
#   scripts/bench-e2e.sh                  # the full run (5 s per measurement, 100k idle connections)
#   scripts/bench-e2e.sh --quick          # 1 s per measurement, few connections (what CI runs)
#   scripts/bench-e2e.sh --seconds 10     # any other `sluice-e2e run` option
#
# Whatever happens (failure, Ctrl-C), the namespaces, processes, vhost-user sockets and
# hugepage files of the run are removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

cleanup() {
  local rc=$?
  # Processes of this run: sluice-e2e and what it started (they also die with it,
  # PR_SET_PDEATHSIG), then the namespaces it made, its sockets, stale hugepage files.
  if [ -n "${E2E_PID:-}" ] && kill -0 "$E2E_PID" 2>/dev/null; then
    kill -TERM "$E2E_PID" 2>/dev/null || true
    sleep 1
    kill -KILL "$E2E_PID" 2>/dev/null || true
  fi
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^sluice-e2e-(srv|cli)-' || true); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -f /tmp/sluice-e2e-*.sock
  if command -v fuser >/dev/null 2>&1; then
    # (The run itself uses --in-memory everywhere and creates none; this removes pages a
    # killed DPDK process left, as scripts/setup.sh does, if no process maps them.)
    for f in /dev/hugepages/rtemap_* /dev/hugepages/sluice*; do
      [ -e "$f" ] || continue
      fuser -s "$f" 2>/dev/null || rm -f "$f"
    done
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

scripts/setup.sh
cargo build --release -p sluice-e2e -p sluice-apps
mkdir -p docs/img
target/release/sluice-e2e run --bin-dir target/release --out docs/benchmarks-e2e.md --img-dir docs/img \
  --command "scripts/bench-e2e.sh" "$@" &
E2E_PID=$!
wait "$E2E_PID"
