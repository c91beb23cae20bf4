#!/usr/bin/env bash
# The workflow engine's own cost, end to end through a real augurd and the process backend
# (root: cgroups): a workflow of N one-shard stages in a chain (each shard `true`) submitted
# with `augurctl submit --wait`, against running `true` N times directly; and augurd's CPU
# time and RSS while it runs them. Prints medians of R runs.
#   bash bench/workflow_overhead.sh build [N] [R]      (PREWARM=false: pre-warming off)
set -eu
build=${1:-build}
n=${2:-20}
runs=${3:-5}
. "$(dirname "$0")/augurd_env.sh"
start_augurd "$build" augur-wfbench "{state_dir: WORK/wf, prewarm: {enabled: ${PREWARM:-true}}}"
{
  echo "workflow: chain"
  echo "stages:"
  for i in $(seq 1 "$n"); do
    echo "  - name: s$i"
    [ "$i" -gt 1 ] && echo "    needs: [s$((i - 1))]"
    echo "    resources: {cpu: 0.5, memory: 32Mi}"
    echo "    run: [\"true\"]"
  done
} >"$work/chain.yaml"
cpu() { awk '{print ($14 + $15) / 100}' "/proc/$agent/stat"; }
rss() { awk '/VmRSS/ {print $2 / 1024}' "/proc/$agent/status"; }
engine=() direct=() cpus=()
for r in $(seq 1 "$runs"); do
  c0=$(cpu)
  t0=$(date +%s.%N)
  "$build/agent/augurctl" --socket "$work/augur.sock" submit --wait "$work/chain.yaml" >/dev/null 2>&1
  t1=$(date +%s.%N)
  c1=$(cpu)
  for i in $(seq 1 "$n"); do /bin/true; done
  t2=$(date +%s.%N)
  engine+=("$(echo "$t1 - $t0" | bc -l)")
  direct+=("$(echo "$t2 - $t1" | bc -l)")
  cpus+=("$(echo "$c1 - $c0" | bc -l)")
done
e=$(printf '%s\n' "${engine[@]}" | median)
d=$(printf '%s\n' "${direct[@]}" | median)
c=$(printf '%s\n' "${cpus[@]}" | median)
echo "chain of $n one-shard stages, median of $runs runs:"
echo "  through augurd: ${e}s  ($(echo "$e / $n * 1000" | bc -l | cut -c1-6) ms per stage: submit/plan, start, end, merge, next)"
echo "  directly:       ${d}s"
echo "  augurd CPU:     ${c}s per workflow ($(echo "$c / $n * 1000" | bc -l | cut -c1-6) ms per stage)"
echo "  augurd RSS:     $(rss) MiB after the runs"
