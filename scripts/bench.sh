#!/usr/bin/env bash
# Load benchmark: builds the release binary, starts it with a throw-away embedded database,
# pins it to one core and wrk to the other, seeds a few sandbox donations, and prints req/s,
# latency and the ratio to /healthz (the first endpoint) for each endpoint.
#
#   scripts/bench.sh                 # 10 s per endpoint, 64 connections
#   DURATION=30 CONNECTIONS=128 scripts/bench.sh
#
# Needs wrk (Debian: apt-get install wrk; installed automatically when run as root).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-1}
PORT=${PORT:-18080}
ENDPOINTS=${ENDPOINTS:-"/healthz /api/rankings /api/rankings?range=week&size=10 /api/categories /static/app.css"}

if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing wrk…"
    apt-get update -qq && apt-get install -y -qq wrk >/dev/null
  else
    echo "wrk is missing: sudo apt-get install wrk" >&2
    exit 1
  fi
fi

echo "building release…"
cargo build --release --quiet

work=$(mktemp -d /tmp/zhifu-bench.XXXXXX)
chmod 755 "$work"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid"
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

cores=$(nproc)
server_cpu=0
load_cpu=$(( cores > 1 ? 1 : 0 ))

# Rate limits off: a single wrk client would be measured as limited.
ZHIFU__DATABASE__EMBEDDED__DATA_DIR="$work/pg" \
ZHIFU__SERVER__LISTEN="127.0.0.1:$PORT" \
ZHIFU__SERVER__WORKERS=1 \
ZHIFU__LOG__ACCESS=false \
ZHIFU__LIMITS__CREATE_PER_MINUTE=0 \
ZHIFU__LIMITS__STATUS_PER_MINUTE=0 \
ZHIFU__LOG__LEVEL=warn \
  taskset -c "$server_cpu" target/release/zhifu --config config.yaml >"$work/server.log" 2>&1 &
server_pid=$!

for _ in $(seq 1 300); do
  if curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$server_pid" 2>/dev/null; then cat "$work/server.log"; exit 1; fi
  sleep 0.05
done
curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null

# Some paid donations through the sandbox, so the rankings have rows.
for i in $(seq 1 30); do
  no=$(curl -fsS -H 'content-type: application/json' \
    -d "{\"amount\":\"$i.00\",\"channel\":\"wechat\",\"category_id\":1,\"donor_name\":\"donor$((i % 12))\"}" \
    "http://127.0.0.1:$PORT/api/donations" | sed 's/.*"order_no":"\([^"]*\)".*/\1/')
  curl -fsS -o /dev/null -X POST "http://127.0.0.1:$PORT/sandbox/pay/$no"
done

echo
echo "zhifu $(target/release/zhifu --version | awk '{print $2}') · server on cpu $server_cpu (1 worker) · wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s on cpu $load_cpu"
printf '%-34s %12s %10s %10s %10s %8s\n' endpoint req/s p50 p99 max ratio
healthz_rps=""
for path in $ENDPOINTS; do
  curl -fsS -o /dev/null "http://127.0.0.1:$PORT$path"   # warm caches
  out=$(taskset -c "$load_cpu" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "http://127.0.0.1:$PORT$path")
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  max=$(awk '/^ +Latency/ {print $4}' <<<"$out")
  errors=$(awk '/Non-2xx|Socket errors/' <<<"$out")
  [ -n "$healthz_rps" ] || healthz_rps=$rps
  ratio=$(awk -v a="$rps" -v b="$healthz_rps" 'BEGIN { printf "%.2f", a / b }')
  printf '%-34s %12s %10s %10s %10s %8s\n' "$path" "$rps" "$p50" "$p99" "$max" "$ratio"
  [ -z "$errors" ] || echo "  ! $errors"
done
rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$server_pid/status")
echo
echo "server RSS after the runs: $((rss_kb / 1024)) MiB (embedded PostgreSQL not counted)"
