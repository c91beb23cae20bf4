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
# Predictive allocation (issue 11): learned vs declared sizes over repeated runs, virtual time.
traces=${AUGUR_TRACES:-$(dirname "$0")/../../shared/traces}
if [[ -x "$build/bench/workflow-predictive" && -d "$traces" ]]; then
  echo "== workflow-predictive"
  "$build/bench/workflow-predictive" --ablate --cores 4,8,16 --seeds 5 --runs 8 --from 4 --jobs 50 \
    --alibaba "$traces/alibaba2017_batch_task_subset.csv" "$traces"/wfcommons-*.json
fi
# The same decisions on this host through augurd, each on and off (root: cgroups).
if [[ $(id -u) == 0 ]]; then
  echo "== bench/predictive_onhost.sh"
  bash "$(dirname "$0")/predictive_onhost.sh" "$build" 3
fi
