#!/usr/bin/env bash
# Load benchmark: one command, from a clean clone, one table of ratios from one run. Builds
# release, starts a fake WeChat Pay / Alipay provider in its own process, the server as shipped
# (config.yaml: access log on) in real mode against it (embedded PostgreSQL, rate limits off),
# a second server on the same database with the access log off, and a minimal hyper
# hello-world serving the same bytes (the floor). Servers (and the PostgreSQL they start) are
# pinned to one core, every load generator to the other. Each measurement runs ROUNDS times,
# interleaved with the ones it is compared with; the table shows medians and every target of
# the performance issue as a ratio measured in the same run:
#
# - cached reads: wrk -t1 -c64 (saturated) beside the floor answering the same request with
#   the same bytes (the hello-world mirrors each read's answer: a 32 KB stylesheet is not
#   compared with a 15-byte body), then oha at a fixed rate (50 % and 80 % of each endpoint's
#   own saturated rate) with latency correction — p50/p99/p99.9 that count the waiting
#   (coordinated omission) — beside the same floor at the same rates;
# - writes beside references doing the same work with nothing else: create donation beside
#   `load refcreate` (the same INSERT plus one RSA-2048 signature, on the server's core);
#   mall order and backing beside pgbench of their SQL (scripts/bench/writes.sh); callbacks
#   beside pgbench of the callback transaction;
# - 10,000 parked long-polls (payment status and unread count) beside bare hyper parking the
#   same request (scripts/bench/park.sh), and the burst that wakes 10,000 pollers.
#
#   scripts/bench.sh                  # 3 rounds of 5 s per measurement (about 25 minutes)
#   QUICK=1 scripts/bench.sh          # 1 round of 2 s, 2,000 parked polls (about 6 minutes)
#   ROUNDS=5 DURATION=10 scripts/bench.sh
#   PARTS="reads writes" scripts/bench.sh   # some of the parts: reads, writes, park
#
# Needs wrk, oha (cargo install oha; installed when missing), pgbench (Debian: apt-get install
# wrk postgresql-client; installed when run as root) and the PostgreSQL server binaries the
# embedded database uses.
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
  ROUNDS=${ROUNDS:-1} DURATION=${DURATION:-2} PARK_N=${PARK_N:-2000} POLL_ORDERS=${POLL_ORDERS:-200}
else
  ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-5} PARK_N=${PARK_N:-10000}
fi
READ_CONNECTIONS=${READ_CONNECTIONS:-64}
# What oha paces on one core with latency correction (wrk saturates the floor near 190,000
# req/s here, oha's pacing near 60,000 with the floor's p99 already 3.7 ms): fixed rates are
# shares of the endpoint's saturated rate or of this, whichever is lower, so that they
# measure the server, not the generator.
RATE_CAP=${RATE_CAP:-50000}
WRITE_CONNECTIONS=${WRITE_CONNECTIONS:-32}
if [ "$QUICK" = 1 ]; then CALLBACK_ORDERS=${CALLBACK_ORDERS:-600}; else CALLBACK_ORDERS=${CALLBACK_ORDERS:-2000}; fi
POLL_ORDERS=${POLL_ORDERS:-1000}
POLLS_PER_ORDER=${POLLS_PER_ORDER:-10}
RUNTIME=${RUNTIME:-per_core}
# Which parts run (all by default): reads, writes, park (the parked long-polls and the burst).
PARTS=${PARTS:-reads writes park}
part() { [[ " $PARTS " == *" $1 "* ]]; }
PORT=${PORT:-18080}
PORT_B=$((PORT + 1)) PORT_HELLO=$((PORT + 2))

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
if ! command -v oha >/dev/null; then
  echo "installing oha (cargo install oha)…"
  cargo install --quiet oha
fi

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
# The access log stays as config.yaml ships it (on); server b turns it off.
export ZHIFU__LOG__LEVEL=info
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
start_server a "$PORT" "$RUNTIME"
stop_server "$server_pid"

echo "ready time with the existing cluster (×$ROUNDS)…"
for round in $(seq 1 "$ROUNDS"); do
  : >"$work/a.log"
  start_server a "$PORT" "$RUNTIME"
  sed -n 's/.*ready_ms=\([0-9]*\).*/\1/p' "$work/a.log" | tail -1 >>"$work/r/ready"
  if [ "$round" != "$ROUNDS" ]; then stop_server "$server_pid"; fi
done
a_pid=$server_pid
sleep 1
rss_kb "$a_pid" >"$work/r/idle_rss"

# The same database for the second server (access log off), through the cluster's socket.
start_server b "$PORT_B" "$RUNTIME" ZHIFU__DATABASE__URL="host=$work/pg user=postgres dbname=zhifu" \
  ZHIFU__LOG__ACCESS=false
b_pid=$server_pid
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
# oha_run KEY URL RATE: a fixed-rate run with latency correction (each request's latency
# counted from when it was due, not when it was sent); appends "rate p50 p99 p99.9" (ms).
oha_run() {
  local key=$1 url=$2 rate=$3 out
  out=$(on_load oha --no-tui --output-format json --latency-correction \
    -z "${DURATION}s" -c "$READ_CONNECTIONS" -q "$rate" "$url" 2>/dev/null) || out='{}'
  python3 -c '
import json, sys
d = json.loads(sys.stdin.read() or "{}")
p = d.get("latencyPercentiles", {})
codes = d.get("statusCodeDistribution", {})
bad = sum(v for k, v in codes.items() if not k.startswith("2"))
ms = lambda k: "%.3f" % (1000 * p[k]) if p.get(k) is not None else "nan"
print(sys.argv[1], ms("p50"), ms("p99"), ms("p99.9"), bad)' "$rate" <<<"$out" >>"$work/r/$key"
}
pg() { on_load pgbench -h "$work/pg" -U postgres -n -M prepared "$@" zhifu; }
# pgbench_run KEY SCRIPT CLIENTS: appends "tps latency_avg_ms" to $work/r/KEY.
pgbench_run() {
  local out
  out=$(pg -c "$3" -j 1 -T "$DURATION" -f "$2" 2>&1)
  awk '/^tps = / {tps = $3} /^latency average/ {lat = $4} END {print tps, lat}' <<<"$out" >>"$work/r/$1"
}
# med KEY COLUMN: the median of a column over the rounds.
med() {
  [ -s "$work/r/$1" ] || { echo nan; return; }
  awk -v c="$2" '{print $c}' "$work/r/$1" | sort -g |
    awk '{v[NR] = $1} END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

a="http://127.0.0.1:$PORT" b="http://127.0.0.1:$PORT_B" hello_url="http://127.0.0.1:$PORT_HELLO/healthz"
# key|name|url — the floor first. Every other read is compared with the floor answering the
# same request with the same bytes (its key_floor, the hello-world's mirror of it; /healthz's
# is the floor itself), measured beside it in each round.
reads=(
  "hello|hello-world (bare hyper)|$hello_url"
  "healthz|/healthz|$a/healthz"
  "healthz_nolog|/healthz, access log off|$b/healthz"
  "rankings|/api/rankings|$a/api/rankings"
  "rankings_nolog|/api/rankings, access log off|$b/api/rankings"
  "recent|/api/donations/recent|$a/api/donations/recent"
  "stats|/api/stats|$a/api/stats"
  "categories|/api/categories|$a/api/categories"
  "payment|/api/payments/{no}|$a/api/payments/$order_no"
  "static|/static/app.css|$a/static/app.css"
  "projects|/api/projects|$a/api/projects"
  "project|/api/projects/{id}|$a/api/projects/$project_id"
  "mall_products|/api/mall/products|$a/api/mall/products"
  "mall_product|/api/mall/products/{id}|$a/api/mall/products/$mall_product"
  "community_hot|/api/community/posts?sort=hot|$a/api/community/posts?sort=hot"
  "community_post|/api/community/posts/{id}|$a/api/community/posts/$post_id"
)
field() { cut -d'|' -f"$2" <<<"$1"; }
# floor_of KEY: the key of the floor a read is compared with.
floor_of() {
  case $1 in
    hello | healthz | healthz_nolog) echo hello ;;
    *_nolog) echo "${1%_nolog}_floor" ;;
    *) echo "${1}_floor" ;;
  esac
}
for entry in "${reads[@]:1}"; do curl -fsS -o /dev/null "$(field "$entry" 3)"; done # fill the caches
# The floor's mirror: each read's bytes as the server (access log on) answers them.
mkdir -p "$work/mirror"
: >"$work/mirror.list"
for entry in "${reads[@]:1}"; do
  key=$(field "$entry" 1) url=$(field "$entry" 3)
  [ "$(floor_of "$key")" = "${key}_floor" ] || continue
  type=$(curl -fsS -o "$work/mirror/$key" -w '%{content_type}' "$url")
  printf '%s\t%s\t%s\n' "/${url#http://*/}" "$work/mirror/$key" "$type" >>"$work/mirror.list"
done
HELLO_MIRROR="$work/mirror.list" taskset -c "$server_cpu" "$load" hello "127.0.0.1:$PORT_HELLO" "$RUNTIME" &
hello_pid=$!
pids+=("$hello_pid")
until curl -fsS -o /dev/null "$hello_url" 2>/dev/null; do
  kill -0 "$hello_pid" 2>/dev/null || { echo "the hello-world floor did not start" >&2; exit 1; }
  sleep 0.05
done
# floor_url ENTRY: the same request to the floor.
floor_url() { local url; url=$(field "$1" 3); echo "http://127.0.0.1:$PORT_HELLO/${url#http://*/}"; }
read_rounds=$ROUNDS
part reads || read_rounds=0
for round in $(seq 1 "$read_rounds"); do
  echo "cached reads, saturated (wrk), round $round/$ROUNDS…"
  # Each round starts one entry later, so no endpoint is always measured first.
  for i in $(seq 0 $((${#reads[@]} - 1))); do
    entry=${reads[$(((i + round - 1) % ${#reads[@]}))]}
    key=$(field "$entry" 1)
    wrk_run "$key" "$(field "$entry" 3)" "$READ_CONNECTIONS"
    [ "$(floor_of "$key")" != "${key}_floor" ] || wrk_run "${key}_floor" "$(floor_url "$entry")" "$READ_CONNECTIONS"
  done
done
if part reads; then
  echo "cached reads at 50 % and 80 % of their saturated rate or of $RATE_CAP/s (oha, latency-corrected), beside the floor…"
fi
for entry in "${reads[@]:1}"; do
  part reads || break
  key=$(field "$entry" 1)
  for share in 50 80; do
    rate=$(awk -v r="$(med "$key" 1)" -v c="$RATE_CAP" -v s="$share" 'BEGIN { printf "%d", (r < c ? r : c) * s / 100 }')
    [ "$rate" -gt 0 ] || continue
    oha_run "${key}_q$share" "$(field "$entry" 3)" "$rate"
    floor=$hello_url
    [ "$(floor_of "$key")" != "${key}_floor" ] || floor=$(floor_url "$entry")
    oha_run "${key}_q${share}_floor" "$floor" "$rate"
  done
done

# checkpoint: each write measurement starts from a fresh checkpoint, so that none pays for
# the WAL the one before it wrote (a checkpoint in the middle of one 5 s window decides it).
checkpoint() { on_load psql -q -h "$work/pg" -U postgres -d zhifu -c CHECKPOINT >/dev/null; }
if part writes; then
for round in $(seq 1 "$ROUNDS"); do
  echo "create donation vs the reference (INSERT + RSA-2048 on the server core), round $round/$ROUNDS…"
  checkpoint
  taskset -c "$server_cpu" "$load" refcreate "$work/pg" "$WRITE_CONNECTIONS" "$DURATION" >>"$work/r/ref_create"
  checkpoint
  wrk_run create "$a/api/donations" "$WRITE_CONNECTIONS" scripts/bench/create.lua
  checkpoint
  pgbench_run pg_insert scripts/bench/insert.sql "$WRITE_CONNECTIONS"
  taskset -c "$server_cpu" "$load" rsa 2 >>"$work/r/rsa"
done
if [ -x scripts/bench/writes.sh ]; then
  echo "mall order and backing vs pgbench of their SQL…"
  DURATION=$DURATION WRITE_CONNECTIONS=$WRITE_CONNECTIONS LOAD_CPU=$load_cpu ROUNDS=$ROUNDS \
    scripts/bench/writes.sh "$a" "$work/pg" "$work/r" || echo "  ! scripts/bench/writes.sh failed" | tee -a "$work/r/warnings"
fi

echo "seeding pending orders for pgbench's callback transaction…"
pg -t 1 -c 1 -D n=$((ROUNDS * 6000 * DURATION)) -f scripts/bench/callback-seed.sql >/dev/null 2>&1
# callback_round: the server's callbacks (the provider creates the orders first, then times
# their signed notifications).
callback_round() {
  local out
  checkpoint
  if out=$(curl -fsS -X POST "$provider_url/bench/callbacks?server=$a&orders=$CALLBACK_ORDERS&concurrency=$WRITE_CONNECTIONS"); then
    echo "$out" >>"$work/r/callbacks"
    awk '$4 < $5 { print "  ! callbacks: " $4 " of " $5 " acknowledged (see the provider log)" }' <<<"$out" |
      tee -a "$work/r/warnings"
  else
    echo "  ! callbacks round $round failed: $(tail -3 "$work/provider.log")" | tee -a "$work/r/warnings"
  fi
}
for round in $(seq 1 "$ROUNDS"); do
  echo "callbacks vs pgbench of the same transaction, round $round/$ROUNDS…"
  # Which goes first alternates by round.
  if [ $((round % 2)) = 1 ]; then
    checkpoint
    pgbench_run pg_callback scripts/bench/callback.sql "$WRITE_CONNECTIONS"
  fi
  callback_round
  if [ $((round % 2)) = 0 ]; then
    checkpoint
    pgbench_run pg_callback scripts/bench/callback.sql "$WRITE_CONNECTIONS"
  fi
done
fi

echo "0 0 0 nan nan false nan" >"$work/r/longpoll"
if part park; then
echo "$((POLL_ORDERS * POLLS_PER_ORDER)) parked long-polls, then $POLL_ORDERS payments in a burst…"
curl -fsS -X POST \
  "$provider_url/bench/longpoll?server=$a&orders=$POLL_ORDERS&per_order=$POLLS_PER_ORDER&pid=$a_pid&concurrency=64" \
  >"$work/r/longpoll" || {
  echo "  ! the long-poll scenario failed: $(tail -3 "$work/provider.log")" | tee -a "$work/r/warnings"
  echo "0 0 0 nan nan false nan" >"$work/r/longpoll"
}
fi
rss_kb "$a_pid" >"$work/r/final_rss"
stop_server "$a_pid"
stop_server "$b_pid"

: >"$work/r/park"
if part park; then
  echo "memory per parked poll: $PARK_N parked on fresh processes, zhifu's two long-polls and bare hyper…"
  ZHIFU="$zhifu" LOAD="$load" N="$PARK_N" ORDERS=$((PARK_N / 10)) ROUNDS=1 PORT=$((PORT + 10)) \
    scripts/bench/park.sh 2>/dev/null | tail -n +4 >"$work/r/park" ||
    echo "  ! scripts/bench/park.sh failed" | tee -a "$work/r/warnings"
fi

# --- the table -------------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
# verdict VALUE OP LIMIT: "ok" or "MISS".
verdict() { awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN { ok = (op == ">=") ? v >= l : v <= l; print (ok ? "ok" : "MISS") }'; }
both() { [ "$1" = ok ] && [ "$2" = ok ] && echo ok || echo MISS; }
row() { printf '%-40s %9s %8s %8s  %-38s %-5s %s\n' "$@"; }

hello=$(med hello 1) hello_p99=$(med hello 3)
read -r pollers rss_before rss_parked burst_ms wake_ms all_paid lag_ms <"$work/r/longpoll"
idle_mb=$(awk '{ printf "%.1f", $1 / 1024 }' "$work/r/idle_rss")
final_mb=$(awk '{ printf "%.1f", $1 / 1024 }' "$work/r/final_rss")

echo
echo "zhifu $("$zhifu" --version | awk '{print $2}') · $(nproc) cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)) · load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "server, hello-world and PostgreSQL on cpu $server_cpu; wrk -t1, oha, pgbench -j1 and the provider on cpu $load_cpu"
echo "runtime $RUNTIME · config.yaml as shipped (access log on) unless said · medians of $ROUNDS rounds of ${DURATION}s · ms"
echo
if part reads; then
echo "saturated reads, c$READ_CONNECTIONS (wrk; its latencies leave out coordinated omission); each beside the floor"
echo "answering the same request with the same bytes (the last column: that floor's req/s and p99, and × hello,"
echo "the ratio to /healthz's floor)"
row "measurement" "req/s" "p50" "p99" "ratio (target)" "holds" "its floor"
row "hello-world (bare hyper)" "$hello" "$(med hello 2)" "$hello_p99" "floor" "" ""
for entry in "${reads[@]:1}"; do
  key=$(field "$entry" 1) name=$(field "$entry" 2) floor=$(floor_of "$key")
  r=$(ratio "$(med "$key" 1)" "$(med "$floor" 1)") p99=$(med "$key" 3) p99r=$(ratio "$p99" "$(med "$floor" 3)")
  mine="$(med "$floor" 1) req/s, p99 $(med "$floor" 3); $(ratio "$(med "$key" 1)" "$hello")× hello"
  case $key in
    healthz | healthz_nolog | rankings_nolog)
      row "$name" "$(med "$key" 1)" "$(med "$key" 2)" "$p99" "$r × floor (≥ 0.95)" "$(verdict "$r" ">=" 0.95)" "$mine" ;;
    *)
      row "$name" "$(med "$key" 1)" "$(med "$key" 2)" "$p99" "$r × floor (≥ 0.90), p99 $p99r× (≤ 1.5)" \
        "$(both "$(verdict "$r" ">=" 0.9)" "$(verdict "$p99r" "<=" 1.5)")" "$mine" ;;
  esac
done
echo
echo "fixed rate, latency-corrected (oha -c$READ_CONNECTIONS -q RATE --latency-correction): p50 / p99 / p99.9 ms, the floor at the same rate"
echo "(RATE: 50 % and 80 % of the endpoint's saturated rate or of $RATE_CAP/s, what oha paces on one core, whichever is lower)"
printf '%-34s %5s %7s  %-24s %-24s %s\n' measurement share "req/s" "endpoint" "floor" "p99 ≤ 1.5× floor"
for entry in "${reads[@]:1}"; do
  key=$(field "$entry" 1) name=$(field "$entry" 2)
  for share in 50 80; do
    [ -s "$work/r/${key}_q$share" ] || continue
    read -r rate p50 p99 p999 bad <"$work/r/${key}_q$share"
    read -r _ f50 f99 f999 fbad <"$work/r/${key}_q${share}_floor"
    note=$(verdict "$(ratio "$p99" "$f99")" "<=" 1.5)
    [ "$bad" = 0 ] && [ "$fbad" = 0 ] || note="$note ($bad/$fbad non-2xx)"
    printf '%-34s %4s%% %7s  %-24s %-24s %s\n' "$name" "$share" "$rate" "$p50 / $p99 / $p999" "$f50 / $f99 / $f999" \
      "$(ratio "$p99" "$f99")× $note"
  done
done
fi
echo
if part writes; then
echo "writes beside a reference doing the same work with nothing else"
row "measurement" "req/s" "p50" "p99" "ratio (target)" "holds"
ref=$(med ref_create 1)
r=$(ratio "$(med create 1)" "$ref")
row "POST /api/donations, c$WRITE_CONNECTIONS" "$(med create 1)" "$(med create 2)" "$(med create 3)" \
  "$r × reference (≥ 0.80)" "$(verdict "$r" ">=" 0.8)"
row "  reference: INSERT + RSA-2048, c$WRITE_CONNECTIONS" "$ref" "" "$(med ref_create 3)" "mean $(med ref_create 2) ms" ""
row "  pgbench the INSERT alone (mean)" "$(med pg_insert 1)" "$(med pg_insert 2)" "" "" ""
row "  RSA-2048 signatures alone, one core" "$(med rsa 1)" "" "" "" ""
for key in mall_order backing; do
  [ -s "$work/r/$key" ] || continue
  name=$([ "$key" = mall_order ] && echo "POST /api/mall/orders" || echo "POST /api/projects/{id}/back")
  r=$(ratio "$(med "$key" 1)" "$(med "pg_$key" 1)")
  row "$name, c$WRITE_CONNECTIONS" "$(med "$key" 1)" "$(med "$key" 2)" "$(med "$key" 3)" \
    "$r × pgbench (≥ 0.80)" "$(verdict "$r" ">=" 0.8)"
  row "  pgbench its SQL, c$WRITE_CONNECTIONS (mean)" "$(med "pg_$key" 1)" "$(med "pg_$key" 2)" "" "" ""
done
r=$(ratio "$(med callbacks 1)" "$(med pg_callback 1)")
row "POST /notify/wechat, c$WRITE_CONNECTIONS" "$(med callbacks 1)" "$(med callbacks 2)" "$(med callbacks 3)" \
  "$r × pgbench (≥ 0.80)" "$(verdict "$r" ">=" 0.8)"
row "  pgbench the same transaction (mean)" "$(med pg_callback 1)" "$(med pg_callback 2)" "" "" ""
fi
echo
if part park; then
echo "parked long-polls: RSS growth per poll, $PARK_N parked, each row a fresh process (KB = 1024 B)"
printf '%-22s %9s %9s  %s\n' measurement "KB/poll" "× hyper" "holds (≤ 1.05× hyper)"
awk '{ printf "%-22s %9s %9s  %s\n", $1, $4, $5, ($1 ~ /^zhifu/ ? ($5 <= 1.05 ? "ok" : "MISS") : "") }' "$work/r/park"
echo "$pollers pollers on 1 instance, $POLL_ORDERS payments in a burst: callbacks ${burst_ms} ms; all woken (paid: $all_paid) ${wake_ms} ms; ≤ ${lag_ms} ms after each ack"
echo "RSS before the pollers $((rss_before / 1024)) MB, parked $((rss_parked / 1024)) MB"
fi
echo
echo "idle RSS (PostgreSQL not counted): $idle_mb MB · at the end: $final_mb MB · ready with an existing cluster: $(med ready 1) ms"
[ ! -s "$work/r/warnings" ] || { echo "warnings:"; cat "$work/r/warnings"; }
if [ -n "${KEEP_RESULTS:-}" ]; then cp -r "$work/r" "$KEEP_RESULTS" && cp "$work"/*.log "$KEEP_RESULTS/"; fi
