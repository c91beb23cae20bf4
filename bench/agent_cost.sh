#!/usr/bin/env bash
# Whole-process cost of augurd: CPU % of one core and RSS at a 1 s interval with every
# collector, over a measured window (default 60 s after a 5 s warm-up), plus the kernel's
# own accounting of each eBPF program (run_time_ns / run_cnt) read back from the segment.
#
#   bash bench/agent_cost.sh [BUILD_DIR] [SECONDS]
#
# AUGUR_BENCH_EXTRA, if set, is appended to the agent's config (printf %b: "\n" is a
# newline), e.g. AUGUR_BENCH_EXTRA='forecast:\n  step: 1s\n' to see in an hour what the
# default 60 s step shows in 60.
set -euo pipefail
build=${1:-build}
secs=${2:-60}
name="augur-bench-$$"
cfg=$(mktemp /tmp/augur-bench.XXXXXX.yaml)
log=${cfg%.yaml}.log
cat >"$cfg" <<YAML
telemetry:
  interval: 1s
  ebpf: auto
  shm_name: $name
metrics:
  listen: 127.0.0.1:0
YAML
printf "%b" "${AUGUR_BENCH_EXTRA:-}" >>"$cfg"
"$build/agent/augurd" --config "$cfg" 2>"$log" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$cfg" "$log" /dev/shm/$name /dev/shm/$name.lock' EXIT
sleep 5
clk=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' /proc/$pid/stat; }
t0=$(ticks); s0=$(date +%s.%N)
max_rss=0
for _ in $(seq 1 "$secs"); do
  sleep 1
  rss=$(awk '/^VmRSS/ {print $2}' /proc/$pid/status)
  [ "$rss" -gt "$max_rss" ] && max_rss=$rss
done
t1=$(ticks); s1=$(date +%s.%N)
# RSS counts three kinds of page: the agent's own (anonymous), the shared-memory store it
# writes (shmem: series x capacity x 16 B, reserved when a series is added) and the pages of
# shared libraries (file), which other processes share.
breakdown=$(awk '/^Rss(Anon|File|Shmem)/ {printf "%s %d MiB  ", $1, $2 / 1024}' /proc/$pid/status)
# (A reader that cannot read the segment must not cost the whole run's figures.)
series=$("$build/agent/augurctl" --shm "$name" series 2>/dev/null | wc -l || true)
cpu=$(awk -v t0="$t0" -v t1="$t1" -v c="$clk" -v s0="$s0" -v s1="$s1" 'BEGIN {printf "%.3f", (t1 - t0) * 100 / c / (s1 - s0)}')
echo "augurd over ${secs}s at 1s interval: cpu ${cpu}% of one core, max RSS $((max_rss / 1024)) MiB ($max_rss KiB)"
echo "at the end: $breakdown($series series in the store)"
echo "collectors: $(grep -oE 'eBPF collector [a-z]+ (loaded|unavailable)' "$log" | sort | uniq | paste -sd, -)"
# eBPF cost per event, from the kernel's BPF stats that augurd exports.
"$build/agent/augurctl" --shm "$name" series --json | python3 -c '
import json, sys
rows = json.load(sys.stdin)
runs, secs = {}, {}
for r in rows:
    prog = r["labels"].get("program")
    if not prog or "latest" not in r: continue
    if r["name"] == "augur_bpf_program_runs_total": runs[prog] = r["latest"]["value"]
    if r["name"] == "augur_bpf_program_run_seconds_total": secs[prog] = r["latest"]["value"]
for p in sorted(runs):
    if runs[p] > 0:
        print(f"bpf program {p:<28} runs {int(runs[p]):>12}  {secs.get(p, 0) * 1e9 / runs[p]:8.1f} ns/run")
'
