#!/usr/bin/env bash
# `make demo`: runs augurd with its built-in defaults and shows the live host view.
# Ctrl-C stops the view and the agent (SIGTERM: eBPF detached, segment marked stale).
set -u
build=${1:-build}
log=$(mktemp /tmp/augurd-demo.XXXXXX.log)
if [ "$(id -u)" != 0 ]; then
  echo "demo: not root, so eBPF cannot load: augurd will say so once and use procfs." >&2
fi
"$build/agent/augurd" 2>"$log" &
agent=$!
stop() {
  kill -TERM "$agent" 2>/dev/null
  wait "$agent"
  rc=$?
  echo
  echo "--- augurd log ($log) ---"
  cat "$log"
  exit $rc
}
trap stop INT TERM
# Give it a moment to create the segment and take two samples (rates need two points).
for _ in $(seq 1 30); do
  [ -e /dev/shm/augur ] && break
  kill -0 "$agent" 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.1
done
sleep 1.2
if [ -t 1 ]; then
  "$build/agent/augurctl" top
else
  # No terminal (CI, a pipe): a few frames, then stop.
  for _ in 1 2 3; do "$build/agent/augurctl" top --once; echo; sleep 1; done
fi
stop
