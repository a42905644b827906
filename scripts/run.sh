#!/usr/bin/env bash
# The main job: Sluice's HTTP/1.1 server on a DPDK net_tap port inside a network namespace,
# checked with curl and loaded with wrk from the kernel side, then a short summary.
#
# Usage: scripts/run.sh [--keep] [--seconds N] [--connections N] [--cores N]
#   --keep            leave the server running in the namespace and print how to reach it
#   --seconds N       length of the wrk run (default 10)
#   --connections N   wrk connections (default 64)
#   --cores N         Sluice cores (default 1)
# Sets the machine up first (scripts/setup.sh). Safe to run twice.
set -euo pipefail
cd "$(dirname "$0")/.."

KEEP=0 SECONDS_LOAD=10 CONNS=64 CORES=1
while [ $# -gt 0 ]; do
  case "$1" in
    --keep) KEEP=1 ;;
    --seconds) SECONDS_LOAD=$2; shift ;;
    --connections) CONNS=$2; shift ;;
    --cores) CORES=$2; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

scripts/setup.sh
echo "run: building (release)"
cargo build --release -q -p sluice-apps
BIN=$PWD/target/release/sluice-http

NS=sluice-run
SLUICE_IP=198.18.0.2
HOST_IP=198.18.0.1
URL=http://$SLUICE_IP
WORK=$(mktemp -d /tmp/sluice-run.XXXXXX)
LOG=$WORK/server.log
mkdir -p "$WORK/www"
echo "Hello from Sluice, a TCP/IP stack on DPDK." > "$WORK/www/hello.txt"
head -c 1048576 /dev/urandom > "$WORK/www/blob.bin"

stop_server() {
  if [ -n "${PID:-}" ] && kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PID" 2>/dev/null || true
  fi
}
cleanup() {
  stop_server
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$WORK"
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

ip netns exec "$NS" "$BIN" --port tap:sl0 --ip "$SLUICE_IP/24" --cores "$CORES" --listen 80 \
  --body-size 128 --root "$WORK/www" >"$LOG" 2>&1 &
PID=$!
for _ in $(seq 200); do
  ip -n "$NS" link show sl0 >/dev/null 2>&1 && break
  kill -0 "$PID" 2>/dev/null || { cat "$LOG"; echo "run: the Sluice server exited early" >&2; exit 1; }
  sleep 0.1
done
ip -n "$NS" addr add "$HOST_IP/24" dev sl0
ip -n "$NS" link set sl0 up
inns() { ip netns exec "$NS" "$@"; }

echo "run: Sluice serves $URL (namespace $NS); checking it with curl"
FAIL=0
check() { # name, expected, actual
  if [ "$2" = "$3" ]; then printf '  ok    %-34s %s\n' "$1" "$3"; else printf '  FAIL  %-34s got %s, want %s\n' "$1" "$3" "$2"; FAIL=1; fi
}
code() { inns curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@" || echo "000"; }
check "GET / (128-byte body)" "200 128" "$(inns curl -s -o /dev/null -w '%{http_code} %{size_download}' --max-time 10 "$URL/")"
check "GET /hello.txt (file)" "Hello from Sluice, a TCP/IP stack on DPDK." "$(inns curl -s --max-time 10 "$URL/hello.txt")"
check "GET /blob.bin (1 MiB, SHA-256)" "$(sha256sum < "$WORK/www/blob.bin" | cut -d' ' -f1)" \
  "$(inns curl -s --max-time 20 "$URL/blob.bin" | sha256sum | cut -d' ' -f1)"
check "GET /bytes/100000" "200 100000" "$(inns curl -s -o /dev/null -w '%{http_code} %{size_download}' --max-time 10 "$URL/bytes/100000")"
check "keep-alive: 3 requests, 1 connection" "1" \
  "$(inns curl -sv --max-time 10 "$URL/" "$URL/hello.txt" "$URL/" 2>&1 | grep -c 'Connected to')"
check "GET /missing" "404" "$(code "$URL/missing")"
check "POST /" "405" "$(code -X POST -d x "$URL/")"
check "malformed request" "400" \
  "$(printf 'GARBAGE\r\n\r\n' | inns socat -t 5 - TCP:$SLUICE_IP:80 2>/dev/null | head -1 | cut -d' ' -f2)"
check "pipelined requests" "2" \
  "$(printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' \
     | inns socat -t 5 - TCP:$SLUICE_IP:80 2>/dev/null | grep -o 'HTTP/1.1 200' | wc -l)"

if [ "$KEEP" = 1 ]; then
  echo
  echo "Sluice's HTTP server is running (pid $PID, log $LOG) in namespace $NS at $URL."
  echo "Try:   ip netns exec $NS curl $URL/hello.txt"
  echo "       ip netns exec $NS wrk -t1 -c32 -d5s $URL/"
  echo "Stop:  kill $PID; ip netns del $NS; rm -rf $WORK"
  exit $FAIL
fi

echo "run: loading it with wrk ($CONNS connections, ${SECONDS_LOAD}s)"
WRK=$(inns wrk -t1 -c"$CONNS" -d"${SECONDS_LOAD}s" --latency --timeout 5s "$URL/" 2>&1 || true)
stop_server
echo
echo "$WRK" | sed -n '/Thread Stats/,/Transfer/p' | sed 's/^/  /'

reqs=$(echo "$WRK" | awk '/requests in/ {print $1}')
rps=$(echo "$WRK" | awk '/Requests\/sec/ {print $2}')
non2xx=$(echo "$WRK" | awk '/Non-2xx/ {print $NF}')
errs=$(echo "$WRK" | awk -F'[ ,]+' '/Socket errors/ {s=0; for (i=1;i<=NF;i++) if ($i ~ /^[0-9]+$/) s+=$i; print s}')
p50=$(echo "$WRK" | awk '$1=="50%" {print $2}')
p99=$(echo "$WRK" | awk '$1=="99%" {print $2}')
echo
echo "Summary"
printf '  %-22s %s\n' "correctness (curl)" "$([ $FAIL = 0 ] && echo 'all checks passed' || echo 'SOME CHECKS FAILED')"
printf '  %-22s %s\n' "requests (wrk)" "${reqs:-0} in ${SECONDS_LOAD}s, ${CONNS} connections"
printf '  %-22s %s\n' "errors" "socket ${errs:-0}, non-2xx ${non2xx:-0}"
printf '  %-22s %s\n' "requests per second" "${rps:-0}"
printf '  %-22s %s\n' "latency p50 / p99" "${p50:-?} / ${p99:-?}"
printf '  %-22s %s\n' "server" "$(grep -E '^stats:' "$LOG" | tail -1 | sed 's/^stats: //' | cut -c1-160)"
[ "$FAIL" = 0 ] && [ "${reqs:-0}" -gt 0 ] && [ "${errs:-0}" = 0 ] && [ -z "${non2xx:-}" ] || { echo "run: FAILED" >&2; exit 1; }
