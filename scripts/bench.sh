#!/usr/bin/env bash
# Load benchmark: one command, from a clean clone. Builds release, starts a fake WeChat Pay /
# Alipay provider in its own process, the server in real mode against it (embedded PostgreSQL,
# rate limits off, access log off), a second server with the other runtime shape on the same
# database, and a minimal hyper hello-world (the floor). Servers (and the PostgreSQL they start)
# are pinned to one core, every load generator to the other. Each measurement runs ROUNDS
# times, alternating with the ones it is compared with; the table shows medians and every
# target of the performance issue as a ratio measured in the same run.
#
#   scripts/bench.sh                  # 3 rounds of 5 s per measurement (about 5 minutes)
#   QUICK=1 scripts/bench.sh          # 2 s per measurement, smaller bursts (about 2 minutes)
#   ROUNDS=5 DURATION=10 scripts/bench.sh
#
# Latency percentiles are wrk's (no coordinated-omission correction); pgbench reports its mean.
# Needs wrk and pgbench (Debian: apt-get install wrk postgresql-client; installed when run as
# root) and the PostgreSQL server binaries the embedded database uses.
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=${QUICK:-0}
ROUNDS=${ROUNDS:-3}
if [ "$QUICK" = 1 ]; then DURATION=${DURATION:-2}; else DURATION=${DURATION:-5}; fi
READ_CONNECTIONS=${READ_CONNECTIONS:-64}
WRITE_CONNECTIONS=${WRITE_CONNECTIONS:-32}
if [ "$QUICK" = 1 ]; then CALLBACK_ORDERS=${CALLBACK_ORDERS:-600}; else CALLBACK_ORDERS=${CALLBACK_ORDERS:-2000}; fi
POLL_ORDERS=${POLL_ORDERS:-1000}
POLLS_PER_ORDER=${POLLS_PER_ORDER:-10}
DEFAULT_RUNTIME=${DEFAULT_RUNTIME:-per_core}
OTHER_RUNTIME=$([ "$DEFAULT_RUNTIME" = per_core ] && echo multi_thread || echo per_core)
PORT=${PORT:-18080}
PORT_B=$((PORT + 1)) PORT_HELLO=$((PORT + 2)) PORT_HELLO_B=$((PORT + 3))

need() {
  command -v "$1" >/dev/null && return
  if [ "$(id -u)" = 0 ]; then
    echo "installing $2…"
    apt-get update -qq && apt-get install -y -qq "$2" >/dev/null
  else
    echo "$1 is missing: sudo apt-get install $2" >&2
    exit 1
  fi
}
need wrk wrk
need pgbench postgresql-client
need curl curl

echo "building release…"
cargo build --release --quiet --bin zhifu --bench load
load=$(cargo build --release --bench load --message-format=json 2>/dev/null |
  sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
[ -x "$load" ] || { echo "cannot find the load helper binary" >&2; exit 1; }
zhifu=target/release/zhifu

# 10,000 long-polls need as many descriptors in the server and in the client.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((POLL_ORDERS * POLLS_PER_ORDER + 500)) ]; then
  echo "open files limit $(ulimit -n) is below $((POLL_ORDERS * POLLS_PER_ORDER + 500)): raise it (ulimit -Hn)" >&2
  exit 1
fi

work=$(mktemp -d /tmp/zhifu-bench.XXXXXX)
chmod 755 "$work"
mkdir -p "$work/r"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

cores=$(nproc)
server_cpu=0
load_cpu=$((cores > 1 ? 1 : 0))
on_load() { taskset -c "$load_cpu" "$@"; }

# --- the fake provider (also the driver of the callback and long-poll scenarios) -------------
taskset -c "$load_cpu" "$load" provider "$work/keys" >"$work/provider.log" 2>&1 &
provider_pid=$!
pids+=("$provider_pid")
# It generates six RSA-2048 keys first: seconds on a busy machine.
deadline=$((SECONDS + 120))
until [ -f "$work/keys/server.env" ]; do
  if ! kill -0 "$provider_pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
    echo "the fake provider did not start:" >&2
    cat "$work/provider.log" >&2
    exit 1
  fi
  sleep 0.05
done
# shellcheck disable=SC1091
. "$work/keys/server.env"
provider_url=${ZHIFU__PAYMENTS__WECHAT__API_BASE}

# --- servers -----------------------------------------------------------------------------------
export ZHIFU__LOG__ACCESS=false ZHIFU__LOG__LEVEL=info
export ZHIFU__LIMITS__CREATE_PER_MINUTE=0 ZHIFU__LIMITS__STATUS_PER_MINUTE=0
export ZHIFU__SERVER__MAX_CONNECTIONS=30000
# Orders created here are never paid at the provider: keep reconcile from querying them all
# in the middle of a measurement.
export ZHIFU__PAYMENTS__RECONCILE_INTERVAL_SECS=3600
# No scheduled backup in the middle of a measurement either.
export ZHIFU__BACKUP__EVERY_HOURS=0

# start_server NAME PORT RUNTIME [env…]: starts a server pinned to the server core; sets $server_pid.
start_server() {
  local name=$1 port=$2 runtime=$3
  shift 3
  env ZHIFU__SERVER__LISTEN="127.0.0.1:$port" ZHIFU__SERVER__PUBLIC_URL="http://127.0.0.1:$port" \
    ZHIFU__SERVER__RUNTIME="$runtime" "$@" \
    taskset -c "$server_cpu" "$zhifu" --config config.yaml >>"$work/$name.log" 2>&1 &
  server_pid=$!
  pids+=("$server_pid")
  local deadline=$((SECONDS + 120)) # initdb on a busy machine takes a while
  while [ "$SECONDS" -lt "$deadline" ]; do
    if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then return; fi
    if ! kill -0 "$server_pid" 2>/dev/null; then cat "$work/$name.log"; exit 1; fi
    sleep 0.02
  done
  echo "$name did not become ready" >&2
  cat "$work/$name.log"
  exit 1
}
stop_server() {
  kill -TERM "$1"
  wait "$1" 2>/dev/null || true
}
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

export ZHIFU__DATABASE__EMBEDDED__DATA_DIR="$work/pg"
echo "creating the embedded cluster…"
start_server a "$PORT" "$DEFAULT_RUNTIME"
stop_server "$server_pid"

echo "ready time with the existing cluster (×$ROUNDS)…"
for round in $(seq 1 "$ROUNDS"); do
  : >"$work/a.log"
  start_server a "$PORT" "$DEFAULT_RUNTIME"
  sed -n 's/.*ready_ms=\([0-9]*\).*/\1/p' "$work/a.log" | tail -1 >>"$work/r/ready"
  if [ "$round" != "$ROUNDS" ]; then stop_server "$server_pid"; fi
done
a_pid=$server_pid
sleep 1
rss_kb "$a_pid" >"$work/r/idle_rss"

# The same database for the second server, through the cluster's socket.
start_server b "$PORT_B" "$OTHER_RUNTIME" ZHIFU__DATABASE__URL="host=$work/pg user=postgres dbname=zhifu"
b_pid=$server_pid
taskset -c "$server_cpu" "$load" hello "127.0.0.1:$PORT_HELLO" "$DEFAULT_RUNTIME" &
pids+=($!)
taskset -c "$server_cpu" "$load" hello "127.0.0.1:$PORT_HELLO_B" "$OTHER_RUNTIME" &
pids+=($!)
sleep 0.3

# Paid donations for the rankings, and one order to read the status of.
curl -fsS -X POST "$provider_url/bench/callbacks?server=http://127.0.0.1:$PORT&orders=200&concurrency=8" >/dev/null
order_no=$(curl -fsS -H 'content-type: application/json' \
  -d '{"amount":"8.00","channel":"wechat","category_id":1,"donor_name":"reader"}' \
  "http://127.0.0.1:$PORT/api/donations" | sed 's/.*"order_no":"\([^"]*\)".*/\1/')
# A live crowdfunding project with two goals and a reward, for the cached project detail.
project_id=$(on_load psql -h "$work/pg" -U postgres -d zhifu -qtA -c "
  INSERT INTO users (username, password_hash, display_name) VALUES ('bench_owner', 'x', 'bench') ON CONFLICT DO NOTHING;
  WITH p AS (INSERT INTO projects (owner_id, title, summary, story, deadline, status, published_at, raised_fen, backers)
             SELECT id, '山区学校图书角', '给山区学校建一个图书角', repeat('项目故事。', 40), now() + interval '30 days',
                    'live', now(), 150000, 12 FROM users WHERE username = 'bench_owner' RETURNING id),
       g AS (INSERT INTO project_goals (project_id, position, amount_fen, title, description)
             SELECT id, n, (n + 1) * 100000, '目标 ' || (n + 1), '说明' FROM p, generate_series(0, 1) n),
       r AS (INSERT INTO project_rewards (project_id, position, title, min_amount_fen, quantity)
             SELECT id, 0, '明信片', 2000, 100 FROM p)
  SELECT id FROM p" | tail -1)
# The mall: 100 products of three SKUs; the list and one product are read cached.
on_load psql -q -h "$work/pg" -U postgres -d zhifu -v n=100 -f scripts/bench/mall-seed.sql >/dev/null
mall_product=$(curl -fsS "http://127.0.0.1:$PORT/api/mall/products?size=1" | sed 's/.*"items":\[{"id":\([0-9]*\).*/\1/')

# Community posts for the cached hot list and a post's detail (written in SQL: the search
# codes do not matter here).
psql -q -h "$work/pg" -U postgres -d zhifu -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
INSERT INTO users (username, password_hash, display_name) VALUES ('bench_poster', 'unused', '发帖人');
INSERT INTO posts (board_id, author_id, title, content, search, grams, created_at)
SELECT 1, (SELECT id FROM users WHERE username = 'bench_poster'), '帖子 ' || i,
       repeat('周末去山里徒步，有人一起吗？', 1 + i % 20), '', '{}', now() - i * interval '7 minutes'
  FROM generate_series(1, 300) AS i;
INSERT INTO post_stats (post_id, board_id, created_at, likes, comments)
SELECT id, board_id, created_at, id % 37, id % 11 FROM posts;
SQL
post_id=$(psql -qtA -h "$work/pg" -U postgres -d zhifu -c "SELECT max(id) FROM posts")

# --- measurements --------------------------------------------------------------------------
# to_ms VALUE: wrk's 123.45us / 1.23ms / 1.02s → milliseconds.
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
    printf "%.3f", n }'
}
# wrk_run KEY URL CONNECTIONS [lua]: appends "req/s p50_ms p99_ms" to $work/r/KEY.
wrk_run() {
  local key=$1 url=$2 conns=$3 script=${4:-}
  local args=(-t1 -c"$conns" -d"${DURATION}s" --latency)
  [ -z "$script" ] || args+=(-s "$script")
  local out
  out=$(on_load wrk "${args[@]}" "$url")
  local rps p50 p99
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  p50=$(to_ms "$(awk '$1=="50%" {print $2}' <<<"$out")")
  p99=$(to_ms "$(awk '$1=="99%" {print $2}' <<<"$out")")
  echo "$rps $p50 $p99" >>"$work/r/$key"
  local errors
  errors=$(awk '/Non-2xx|Socket errors/' <<<"$out")
  [ -z "$errors" ] || echo "  ! $key: $errors" | tee -a "$work/r/warnings"
}
pg() { on_load pgbench -h "$work/pg" -U postgres -n -M prepared "$@" zhifu; }
# pgbench_run KEY SCRIPT CLIENTS: appends "tps latency_avg_ms" to $work/r/KEY.
pgbench_run() {
  local out
  out=$(pg -c "$3" -j 1 -T "$DURATION" -f "$2" 2>&1)
  awk '/^tps = / {tps = $3} /^latency average/ {lat = $4} END {print tps, lat}' <<<"$out" >>"$work/r/$1"
}

a="http://127.0.0.1:$PORT" b="http://127.0.0.1:$PORT_B"
reads=(
  "hello|http://127.0.0.1:$PORT_HELLO/healthz"
  "hello_other|http://127.0.0.1:$PORT_HELLO_B/healthz"
  "healthz|$a/healthz"
  "healthz_other|$b/healthz"
  "rankings|$a/api/rankings"
  "rankings_other|$b/api/rankings"
  "payment|$a/api/payments/$order_no"
  "static|$a/static/app.css"
  "project|$a/api/projects/$project_id"
  "mall_products|$a/api/mall/products"
  "mall_product|$a/api/mall/products/$mall_product"
  "community_hot|$a/api/community/posts?sort=hot"
  "community_post|$a/api/community/posts/$post_id"
)
for entry in "${reads[@]}"; do curl -fsS -o /dev/null "${entry#*|}"; done # fill the caches
for round in $(seq 1 "$ROUNDS"); do
  echo "cached reads, round $round/$ROUNDS…"
  # Each round starts one entry later, so no endpoint is always measured first.
  for i in $(seq 0 $((${#reads[@]} - 1))); do
    entry=${reads[$(((i + round - 1) % ${#reads[@]}))]}
    wrk_run "${entry%%|*}" "${entry#*|}" "$READ_CONNECTIONS"
  done
done

for round in $(seq 1 "$ROUNDS"); do
  echo "create donation vs pgbench INSERT, round $round/$ROUNDS…"
  pgbench_run pg_insert scripts/bench/insert.sql "$WRITE_CONNECTIONS"
  wrk_run create "$a/api/donations" "$WRITE_CONNECTIONS" scripts/bench/create.lua
  taskset -c "$server_cpu" "$load" rsa 2 >>"$work/r/rsa"
done

echo "seeding pending orders for pgbench's callback transaction…"
pg -t 1 -c 1 -D n=$((ROUNDS * 6000 * DURATION)) -f scripts/bench/callback-seed.sql >/dev/null 2>&1
for round in $(seq 1 "$ROUNDS"); do
  echo "callbacks vs pgbench of the same transaction, round $round/$ROUNDS…"
  pgbench_run pg_callback scripts/bench/callback.sql "$WRITE_CONNECTIONS"
  if out=$(curl -fsS -X POST "$provider_url/bench/callbacks?server=$a&orders=$CALLBACK_ORDERS&concurrency=$WRITE_CONNECTIONS"); then
    echo "$out" >>"$work/r/callbacks"
    awk '$4 < $5 { print "  ! callbacks: " $4 " of " $5 " acknowledged (see the provider log)" }' <<<"$out" |
      tee -a "$work/r/warnings"
  else
    echo "  ! callbacks round $round failed: $(tail -3 "$work/provider.log")" | tee -a "$work/r/warnings"
  fi
done

echo "$((POLL_ORDERS * POLLS_PER_ORDER)) parked long-polls, then $POLL_ORDERS payments in a burst…"
curl -fsS -X POST \
  "$provider_url/bench/longpoll?server=$a&orders=$POLL_ORDERS&per_order=$POLLS_PER_ORDER&pid=$a_pid&concurrency=64" \
  >"$work/r/longpoll" || {
  echo "  ! the long-poll scenario failed: $(tail -3 "$work/provider.log")" | tee -a "$work/r/warnings"
  echo "0 0 0 nan nan false nan" >"$work/r/longpoll"
}
rss_kb "$a_pid" >"$work/r/final_rss"

# --- the table -------------------------------------------------------------------------------
# med KEY COLUMN: the median of a column over the rounds.
med() {
  awk -v c="$2" '{print $c}' "$work/r/$1" | sort -g |
    awk '{v[NR] = $1} END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
min() { awk -v a="$1" -v b="$2" 'BEGIN { print (a < b ? a : b) }'; }
# verdict VALUE OP LIMIT: "ok" or "MISS".
verdict() { awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN { ok = (op == ">=") ? v >= l : v <= l; print (ok ? "ok" : "MISS") }'; }
row() { printf '%-40s %10s %9s %9s  %-34s %s\n' "$@"; }

hello=$(med hello 1) healthz=$(med healthz 1)
pg_insert=$(med pg_insert 1) rsa=$(med rsa 1) pg_callback=$(med pg_callback 1)
create_floor=$(min "$pg_insert" "$rsa")
read -r pollers rss_before rss_parked burst_ms wake_ms all_paid lag_ms <"$work/r/longpoll"
poll_mb=$(awk -v a="$rss_parked" -v b="$rss_before" 'BEGIN { printf "%.1f", (a - b) / 1024 }')
idle_mb=$(awk '{ printf "%.1f", $1 / 1024 }' "$work/r/idle_rss")
final_mb=$(awk '{ printf "%.1f", $1 / 1024 }' "$work/r/final_rss")
ready_ms=$(med ready 1)

echo
echo "zhifu $("$zhifu" --version | awk '{print $2}') · $(nproc) cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo))"
echo "server, hello-world and PostgreSQL on cpu $server_cpu; wrk -t1, pgbench -j1 and the provider on cpu $load_cpu"
echo "runtime $DEFAULT_RUNTIME (other: $OTHER_RUNTIME) · medians of $ROUNDS rounds of ${DURATION}s · latencies in ms (wrk: no coordinated-omission correction)"
echo
row "measurement" "req/s" "p50" "p99" "ratio (target)" "holds"
row "hello-world ($DEFAULT_RUNTIME), c$READ_CONNECTIONS" "$hello" "$(med hello 2)" "$(med hello 3)" "floor" ""
row "/healthz, c$READ_CONNECTIONS" "$healthz" "$(med healthz 2)" "$(med healthz 3)" \
  "$(ratio "$healthz" "$hello") × hello (≥ 0.90)" "$(verdict "$(ratio "$healthz" "$hello")" ">=" 0.9)"
for key in rankings payment static project mall_products mall_product community_hot community_post; do
  case $key in
    rankings) name="/api/rankings" ;; payment) name="/api/payments/{no}" ;; static) name="/static/app.css" ;;
    project) name="/api/projects/{id}" ;;
    mall_products) name="/api/mall/products" ;; mall_product) name="/api/mall/products/{id}" ;;
    community_hot) name="/api/community/posts?sort=hot" ;; community_post) name="/api/community/posts/{id}" ;;
  esac
  r=$(ratio "$(med "$key" 1)" "$healthz") p99=$(med "$key" 3)
  ok=$( [ "$(verdict "$r" ">=" 0.9)" = ok ] && [ "$(verdict "$p99" "<=" 1)" = ok ] && echo ok || echo MISS)
  row "$name, c$READ_CONNECTIONS" "$(med "$key" 1)" "$(med "$key" 2)" "$p99" "$r × /healthz (≥ 0.90, p99 ≤ 1)" "$ok"
done
r=$(ratio "$(med create 1)" "$create_floor") p99=$(med create 3)
ok=$( [ "$(verdict "$r" ">=" 0.5)" = ok ] && [ "$(verdict "$p99" "<=" 10)" = ok ] && echo ok || echo MISS)
row "POST /api/donations, c$WRITE_CONNECTIONS" "$(med create 1)" "$(med create 2)" "$p99" "$r × min(pgbench, RSA) (≥ 0.50, p99 ≤ 10)" "$ok"
row "  pgbench same INSERT, c$WRITE_CONNECTIONS (mean)" "$pg_insert" "$(med pg_insert 2)" "" "" ""
row "  RSA-2048 signatures, one core" "$rsa" "" "" "" ""
r=$(ratio "$(med callbacks 1)" "$pg_callback")
row "POST /notify/wechat, c$WRITE_CONNECTIONS" "$(med callbacks 1)" "$(med callbacks 2)" "$(med callbacks 3)" \
  "$r × pgbench (≥ 0.50)" "$(verdict "$r" ">=" 0.5)"
row "  pgbench same transaction, c$WRITE_CONNECTIONS (mean)" "$pg_callback" "$(med pg_callback 2)" "" "" ""
row "$pollers parked long-polls: RSS delta" "" "" "" "$poll_mb MB (≤ 50)" "$(verdict "$poll_mb" "<=" 50)"
row "$POLL_ORDERS payments in a burst: all pollers woken" "" "" "" "${wake_ms} ms (≤ 1000)" \
  "$( [ "$all_paid" = true ] && verdict "$wake_ms" "<=" 1000 || echo MISS)"
row "  the burst's callbacks, c64" "" "" "" "${burst_ms} ms; pollers ≤ ${lag_ms} ms after each ack" ""
row "idle RSS (PostgreSQL not counted)" "" "" "" "$idle_mb MB (≤ 30)" "$(verdict "$idle_mb" "<=" 30)"
row "ready with an existing cluster" "" "" "" "$ready_ms ms (≤ 300)" "$(verdict "$ready_ms" "<=" 300)"
echo
echo "runtime shapes (same run, same database, same core):"
row "hello-world ($OTHER_RUNTIME)" "$(med hello_other 1)" "$(med hello_other 2)" "$(med hello_other 3)" \
  "$(ratio "$(med hello_other 1)" "$hello") × hello ($DEFAULT_RUNTIME)" ""
row "/healthz ($OTHER_RUNTIME)" "$(med healthz_other 1)" "$(med healthz_other 2)" "$(med healthz_other 3)" \
  "$(ratio "$(med healthz_other 1)" "$healthz") × /healthz ($DEFAULT_RUNTIME)" ""
row "/api/rankings ($OTHER_RUNTIME)" "$(med rankings_other 1)" "$(med rankings_other 2)" "$(med rankings_other 3)" \
  "$(ratio "$(med rankings_other 1)" "$(med rankings 1)") × /api/rankings ($DEFAULT_RUNTIME)" ""
echo
echo "server RSS at the end: $final_mb MB (embedded PostgreSQL not counted)"
[ ! -s "$work/r/warnings" ] || { echo "warnings:"; cat "$work/r/warnings"; }
if [ -n "${KEEP_RESULTS:-}" ]; then cp -r "$work/r" "$KEEP_RESULTS" && cp "$work"/*.log "$KEEP_RESULTS/"; fi
