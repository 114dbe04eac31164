#!/usr/bin/env bash
# Instructions per request, counted by valgrind's callgrind: deterministic, so the ratios hold
# on a busy machine where req/s do not. Runs the release server (sandbox mode, throw-away
# embedded database) and the hello-world floor under callgrind, sends keep-alive requests to
# each endpoint with wrk (one connection) for SECONDS_PER_ENDPOINT, and prints instructions
# per request (counted instructions / completed requests) and the ratio to the floor; the
# annotated profiles stay in OUT (default a fresh folder under /tmp).
#
# ACCESS_LOG=true profiles the shipped configuration (config.yaml turns the access log on; its
# lines go to a file here); the default, false, is the configuration of the earlier figures.
# The community's hot list and a post's detail are profiled too (a user, a post and a like
# are made first).
#
#   scripts/bench/profile.sh                       # after scripts/bench.sh built the binaries
#   ACCESS_LOG=true scripts/bench/profile.sh       # the shipped configuration
#   ZHIFU=/path/zhifu LOAD=/path/load OUT=dir ONLY="healthz rankings" scripts/bench/profile.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

SECONDS_PER_ENDPOINT=${SECONDS_PER_ENDPOINT:-8}
PORT=${PORT:-18090}
# One core, as in scripts/bench.sh: one worker thread whichever the runtime shape.
CPU=${CPU:-0}
# Empty RUNTIME: leave server.runtime to config.yaml (also for builds that predate the key).
RUNTIME=${RUNTIME-per_core}
ACCESS_LOG=${ACCESS_LOG:-false}
# Which endpoints (all by default): hello healthz rankings recent stats payment static projects
# products hot post.
ONLY=${ONLY:-hello healthz rankings recent stats payment static projects products hot post}
ZHIFU=${ZHIFU:-target/release/zhifu}
LOAD=${LOAD:-$(ls -t target/release/deps/load-* 2>/dev/null | grep -v '\.d$' | head -1)}
OUT=${OUT:-$(mktemp -d /tmp/zhifu-profile.XXXXXX)}
mkdir -p "$OUT"
command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install valgrind" >&2; exit 1; }
[ -x "$ZHIFU" ] && [ -x "$LOAD" ] || { echo "build first: scripts/bench.sh (or cargo build --release --bench load)" >&2; exit 1; }

work=$(mktemp -d /tmp/zhifu-profile-run.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# grind NAME PID URL: instructions per request of URL, from a zeroed counter to a dump,
# divided by the requests wrk completed in between.
grind() {
  local name=$1 pid=$2 url=$3
  case " $ONLY " in *" $name "*) ;; *) return 0 ;; esac
  wrk -t1 -c1 -d2s "$url" >/dev/null # warm up: caches, buffers
  callgrind_control -z "$pid" >/dev/null 2>&1
  local out
  out=$(wrk -t1 -c1 -d"${SECONDS_PER_ENDPOINT}s" "$url")
  callgrind_control -d "$name" "$pid" >/dev/null 2>&1
  sleep 0.5
  local requests dump total
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  dump=$(ls -t "$work"/cg.out.* | head -1)
  cp "$dump" "$OUT/$name.callgrind"
  total=$(awk '/^(summary|totals):/ {print $2; exit}' "$dump")
  echo "$name $((total / requests)) $requests" >>"$work/results"
  callgrind_annotate --inclusive=no "$dump" 2>/dev/null | head -60 >"$OUT/$name.self.txt" || true
  callgrind_annotate --inclusive=yes "$dump" 2>/dev/null | head -80 >"$OUT/$name.inclusive.txt" || true
}

taskset -c "$CPU" valgrind --tool=callgrind --callgrind-out-file="$work/cg.out.%p" \
  "$LOAD" hello "127.0.0.1:$((PORT + 1))" "${RUNTIME:-multi_thread}" 2>"$work/hello.vg" &
hello_pid=$!
pids+=("$hello_pid")

ZHIFU__DATABASE__EMBEDDED__DATA_DIR="$work/pg" ZHIFU__SERVER__LISTEN="127.0.0.1:$PORT" \
  ZHIFU__SERVER__PUBLIC_URL="http://127.0.0.1:$PORT" env ${RUNTIME:+ZHIFU__SERVER__RUNTIME=$RUNTIME} \
  ZHIFU__LOG__ACCESS=$ACCESS_LOG ZHIFU__LOG__LEVEL=warn ZHIFU__BACKUP__EVERY_HOURS=0 \
  ZHIFU__LIMITS__CREATE_PER_MINUTE=0 ZHIFU__LIMITS__STATUS_PER_MINUTE=0 \
  taskset -c "$CPU" valgrind --tool=callgrind --callgrind-out-file="$work/cg.out.%p" \
  "$ZHIFU" --config "${CONFIG:-config.yaml}" >"$work/server.log" 2>&1 &
server_pid=$!
pids+=("$server_pid")
for _ in $(seq 1 600); do
  curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log"; exit 1; }
  sleep 0.2
done
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$((PORT + 1))/" >/dev/null 2>&1 && break; sleep 0.2; done

order_no=$(curl -fsS -H 'content-type: application/json' \
  -d '{"amount":"8.00","channel":"wechat","category_id":1,"donor_name":"reader"}' \
  "http://127.0.0.1:$PORT/api/donations" | sed 's/.*"order_no":"\([^"]*\)".*/\1/')
curl -fsS -o /dev/null -X POST "http://127.0.0.1:$PORT/sandbox/pay/$order_no"

# The community: a user, a post with a like (so that the hot list has something to rank).
base="http://127.0.0.1:$PORT"
post_id=0
case " $ONLY " in *" hot "* | *" post "*)
  curl -fsS -o /dev/null -H 'content-type: application/json' \
    -d '{"username":"profiler","password":"a long profile password 1","email":"profiler@example.com","display_name":"Profiler"}' \
    "$base/api/auth/register"
  token=$(curl -fsS -H 'content-type: application/json' -d '{"username":"profiler","password":"a long profile password 1"}' \
    "$base/api/auth/login" | sed 's/.*"token":"\([^"]*\)".*/\1/')
  post_id=$(curl -fsS -H 'content-type: application/json' -H "authorization: Bearer $token" \
    -d '{"board_id":1,"title":"性能剖析","content":"每个请求的指令数。"}' \
    "$base/api/community/posts" | grep -o '"id":[0-9]*' | head -1 | cut -d: -f2)
  curl -fsS -o /dev/null -X PUT -H "authorization: Bearer $token" "$base/api/community/posts/$post_id/like"
  ;;
esac

grind hello "$hello_pid" "http://127.0.0.1:$((PORT + 1))/healthz"
grind healthz "$server_pid" "http://127.0.0.1:$PORT/healthz"
grind rankings "$server_pid" "http://127.0.0.1:$PORT/api/rankings"
grind recent "$server_pid" "http://127.0.0.1:$PORT/api/donations/recent"
grind stats "$server_pid" "http://127.0.0.1:$PORT/api/stats"
grind payment "$server_pid" "http://127.0.0.1:$PORT/api/payments/$order_no"
grind static "$server_pid" "http://127.0.0.1:$PORT/static/app.css"
grind projects "$server_pid" "$base/api/projects"
grind products "$server_pid" "$base/api/mall/products"
grind hot "$server_pid" "$base/api/community/posts?sort=hot"
grind post "$server_pid" "$base/api/community/posts/$post_id"

floor=$(awk '$1 == "hello" {print $2}' "$work/results")
echo "access log: $ACCESS_LOG · runtime: ${RUNTIME:-as in config.yaml}"
printf '%-12s %14s %10s %9s\n' endpoint "instr/request" "× hello" requests
awk -v f="$floor" '{ printf "%-12s %14d %10.2f %9d\n", $1, $2, $2 / f, $3 }' "$work/results" | tee "$OUT/summary.txt"
echo "profiles: $OUT"
