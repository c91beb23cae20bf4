# Sourced by the whole-process benchmarks: a scratch dir, an augurd with the process backend
# under its own shm name and cgroup parent, stopped and cleaned up on exit.
#   start_augurd BUILD NAME [WORKFLOWS_YAML]   sets $work, $agent; the socket is $work/augur.sock
start_augurd() {
  local build=$1 name=$2 workflows=${3:-"{state_dir: WORK/wf}"}
  work=$(mktemp -d "/tmp/$name.XXXXXX")
  bench_name=$name
  trap 'kill -TERM $agent 2>/dev/null; wait $agent 2>/dev/null; rm -rf "$work"; for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do rmdir "${h}$bench_name" 2>/dev/null; done' EXIT
  cat >"$work/augur.yaml" <<YAML
telemetry: {shm_name: $name, ebpf: off}
metrics: {enabled: false}
forecast: {enabled: false}
plugins:
  dir: $(cd "$build" && pwd)/plugins
  enabled: [process]
  state_dir: $work/plugins
  config: {process: {cgroup_parent: $name}}
control: {socket: $work/augur.sock}
workflows: ${workflows//WORK/$work}
YAML
  "$build/agent/augurd" --config "$work/augur.yaml" 2>"$work/log" &
  agent=$!
  for _ in $(seq 1 100); do [ -S "$work/augur.sock" ] && break; sleep 0.1; done
}
median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
