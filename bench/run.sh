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
# The peer mesh (issue 12). In virtual time: placement negotiation at N = 100 to 10,000 hosts,
# membership at 100 and 1,000 (bench/mesh/*_sim.cc). On the namespace bed (root): real augurd hosts placing
# each other's shards at N = 8, 16, 32 (bench/mesh/placement_bench.sh); the membership side by
# side with Serf is bench/mesh/membership_bench.sh (long: run it by hand).
if [[ -x "$build/bench/mesh-placement-sim" && -d "$traces" ]]; then
  echo "== mesh-placement-sim"
  # About 10 minutes of one core, most of it at 10,000 hosts (bench/RESULTS.md).
  "$build/bench/mesh-placement-sim" "$traces"/wfcommons-*.json --hosts 100 1000 10000 --seeds 1
fi
if [[ -x "$build/bench/mesh-membership-sim" ]]; then
  echo "== mesh-membership-sim"
  "$build/bench/mesh-membership-sim" --n 100 1000 --kills 100 20 --changes 100 50 \
    --fp-host-minutes 1000
fi
if [[ $(id -u) == 0 && -x "$build/agent/augurd" ]]; then
  echo "== bench/mesh/placement_bench.sh"
  AUGUR_BUILD="$build" bash "$(dirname "$0")/mesh/placement_bench.sh" --sizes "8 16 32"
fi
