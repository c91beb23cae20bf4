#!/usr/bin/env bash
# Shard output transfer throughput between two hosts (network namespaces on this machine):
# augurd on h1 owns workflows of one shard that cannot run there (h1's engine has 0.3 core,
# 0.25 of them held by a long-running local shard; the shard wants 0.25), so h2 runs it; the
# shard prints SIZE MiB, which comes back to h1 as a transfer (docs/MESH.md, "Moving shard data") over CurveZMQ, through both engines' threads.
#
# Time of one transfer: from h2's "mesh: leased task ... ended" line (the task's end; the
# transfer starts right after it) to h1's "mesh: ... ended remotely: succeeded" (the output
# received, its checksum checked and moved into place). Both agents log with millisecond
# stamps from the same clock. Prints each run and the median MiB/s.
#
# Usage (root): bench/mesh/transfer_bench.sh [RUNS] [SIZE_MIB]    (defaults 5 and 64)
# Build first: augurd, augurctl, augur_plugin_process (make build).
set -euo pipefail
RUNS=${1:-5}
SIZE_MIB=${2:-64}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD=${AUGUR_BUILD:-$HERE/../../build}
# shellcheck source=netns.sh
source "$HERE/netns.sh"
netns_check || exit 1
RUN_DIR=$(mktemp -d /tmp/augur-transfer-bench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  netns_down
  for k in 1 2; do rmdir /sys/fs/cgroup/augur-tb-$MESH_ID-h$k/* /sys/fs/cgroup/augur-tb-$MESH_ID-h$k 2>/dev/null || true; done
  rm -rf "$RUN_DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
netns_up 2

keys=$RUN_DIR/keys
for k in 1 2; do
  "$BUILD/agent/augurctl" keygen --out "$keys/h$k" --name "h$k" >/dev/null
  cat "$keys/h$k/host.pub" >>"$keys/authorized_keys"
done
start() {
  local k=$1 cpu=$2
  cat >"$RUN_DIR/h$k.yaml" <<YAML
telemetry: {interval: 10s, ebpf: "off", shm_name: augur-tb-$MESH_ID-h$k, capacity: 16, max_series: 64}
metrics: {enabled: false}
forecast: {enabled: false}
plugins: {dir: $BUILD/plugins, enabled: [process], state_dir: $RUN_DIR/h$k/plugins, config: {process: {cgroup_parent: augur-tb-$MESH_ID-h$k}}}
workflows: {state_dir: $RUN_DIR/h$k/wf, max_cpu: $cpu}
control: {socket: $RUN_DIR/h$k.sock}
mesh:
  enabled: true
  name: h$k
  listen: $(netns_addr "$k"):7946
  seeds: [h1@$(netns_addr 1):7946]
  key_file: $keys/h$k/host.key
  authorized_keys: $keys/authorized_keys
YAML
  # nsenter --net only: `ip netns exec` would remount /sys and hide the cgroups.
  nsenter --net="/run/netns/$(netns_name "$k")" -- "$BUILD/agent/augurd" \
    --config "$RUN_DIR/h$k.yaml" >"$RUN_DIR/h$k.log" 2>&1 &
  PIDS+=($!)
}
ctl() { "$BUILD/agent/augurctl" --socket "$RUN_DIR/h1.sock" "$@"; }
start 1 0.3
start 2 1.5
# Both see each other with h2's backend in its headroom.
for _ in $(seq 120); do
  n=$(ctl peers --json 2>/dev/null | grep -c '"name": "process"' || true)
  [[ $n -ge 2 ]] && break
  sleep 0.5
done
[[ ${n:-0} -ge 2 ]] || { echo "the hosts did not see each other's backends" >&2; cat "$RUN_DIR"/h*.log >&2; exit 1; }

# What keeps h1 full: one local shard for the whole run.
cat >"$RUN_DIR/block.yaml" <<YAML
workflow: block
stages:
  - name: hold
    resources: {cpu: 0.25, memory: 16Mi}
    run: [sleep, "3600"]
YAML
ctl submit "$RUN_DIR/block.yaml" >/dev/null
sleep 1
cat >"$RUN_DIR/wf.yaml" <<YAML
workflow: transfer
stages:
  - name: out
    resources: {cpu: 0.25, memory: 64Mi}
    expected: 1s
    run: [sh, -c, "head -c ${SIZE_MIB}M /dev/zero"]
YAML
for r in $(seq "$RUNS"); do
  id=$(ctl submit "$RUN_DIR/wf.yaml")
  for _ in $(seq 600); do
    state=$(ctl status "$id" --json | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["state"])')
    [[ $state != running ]] && break
    sleep 0.2
  done
  [[ $state == succeeded ]] || { echo "run $r: workflow $id $state" >&2; cat "$RUN_DIR"/h*.log >&2; exit 1; }
  size=$(stat -c %s "$RUN_DIR/h1/wf/work/$id/out.out")
  [[ $size -eq $((SIZE_MIB << 20)) ]] || { echo "run $r: output of $size bytes" >&2; exit 1; }
done

# augurd's "YYYY-MM-DD HH:MM:SS.mmm level ..." as ms since midnight.
stamps() { grep -- "$2" "$1" | sed -n 's/^[0-9-]* \([0-9]*\):\([0-9]*\):\([0-9.]*\) .*/\1 \2 \3/p' |
  awk '{ printf "%.0f\n", (($1 * 60 + $2) * 60 + $3) * 1000 }'; }
paste <(stamps "$RUN_DIR/h2.log" "mesh: leased task .* ended") \
      <(stamps "$RUN_DIR/h1.log" "ended remotely: succeeded") |
  awk -v mib="$SIZE_MIB" '{ ms = $2 - $1; if (ms < 1) ms = 1
    printf "run %d: %d MiB in %d ms, %.1f MiB/s\n", NR, mib, ms, mib * 1000 / ms }' |
  tee "$RUN_DIR/runs"
awk '{ print $(NF - 1) }' "$RUN_DIR/runs" | sort -g |
  awk '{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
                            printf "median of %d runs: %.1f MiB/s\n", NR, m }'
