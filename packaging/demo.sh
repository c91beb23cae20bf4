#!/usr/bin/env bash
# `make demo`: runs augurd from the build tree, submits an example workflow (as root: the
# process backend needs cgroups) and shows its progress and result, then the live host
# view. Ctrl-C stops the view and the agent (SIGTERM: eBPF detached, segment removed).
set -u
build=${1:-build}
src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/augurd-demo.XXXXXX)
log=$work/augurd.log
cat >"$work/augur.yaml" <<YAML
telemetry:
  shm_name: augur
forecast:
  state_dir: "$work/forecast"
plugins:
  dir: $(cd "$build" && pwd)/plugins
  enabled: [process]
  state_dir: $work/plugins
  config:
    process:
      cgroup_parent: augur-demo
control:
  socket: $work/augur.sock
workflows:
  state_dir: $work/workflows
YAML
if [ "$(id -u)" != 0 ]; then
  echo "demo: not root, so eBPF cannot load (augurd says so once and uses procfs) and the" >&2
  echo "demo: process backend cannot make cgroups: no workflow is run." >&2
fi
"$build/agent/augurd" --config "$work/augur.yaml" 2>"$log" &
agent=$!
stop() {
  kill -TERM "$agent" 2>/dev/null
  wait "$agent"
  rc=$?
  echo
  echo "--- augurd log ($log) ---"
  cat "$log"
  for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do rmdir "${h}augur-demo" 2>/dev/null; done
  exit $rc
}
trap stop INT TERM
# Give it a moment to create the segment and take two samples (rates need two points).
for _ in $(seq 1 50); do
  [ -e /dev/shm/augur ] && [ -e "$work/augur.sock" ] && break
  kill -0 "$agent" 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.1
done
sleep 1.2
if [ "$(id -u)" = 0 ]; then
  echo "== augurctl submit --wait examples/fanout.yaml"
  "$build/agent/augurctl" --socket "$work/augur.sock" submit --wait "$src/examples/fanout.yaml"
  echo "   (direct: $(seq 1 10000 | awk '{s+=$1*$1+$1*$1*$1} END {printf "%.0f", s}'))"
  echo "== augurctl status"
  "$build/agent/augurctl" --socket "$work/augur.sock" status
  echo
fi
if [ -t 1 ]; then
  "$build/agent/augurctl" top
else
  # No terminal (CI, a pipe): a few frames, then stop.
  for _ in 1 2 3; do "$build/agent/augurctl" top --once; echo; sleep 1; done
fi
stop
