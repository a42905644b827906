#!/usr/bin/env bash
# The main job: Sluice on a net_tap port inside a network namespace, driven by the kernel.
# Usage: scripts/run.sh [--keep]
#   --keep   leave Sluice running in the namespace and print how to reach it
# Sets the machine up first (scripts/setup.sh). Safe to run twice.
set -euo pipefail
cd "$(dirname "$0")/.."

KEEP=0
for a in "$@"; do
  case "$a" in
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $a (try --help)" >&2; exit 2 ;;
  esac
done

scripts/setup.sh
echo "run: building (release)"
cargo build --release -q -p sluice-responder
BIN=target/release/sluice-responder

NS=sluice-run
SLUICE_IP=198.18.0.2
HOST_IP=198.18.0.1
LOG=$(mktemp /tmp/sluice-run.XXXXXX.log)

cleanup() {
  if [ -n "${PID:-}" ] && kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PID" 2>/dev/null || true
  fi
  ip netns del "$NS" 2>/dev/null || true
}

# A namespace left by an earlier run (--keep) is replaced.
if ip netns list | grep -qw "$NS"; then
  for p in $(ip netns pids "$NS"); do kill -TERM "$p" 2>/dev/null || true; done
  sleep 1
  ip netns del "$NS" 2>/dev/null || true
fi
ip netns add "$NS"
ip -n "$NS" link set lo up
[ "$KEEP" = 1 ] || trap cleanup EXIT

ip netns exec "$NS" "$BIN" --iface sl0 --ip "$SLUICE_IP/24" >"$LOG" 2>&1 &
PID=$!
for _ in $(seq 200); do
  ip -n "$NS" link show sl0 >/dev/null 2>&1 && break
  kill -0 "$PID" 2>/dev/null || { cat "$LOG"; echo "run: Sluice exited early" >&2; exit 1; }
  sleep 0.1
done
ip -n "$NS" addr add "$HOST_IP/24" dev sl0
ip -n "$NS" link set sl0 up
grep -m1 'ready' "$LOG" || true

echo "run: pinging Sluice ($SLUICE_IP) from the kernel ($HOST_IP) in namespace $NS"
PING=$(ip netns exec "$NS" ping -c 20 -i 0.05 -W 2 "$SLUICE_IP" || true)
echo "$PING" | grep -E 'bytes from' | head -3
echo "   ..."
echo "$PING" | tail -2

if [ "$KEEP" = 1 ]; then
  echo
  echo "Sluice is running (pid $PID, log $LOG) in namespace $NS at $SLUICE_IP."
  echo "Reach it with:   ip netns exec $NS ping $SLUICE_IP"
  echo "Stop it with:    kill $PID; ip netns del $NS"
  exit 0
fi

kill -TERM "$PID"
for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
echo
echo "Summary"
echo "  ping:   $(echo "$PING" | grep -Eo '[0-9]+ packets transmitted, [0-9]+ received, [0-9.]+% packet loss')"
echo "  rtt:    $(echo "$PING" | grep -Eo 'rtt .*' || echo none)"
echo "  sluice: $(grep -E '^stats:' "$LOG" | tail -1 | sed 's/^stats: //')"
grep -E '^drops:' "$LOG" | tail -1 | sed 's/^/  /' || true
echo "$PING" | grep -q ' 0% packet loss' || { echo "run: packets were lost" >&2; exit 1; }
