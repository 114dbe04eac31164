#!/usr/bin/env bash
# Fuzzes the real binary with schemathesis from its own OpenAPI document (/api/openapi.json):
# the sandbox server on a fresh embedded cluster, a seeded user, merchant and admin, and runs
#
#   1. negative data as the admin (bad bodies, parameters, headers): every table's row count
#      must be the same after as before;
#   2. positive data and the stateful phase (the document's links) as the admin;
#   3. everything as the user, then as the merchant (403s where the role is wrong);
#   4. everything without a session (401s), sign-out included.
#
# Checks: no 5xx, answers conform to their schemas and content types, every status is
# documented, unknown methods are 405, bad data is refused. Prints the operations covered and
# the test cases run. A few minutes on 2 cores; EXAMPLES=N (default 8) bounds the cases per
# operation and phase.
#
#   scripts/schemathesis.sh
#
# The virtual environment is cached in target/schemathesis/venv.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
EXAMPLES=${EXAMPLES:-8}
VENV=target/schemathesis/venv
OUT=target/schemathesis

mkdir -p "$OUT"
rm -f "$OUT"/*.xml "$OUT"/*.log "$OUT"/*.har "$OUT"/rows-*.txt
if ! "$VENV/bin/st" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  echo "== installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

echo "== building zhifu"
cargo build -q --bin zhifu
BIN=target/debug/zhifu

# A scratch folder the cluster's `postgres` user can reach when this runs as root.
WORK=$(mktemp -d /tmp/zhifu-schemathesis.XXXXXX)
chmod 755 "$WORK"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
export ZHIFU__SERVER__LISTEN="127.0.0.1:$PORT"
export ZHIFU__SERVER__PUBLIC_URL="$BASE"
export ZHIFU__DATABASE__EMBEDDED__DATA_DIR="$WORK/pg"
export ZHIFU__LOG__ACCESS=false
# The fuzzer is one client sending hundreds of requests a minute: no per-client limits, so
# the handlers behind them are what is tested (the limits have their own tests).
export ZHIFU__LIMITS__CREATE_PER_MINUTE=0 ZHIFU__LIMITS__STATUS_PER_MINUTE=0 ZHIFU__LIMITS__LOGIN_PER_MINUTE=0
export ZHIFU__MEDIA__UPLOADS_PER_MINUTE=0
export ZHIFU__COMMUNITY__POSTS_PER_HOUR=0 ZHIFU__COMMUNITY__COMMENTS_PER_HOUR=0

SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "== starting the sandbox server on $BASE"
"$BIN" --config config.yaml serve >"$OUT/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 300); do
  curl -fs "$BASE/readyz" >/dev/null 2>&1 && break
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    cat "$OUT/server.log" >&2
    exit 1
  fi
  sleep 0.2
done
curl -fs "$BASE/readyz" >/dev/null

# The seeded accounts, made the way an operator makes them, and their sessions.
token_of() { # name role
  local password="fuzz-$1-password-0"
  printf '%s\n' "$password" | "$BIN" --config config.yaml admin create --username "$1" --role "$2" --password-stdin >/dev/null
  curl -fs -X POST "$BASE/api/auth/login" -H 'content-type: application/json' \
    -d "{\"username\":\"$1\",\"password\":\"$password\"}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'
}
ADMIN_TOKEN=$(token_of fuzzadmin admin)
USER_TOKEN=$(token_of fuzzuser user)
MERCHANT_TOKEN=$(token_of fuzzmerchant merchant)

# psql on the embedded cluster: its socket folder is the fifth line of postmaster.pid.
SOCKET_DIR=$(sed -n 5p "$WORK/pg/postmaster.pid")
# Records for the modules' operations to reach past a 404: a live project of the user with a
# goal and a reward, and a listed product of the merchant with two SKUs (ids 1 on a fresh
# cluster), written as the modules' own writes store them.
psql -h "$SOCKET_DIR" -p 5432 -U postgres -d zhifu -XAtq -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
WITH p AS (INSERT INTO projects (owner_id, title, summary, story, deadline, status, published_at)
           SELECT id, '图书角', '给学校建一个图书角', '项目故事', now() + interval '30 days', 'live', now()
             FROM users WHERE username = 'fuzzuser' RETURNING id),
     g AS (INSERT INTO project_goals (project_id, position, amount_fen, title, description)
           SELECT id, 0, 100000, '目标', '说明' FROM p)
INSERT INTO project_rewards (project_id, position, title, min_amount_fen, quantity) SELECT id, 0, '明信片', 2000, 100 FROM p;
INSERT INTO mall_categories (name) VALUES ('数码');
INSERT INTO mall_products (merchant_id, category_id, name, description, min_price_fen, search_text)
SELECT u.id, c.id, '耳机', '降噪', 1990, E'耳机\n降噪' FROM users u, mall_categories c WHERE u.username = 'fuzzmerchant';
INSERT INTO mall_skus (product_id, specs, price_fen, stock, position)
SELECT p.id, jsonb_build_object('颜色', v.color), 1990 + v.i * 100, 1000, v.i
  FROM mall_products p, (VALUES (0, '红'), (1, '蓝')) AS v(i, color);
SQL
row_counts() {
  psql -h "$SOCKET_DIR" -p 5432 -U postgres -d zhifu -XAtq -F ' ' <<'SQL'
SELECT format('SELECT %L, count(*) FROM %I.%I', schemaname || '.' || tablename, schemaname, tablename)
  FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1
\gexec
SQL
}

st_run() { # label, then schemathesis options
  local label=$1
  shift
  echo "== schemathesis: $label"
  "$VENV/bin/st" --config-file "${CONFIG:-scripts/schemathesis.toml}" run "${DOCUMENT:-$BASE/api/openapi.json}" \
    --url "$BASE" --seed "${SEED:-17}" --no-shrink --workers 1 \
    --report junit,har --report-junit-path "$OUT/$label.xml" --report-har-path "$OUT/$label.har" "$@" |
    tee "$OUT/$label.log" || failed+=("$label")
}
failed=()

# The session an operation would end is kept out of the signed-in runs.
KEEP_SESSION=(--exclude-operation-id post_api_auth_logout)

# The negative run sends only bad data: no examples phase (the document's examples are good
# data), and no variations of the session cookie (with a bearer token the cookie is never
# read, so a "bad cookie" request is a good one).
curl -fs "$BASE/api/openapi.json" | python3 -c '
import json, sys
doc = json.load(sys.stdin)
del doc["components"]["securitySchemes"]["session_cookie"]
for item in doc["paths"].values():
    for op in item.values():
        op["security"] = [s for s in op["security"] if "session_cookie" not in s]
json.dump(doc, sys.stdout)' >"$OUT/openapi-bearer.json"
row_counts >"$OUT/rows-before.txt"
DOCUMENT="$OUT/openapi-bearer.json" st_run negative --mode negative --phases coverage,fuzzing -n "$EXAMPLES" \
  -H "Authorization: Bearer $ADMIN_TOKEN" "${KEEP_SESSION[@]}"
row_counts >"$OUT/rows-after.txt"
if diff -u "$OUT/rows-before.txt" "$OUT/rows-after.txt"; then
  echo "== row counts of $(wc -l <"$OUT/rows-before.txt") tables unchanged by the negative-data run"
else
  echo "FAIL: the negative-data run wrote rows (above: table and count, before and after)" >&2
  failed+=("rows")
fi

st_run positive --mode positive --phases examples,coverage,fuzzing -n "$EXAMPLES" \
  -H "Authorization: Bearer $ADMIN_TOKEN" "${KEEP_SESSION[@]}"
# Sequences through the document's links: create, then read, change, like, delete what was
# made. Creates mostly name the seeded category and board and a payable amount, so that
# there is something to follow.
cat scripts/schemathesis.toml - >"$OUT/stateful.toml" <<'TOML'

[dictionaries]
seeded-ids = { values = [1] }
amounts = { values = ["0.01", "1.00", "12.34", "99.99"] }

[parameters]
"body.category_id" = { dictionary = "seeded-ids", probability = 0.8 }
"body.board_id" = { dictionary = "seeded-ids", probability = 0.8 }
"body.amount" = { dictionary = "amounts", probability = 0.8 }
TOML
CONFIG="$OUT/stateful.toml" st_run stateful --mode positive --phases stateful -n $((EXAMPLES * 8)) \
  -H "Authorization: Bearer $ADMIN_TOKEN" "${KEEP_SESSION[@]}"
st_run user --mode all --phases coverage,fuzzing -n 3 -H "Authorization: Bearer $USER_TOKEN" "${KEEP_SESSION[@]}"
st_run merchant --mode all --phases coverage,fuzzing -n 2 -H "Authorization: Bearer $MERCHANT_TOKEN" "${KEEP_SESSION[@]}"
st_run anonymous --mode all --phases coverage,fuzzing -n 3

# The summary: operations covered and test cases run, from the JUnit reports.
python3 - "$OUT" <<'PY'
import sys, glob, xml.etree.ElementTree as ET
operations, cases, failures = set(), 0, 0
for path in sorted(glob.glob(sys.argv[1] + "/*.xml")):
    root = ET.parse(path).getroot()
    for case in root.iter("testcase"):
        if case.get("name") != "Stateful tests":
            operations.add(case.get("name"))
        failures += len(case.findall("failure")) + len(case.findall("error"))
for path in sorted(glob.glob(sys.argv[1] + "/*.log")):
    for line in open(path):
        words = line.replace(",", " ").split()
        if len(words) > 1 and words[0].isdigit() and words[1] == "generated":
            cases += int(words[0])
print(f"schemathesis: {len(operations)} operations covered, {cases} test cases run")
print(f"schemathesis: {cases - failures} passed, {failures} failed")
PY
if [ ${#failed[@]} -gt 0 ]; then
  echo "schemathesis: FAILED: ${failed[*]} (reports in $OUT)" >&2
  exit 1
fi
