#!/usr/bin/env bash
# The two purchase writes beside PostgreSQL doing the same SQL alone (issue 16, item 5):
# POST /api/mall/orders (checkout) and POST /api/projects/{id}/backings, each measured with
# wrk, and each beside pgbench running that request's SQL with literal values
# (scripts/bench/pg-mall-order.sql, scripts/bench/pg-backing.sql) with as many clients, on
# the same core. Every round runs pgbench, then wrk, for the mall order, then the backing.
#
#   scripts/bench/writes.sh SERVER_URL PG_SOCKET_DIR OUT_DIR
#
# SERVER_URL: a running server (scripts/bench.sh's: real mode against the fake provider, rate
# limits off with ZHIFU__LIMITS__CREATE_PER_MINUTE=0 — checkouts and backings spend the
# per-IP create limit, 20 a minute in config.yaml) on the database whose socket directory is
# PG_SOCKET_DIR (user postgres, database zhifu). Env: DURATION (s, 5), WRITE_CONNECTIONS
# (32), LOAD_CPU (1: wrk, pgbench and psql are pinned to it), ROUNDS (1), WRITE_USERS (64
# buyers), WRITE_SKUS (100 products of one SKU).
#
# Appends one line per round to OUT_DIR/mall_order and OUT_DIR/backing ("req/s p50_ms
# p99_ms", wrk's percentiles, no coordinated-omission correction) and to
# OUT_DIR/pg_mall_order and OUT_DIR/pg_backing ("tps latency_avg_ms"); anything that was not
# a success (a non-2xx answer, a socket error, an aborted pgbench client, fewer rows than
# answers) goes to stderr and OUT_DIR/warnings as a "  ! …" line.
#
# Seeds its own buyers, products and project (scripts/bench/writes-seed.sql) under a random
# tag, so it can run more than once on one database. Limits met, and how they are kept out
# of the measurement: the per-IP create rate limit (off in the server's env, see above); no
# per-user limit on unpaid orders or backings exists, but the requests still go round-robin
# over WRITE_USERS buyers (sessions are cached per token, each read once) and WRITE_SKUS SKUs
# (one SKU's row lock would serialize every checkout); the one project's reward row is
# shared by every backing, as on a real launch day. A purchase holds one pooled connection
# while its transaction runs and none during the provider call: with more connections than
# database.pool_size the others wait for the pool, which the measurement includes.
#
# PERF_DIR=dir (and SERVER_CPU, 0) profiles the server core during every run with `perf
# record -a`: dir/KEY.txt says which process and library spent it (the server, PostgreSQL,
# the kernel), for the wrk runs and their pgbench references alike.
set -euo pipefail

if [ $# -ne 3 ]; then
  echo "usage: $0 SERVER_URL PG_SOCKET_DIR OUT_DIR" >&2
  exit 2
fi
server=${1%/} pg_dir=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)
DURATION=${DURATION:-5}
WRITE_CONNECTIONS=${WRITE_CONNECTIONS:-32}
LOAD_CPU=${LOAD_CPU:-1}
ROUNDS=${ROUNDS:-1}
WRITE_USERS=${WRITE_USERS:-64}
WRITE_SKUS=${WRITE_SKUS:-100}

for tool in wrk pgbench psql curl taskset; do
  command -v "$tool" >/dev/null || { echo "$tool is missing" >&2; exit 1; }
done
mkdir -p "$out"
tmp=$(mktemp -d /tmp/zhifu-writes.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

on_load() { taskset -c "$LOAD_CPU" "$@"; }
sql() { on_load psql -h "$pg_dir" -U postgres -d zhifu -X -q -t -A -v ON_ERROR_STOP=1 "$@"; }
warn() { echo "  ! $*" | tee -a "$out/warnings" >&2; }

# --- seed ------------------------------------------------------------------------------------
tag=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
sql -F ' ' -v tag="$tag" -v users="$WRITE_USERS" -v products="$WRITE_SKUS" \
  -f "$here/writes-seed.sql" >"$tmp/seed"
awk '$1 == "buyer" {print $3, $4}' "$tmp/seed" >"$tmp/buyers"
awk '$1 == "sku" {print $2}' "$tmp/seed" >"$tmp/skus"
read -r ubase abase < <(awk '$1 == "buyer" {print $2, $4; exit}' "$tmp/seed")
read -r sku_lo prod_lo < <(awk '$1 == "sku" {print $2, $3; exit}' "$tmp/seed")
read -r project reward merchant < <(awk '$1 == "project" {print $2, $3, $4}' "$tmp/seed")
# pgbench names buyer k as (ubase + k, abase + k) and SKU k as (sku_lo + k, prod_lo + k).
awk -v u="$ubase" -v a="$abase" -v s="$sku_lo" -v p="$prod_lo" '
  $1 == "buyer" { if ($2 != u + nb || $4 != a + nb) bad = 1; nb++ }
  $1 == "sku" { if ($2 != s + ns || $3 != p + ns) bad = 1; ns++ }
  END { exit bad }' "$tmp/seed" || {
  echo "the seeded ids are not contiguous (was something else inserting?)" >&2
  exit 1
}
sku_hi=$((sku_lo + WRITE_SKUS - 1))
pg_vars=(-D users="$WRITE_USERS" -D ubase="$ubase" -D abase="$abase")

# One request of each first: a refusal here says why better than a count of non-2xx.
read -r token address <"$tmp/buyers"
probe() {
  local path=$1 body=$2 status
  status=$(curl -sS -o "$tmp/probe" -w '%{http_code}' -H 'content-type: application/json' \
    -H "authorization: Bearer $token" -d "$body" "$server$path")
  if [ "$status" != 201 ]; then
    echo "POST $path answered $status: $(head -c 400 "$tmp/probe")" >&2
    exit 1
  fi
}
probe /api/mall/orders "{\"items\":[{\"sku_id\":$sku_lo,\"quantity\":1}],\"address_id\":$address,\"channel\":\"wechat\"}"
probe "/api/projects/$project/backings" "{\"amount\":\"20.00\",\"channel\":\"wechat\",\"reward_id\":$reward,\"address_id\":$address}"

# --- measurements ----------------------------------------------------------------------------
# to_ms VALUE: wrk's 123.45us / 1.23ms / 1.02s → milliseconds.
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
    printf "%.3f", n }'
}
# rows KEY: the rows this run's orders (mall) or backings (project) hold so far.
rows() {
  case $1 in
    *mall_order) sql -c "SELECT count(*) FROM mall_orders WHERE merchant_id = $merchant" ;;
    *backing) sql -c "SELECT count(*) FROM backings WHERE project_id = $project" ;;
  esac
}
# profiled KEY: with PERF_DIR set, samples every process on the server core (the server and
# its PostgreSQL) for DURATION into PERF_DIR/KEY.perf, in the background, and prints who
# spent the core (`perf report --sort comm,dso`) into PERF_DIR/KEY.txt once it is done.
profiled() {
  [ -n "${PERF_DIR:-}" ] || return 0
  mkdir -p "$PERF_DIR"
  (perf record -q -a -C "${SERVER_CPU:-0}" -o "$PERF_DIR/$1.perf" -- sleep "$DURATION" 2>/dev/null &&
    perf report -q -i "$PERF_DIR/$1.perf" --sort comm,dso --stdio 2>/dev/null | head -25 >"$PERF_DIR/$1.txt") &
}
# wrk_run KEY LUA [lua args…]: appends "req/s p50_ms p99_ms" to OUT_DIR/KEY.
wrk_run() {
  local key=$1 script=$2
  shift 2
  local before after wrk_out
  before=$(rows "$key")
  profiled "$key"
  wrk_out=$(on_load wrk -t1 -c"$WRITE_CONNECTIONS" -d"${DURATION}s" --latency -s "$script" "$server" -- "$@")
  after=$(rows "$key")
  local rps p50 p99 answers errors
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$wrk_out")
  p50=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$wrk_out")")
  p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$wrk_out")")
  echo "$rps $p50 $p99" >>"$out/$key"
  errors=$(awk '/Non-2xx|Socket errors/' <<<"$wrk_out")
  [ -z "$errors" ] || warn "$key: $errors"
  # Every answer counted was a 201 with its row; requests cut off at the end may add more.
  answers=$(awk '/requests in/ {print $1}' <<<"$wrk_out")
  [ $((after - before)) -ge "${answers:-0}" ] || warn "$key: $answers answers but $((after - before)) new rows"
}
# pgbench_run KEY SCRIPT [-D …]: appends "tps latency_avg_ms" to OUT_DIR/KEY.
pgbench_run() {
  local key=$1 script=$2
  shift 2
  local pg_out status=0
  profiled "$key"
  pg_out=$(on_load pgbench -h "$pg_dir" -U postgres -n -M prepared -c "$WRITE_CONNECTIONS" -j 1 \
    -T "$DURATION" -f "$script" "$@" zhifu 2>&1) || status=$?
  awk '/^tps = / {tps = $3} /^latency average/ {lat = $4} END {print tps, lat}' <<<"$pg_out" >>"$out/$key"
  local failed
  failed=$(awk '/^number of failed transactions/ && $5 != 0' <<<"$pg_out")
  if [ "$status" != 0 ] || [ -n "$failed" ]; then
    warn "$key: pgbench exit $status; $(grep -m3 -E 'aborted|failed|ERROR' <<<"$pg_out" | tr '\n' ' ')"
  fi
}

for round in $(seq 1 "$ROUNDS"); do
  echo "mall order vs pgbench of the same SQL, round $round/$ROUNDS…"
  pgbench_run pg_mall_order "$here/pg-mall-order.sql" "${pg_vars[@]}" \
    -D sku_lo="$sku_lo" -D sku_hi="$sku_hi" -D prod_lo="$prod_lo" -D merchant="$merchant"
  wrk_run mall_order "$here/mall-order.lua" "$tmp/buyers" "$tmp/skus"
  echo "backing vs pgbench of the same SQL, round $round/$ROUNDS…"
  pgbench_run pg_backing "$here/pg-backing.sql" "${pg_vars[@]}" -D project="$project" -D reward="$reward"
  wrk_run backing "$here/backing.lua" "$tmp/buyers" "$project" "$reward"
done
wait # the profiles
