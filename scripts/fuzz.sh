#!/usr/bin/env bash
# Runs every libFuzzer target of tests/fuzz for a while and prints, per target, the seconds it
# ran, its executions and whether it crashed.
#
#   scripts/fuzz.sh            # 60 s per target
#   scripts/fuzz.sh 300        # 5 minutes per target
#   TARGETS="amount route" scripts/fuzz.sh 30
#
# Needs nightly Rust (`rustup toolchain install nightly`) and cargo-fuzz
# (`cargo install cargo-fuzz`). New inputs found go to target/fuzz-corpus/<target>, seeded
# from the checked-in tests/fuzz/corpus/<target>; a crash leaves its input in
# tests/fuzz/artifacts/<target>/ — fix it, then copy the input into the checked-in corpus as a
# regression seed (the stable smoke test in `cargo test` replays it).
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET=${1:-60}
TARGETS=${TARGETS:-"route query_form amount wechat_notify alipay_notify config"}
TOOLCHAIN=${TOOLCHAIN:-+nightly}

if ! cargo "$TOOLCHAIN" fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz is missing: cargo install cargo-fuzz (and rustup toolchain install nightly)" >&2
  exit 2
fi

cargo "$TOOLCHAIN" fuzz build --fuzz-dir tests/fuzz

summary=()
failed=0
for target in $TARGETS; do
  work="target/fuzz-corpus/$target"
  mkdir -p "$work"
  log="target/fuzz-corpus/$target.log"
  echo "== $target: ${SECONDS_PER_TARGET} s"
  status=0
  cargo "$TOOLCHAIN" fuzz run --fuzz-dir tests/fuzz "$target" "$work" "tests/fuzz/corpus/$target" -- \
    -max_total_time="$SECONDS_PER_TARGET" -max_len=4096 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"$log" 2>&1 || status=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  secs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | grep -o 'in [0-9]*' | grep -o '[0-9]*' || echo "?")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo "?")
  if [ "$status" = 0 ]; then
    result="ok"
  else
    result="CRASH (exit $status; see $log and tests/fuzz/artifacts/$target/)"
    failed=1
  fi
  summary+=("$(printf '%-14s %6s s %12s runs  cov %6s  %s' "$target" "$secs" "$runs" "$cov" "$result")")
done

echo
echo "target         seconds     executions  coverage  result"
printf '%s\n' "${summary[@]}"
exit "$failed"
