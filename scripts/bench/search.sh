#!/usr/bin/env bash
# Search latency on 100 000 generated Chinese posts (benches/search.rs): builds the bench in
# release, seeds a private embedded PostgreSQL, times the server's own search query for kinds
# of query and prints p50 / p90 / p99 / max. POSTS=… and QUERIES=… (per kind) change the sizes.
#
#   scripts/bench/search.sh
#   POSTS=20000 QUERIES=100 scripts/bench/search.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo bench --bench search
