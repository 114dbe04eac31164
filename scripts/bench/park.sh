#!/usr/bin/env bash
# Memory per parked long-poll: N requests parked on their own connections, the server's RSS
# growth divided by N, for zhifu's two long-polls (`GET /api/payments/{no}?wait=30` over
# ORDERS orders, `GET /api/me/notifications/unread-count?wait=30` of one signed-in user) and
# for the bare hyper server of benches/load.rs parking the same request (`load hello`, which
# drops the request before it parks) — in the same run, every measurement on a freshly started
# process (an allocator that reuses what a previous measurement freed would hide growth).
# RSS is counted by the kernel, so the figures hold on a busy machine; they do not depend on
# timing as long as every poll is parked when RSS is read (the table says how many were not).
#
#   scripts/bench/park.sh                          # after cargo build --release --bench load
#   ZHIFU_BEFORE=/path/older/zhifu scripts/bench/park.sh   # adds that binary's rows
#   N=10000 ORDERS=1000 ROUNDS=1 HELLO_OPTIONS=1 scripts/bench/park.sh
#
# HELLO_OPTIONS=1 adds rows for the bare server with hyper's builder options that could go
# below its floor (`half_close`, `writev(false)`).
set -euo pipefail
cd "$(dirname "$0")/../.."

N=${N:-10000}
ORDERS=${ORDERS:-1000}
ROUNDS=${ROUNDS:-1}
PORT=${PORT:-18190}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
ZHIFU=${ZHIFU:-target/release/zhifu}
ZHIFU_BEFORE=${ZHIFU_BEFORE:-}
LOAD=${LOAD:-$(ls -t target/release/deps/load-* 2>/dev/null | grep -v '\.d$' | head -1)}
[ -x "$ZHIFU" ] && [ -x "$LOAD" ] || { echo "build first: cargo build --release --bench load" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge $((N + 500)) ] || {
  echo "open files limit $(ulimit -n) is below $((N + 500))" >&2
  exit 1
}

work=$(mktemp -d /tmp/zhifu-park.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

taskset -c "$LOAD_CPU" "$LOAD" provider "$work/keys" >"$work/provider.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do [ -f "$work/keys/server.env" ] && break; sleep 0.1; done
driver=$(. "$work/keys/server.env" && echo "$ZHIFU__PAYMENTS__WECHAT__API_BASE")

server_pid=
# start_zhifu BINARY: a fresh server process on the one database, ready.
start_zhifu() {
  ZHIFU__DATABASE__EMBEDDED__DATA_DIR="$work/pg" ZHIFU__SERVER__LISTEN="127.0.0.1:$PORT" \
    ZHIFU__SERVER__PUBLIC_URL="http://127.0.0.1:$PORT" ZHIFU__SERVER__MAX_CONNECTIONS=30000 \
    ZHIFU__LIMITS__CREATE_PER_MINUTE=0 ZHIFU__LIMITS__STATUS_PER_MINUTE=0 \
    ZHIFU__PAYMENTS__RECONCILE_INTERVAL_SECS=3600 ZHIFU__BACKUP__EVERY_HOURS=0 ZHIFU__LOG__LEVEL=warn \
    taskset -c "$SERVER_CPU" "$1" --config config.yaml >>"$work/server.log" 2>&1 &
  server_pid=$!
  pids+=("$server_pid")
  for _ in $(seq 1 600); do
    curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && return 0
    kill -0 "$server_pid" 2>/dev/null || { tail -20 "$work/server.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "the server did not get ready" >&2
  exit 1
}
stop() {
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# park NAME PID PATH [EXTRA]: one measurement, appended to the results.
park() {
  local name=$1 pid=$2 path=$3 extra=${4:-} out
  out=$(curl -fsS -X POST --max-time 300 -G "$driver/bench/park" \
    --data-urlencode "server=http://127.0.0.1:$PORT" --data-urlencode "pid=$pid" \
    --data-urlencode "n=$N" --data-urlencode "path=$path" $extra)
  echo "$name $out" | tee -a "$work/results" >&2
}

# A user to poll for: registered and signed in once, the session kept in the database.
start_zhifu "$ZHIFU"
curl -fsS -o /dev/null -H 'content-type: application/json' \
  -d '{"username":"parker","password":"a long bench password 1","email":"parker@example.com","display_name":"Parker"}' \
  "http://127.0.0.1:$PORT/api/auth/register"
token=$(curl -fsS -H 'content-type: application/json' -d '{"username":"parker","password":"a long bench password 1"}' \
  "http://127.0.0.1:$PORT/api/auth/login" | sed 's/.*"token":"\([^"]*\)".*/\1/')
stop "$server_pid"

status_path='/api/payments/{order}?wait=30'
unread_path='/api/me/notifications/unread-count?wait=30'
hello_path='/api/payments/0193a4b2c3d47e8f9a0b1c2d3e4f5a6b?wait=30'

hello_round() {
  local name=$1
  shift
  env "$@" taskset -c "$SERVER_CPU" "$LOAD" hello "127.0.0.1:$PORT" per_core &
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$PORT/" >/dev/null 2>&1 && break; sleep 0.1; done
  park "$name" "$pid" "$hello_path"
  stop "$pid"
}

zhifu_round() {
  local label=$1 binary=$2
  start_zhifu "$binary"
  park "$label/status" "$server_pid" "$status_path" "--data-urlencode orders=$ORDERS"
  stop "$server_pid"
  start_zhifu "$binary"
  park "$label/unread" "$server_pid" "$unread_path" "--data-urlencode token=$token"
  stop "$server_pid"
}

for _ in $(seq 1 "$ROUNDS"); do
  hello_round hyper
  if [ "${HELLO_OPTIONS:-0}" = 1 ]; then
    hello_round hyper+half_close HELLO_HALF_CLOSE=1
    hello_round hyper+no_writev HELLO_WRITEV=0
  fi
  [ -z "$ZHIFU_BEFORE" ] || zhifu_round before "$ZHIFU_BEFORE"
  zhifu_round zhifu "$ZHIFU"
done

echo
echo "$N parked polls per row, RSS growth per poll (KB = 1024 B); medians over $ROUNDS round(s)"
printf '%-22s %10s %10s %9s %10s %6s %6s\n' measurement "before kB" "parked kB" "KB/poll" "× hyper" early failed
sort -k1,1 -s "$work/results" | awk '
  { key = $1; per = ($4 - $3) / $2; vals[key] = vals[key] " " per; rb[key] = $3; rp[key] = $4; e[key] += $5; f[key] += $6; order[key] = ++n }
  function median(list,   a, c, i, j, t) {
    c = split(list, a, " ")
    for (i = 1; i <= c; i++) for (j = i + 1; j <= c; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return c % 2 ? a[(c + 1) / 2] : (a[c / 2] + a[c / 2 + 1]) / 2
  }
  END {
    floor = median(vals["hyper"])
    for (k in order) printf "%-22s %10d %10d %9.2f %10.2f %6d %6d\n", k, rb[k], rp[k], median(vals[k]), median(vals[k]) / floor, e[k], f[k]
  }' | sort
