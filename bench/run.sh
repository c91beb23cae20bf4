#!/usr/bin/env bash
# `make bench`: every benchmark, medians over repetitions. Numbers go to bench/RESULTS.md by
# hand, with this command; none of them gates a test.
set -euo pipefail
build=${1:-build}
for b in "$build"/bench/*_bench; do
  echo "== $b"
  "$b" --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
done
echo "== bench/agent_cost.sh"
bash "$(dirname "$0")/agent_cost.sh" "$build" "${AUGUR_BENCH_SECONDS:-60}"
