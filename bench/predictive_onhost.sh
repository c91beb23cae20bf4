#!/usr/bin/env bash
# Predictive decisions on this host, each on and off side by side, through a real augurd and
# the process backend (root: cgroups). Prints the median wall time of R runs of each:
#   right-sizing  a stage of 8 one-second shards declared at 2 cores each (they use almost
#                 none); history from 3 earlier runs sizes them down, so more run at once.
#                 Off: `right_size: false` in the same file.
#   stragglers    4 shards of a range, one of which hangs for 20 s unless cut smaller.
#                 Off: `speculate: false`.
#   bash bench/predictive_onhost.sh build [R]
set -eu
build=${1:-build}
runs=${2:-3}
. "$(dirname "$0")/augurd_env.sh"
start_augurd "$build" augur-predbench
sized() {  # $1: workflow name, $2: extra stage key
  cat <<YAML
workflow: $1
stages:
  - name: idle
    resources: {cpu: 2, memory: 256Mi, min_cpu: 0.2, min_memory: 16Mi}
    shards: {range: [0, 8], count: 8}
    canary: false
    $2
    run: [sleep, "1"]
YAML
}
skew() {
  cat <<YAML
workflow: $1
stages:
  - name: sum
    resources: {cpu: 0.25, memory: 32Mi}
    shards: {range: [0, 400], count: 4}
    canary: false
    $2
    run: [sh, -c, "if [ \$(({shard.end} - {shard.begin})) -gt 50 ] && [ {shard.begin} -ge 300 ]; then sleep 20; fi; seq {shard.begin} \$(({shard.end} - 1)) | awk '{s+=\$1} END {print s}'"]
YAML
}
sized sized "right_size: true" >"$work/sized-on.yaml"
sized sized "right_size: false" >"$work/sized-off.yaml"
skew skew "speculate: true" >"$work/skew-on.yaml"
skew skew "speculate: false" >"$work/skew-off.yaml"
ctl() { "$build/agent/augurctl" --socket "$work/augur.sock" "$@"; }
timed() {
  local t0 t1
  t0=$(date +%s.%N)
  ctl submit --wait "$1" >/dev/null 2>&1
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}
for _ in 1 2 3; do ctl submit --wait "$work/sized-off.yaml" >/dev/null 2>&1; done  # history
for what in sized skew; do
  on=() off=()
  for _ in $(seq 1 "$runs"); do
    on+=("$(timed "$work/$what-on.yaml")")
    off+=("$(timed "$work/$what-off.yaml")")
  done
  m_on=$(printf '%s\n' "${on[@]}" | median)
  m_off=$(printf '%s\n' "${off[@]}" | median)
  echo "$what: on ${m_on}s, off ${m_off}s, on/off $(echo "$m_on / $m_off" | bc -l | cut -c1-5) (median of $runs)"
done
