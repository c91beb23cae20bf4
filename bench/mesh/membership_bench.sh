#!/usr/bin/env bash
# Membership benchmark on the namespace test bed (bench/mesh/netns.sh): the same scenarios for
# any membership implementation, so that augur and the Serf anchor are measured side by side.
#
# Usage: bench/mesh/membership_bench.sh [--quick] [--runner NAME]... [--sizes "8 16 32"]
#          [--kill-reps R] [--partition-reps R] [--loss-minutes "8:0.5 16:1 32:2"]
#          [--steady-seconds S] [--scenarios "steady kill partition loss"] [--out DIR]
#   NAME is KIND-VARIANT: serf-lan, serf-local (default: both). Defaults: 5 kills and 2
#   partitions per N, a 40 s steady window. --quick: N=8, one repetition, a 15 s steady window
#   and a 20 s loss run. Results: DIR/results.tsv (every measurement),
#   DIR/summary.md (the table), DIR/<runner>/n<N>/ (per-host logs). Default DIR:
#   /tmp/membership-bench-<pid>.
#
# Scenarios, for each runner and each N (hosts 1..N; host 1 is the seed every host joins):
#   steady     no faults; packets and bytes each host sends and receives per second over the
#              window, from its counters (netns_counters: IP traffic on its eth0, counted by
#              nftables the same way for every runner); the messages it sends and receives per
#              second, from the agent's own counters, when the runner can tell them
#              (runner_KIND_messages); the machine's load average over the window.
#   kill       kill -9 of host v (N, N-1, ... in turn; never the seed): time from the kill to
#              the first "suspect v" at any host, and until every live host has "failed v".
#              Then v is restarted: time until every other host has "join v" (a change
#              known to all), and the cluster must converge again.
#   partition  hosts 1..N/2 against the rest (netns_partition): time to the first suspicion
#              across the cut, until every host has "failed" every host on the other side
#              (held for at most PARTITION_HOLD s); then heal: time until every host has a
#              "join" for every host on the other side.
#   loss       1 % inbound loss on every host (netns_loss K 1 in: every packet crosses one
#              filter, so 1 % end to end) for M minutes, with host N's CPU saturated
#              (netns_saturate) throughout. Every "failed" of a host is false (nobody dies):
#              counted as declarations (observer, member) and as episodes (a member declared
#              failed, counted once until a "join" of it is seen again), with the suspicions,
#              per 1,000 host-minutes (N x M host-minutes per run). How long the unsaturated
#              agents waited for a CPU is sampled every 10 s (RUN_DIR/agent_wait, ms per
#              agent per second; median and max recorded): the machine is shared.
# Medians and p99 are over all repetitions (nearest rank: with fewer than 100 values the p99
# is the largest).
#
# Runners. A runner NAME=KIND-VARIANT is the file bench/mesh/runner_KIND.sh, sourced here; it
# defines two functions (nothing in this script changes to add one):
#   runner_KIND_start K VARIANT J...  start host K's agent in its namespace (netns_exec K ...),
#       in the background, returning at once: node name hK, bound to $(netns_addr K), joining
#       the hosts J... (empty for the first host). Everything it writes goes under $RUN_DIR
#       (per-host files hK.*). VARIANT is the part of NAME after the dash (serf: the profile).
#   runner_KIND_events K  print what host K has observed so far, one line per event:
#       "<epoch-ms> <event> <member>", event one of suspect (K started suspecting member),
#       failed (K now holds member failed/dead, by its own timeout or by hearing it), join
#       (member alive in K's view: first seen, or back after failed), leave (graceful leave);
#       member is the node name hJ. Times are wall-clock ms at the moment the agent decided,
#       to a few ms (runner_serf stamps each log line as the agent writes it: stamp_lines).
#       Convergence is judged from these events too (every host's latest event for every
#       other member is a join), so a host must report a join for each member it learns of,
#       at start-up as well.
# Optional: runner_KIND_messages K T0_MS T1_MS prints "sent received", the agent's own count
#   of membership-layer messages per second between the two epoch-ms times.
# Common to all runners (defined here): runner_stop K (SIGTERM to every process in host K's
# namespace, SIGKILL after 5 s) and runner_kill K (SIGKILL to every process in it).
set -u
export LC_ALL=C  # $EPOCHREALTIME with a dot

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/mesh/netns.sh
source "$here/netns.sh"

sizes="8 16 32"
runners=()
kill_reps=5
partition_reps=2
loss_minutes="8:0.5 16:1 32:2"
steady_seconds=40
scenarios="steady kill partition loss"
out=/tmp/membership-bench-$$
: "${CONVERGE_TIMEOUT:=90}"   # s for a (re)started cluster to see everyone alive
: "${DETECT_TIMEOUT:=60}"     # s for a kill to be confirmed everywhere
: "${PARTITION_HOLD:=60}"     # s a partition is held at most while waiting for detection
: "${MERGE_TIMEOUT:=120}"     # s for a healed cluster to re-merge
while (($#)); do
  case $1 in
    --quick)
      sizes=8 kill_reps=1 partition_reps=1 loss_minutes="8:0.34" steady_seconds=15
      ;;
    --runner) runners+=("$2"); shift ;;
    --sizes) sizes=$2; shift ;;
    --kill-reps) kill_reps=$2; shift ;;
    --partition-reps) partition_reps=$2; shift ;;
    --loss-minutes) loss_minutes=$2; shift ;;
    --steady-seconds) steady_seconds=$2; shift ;;
    --scenarios) scenarios=$2; shift ;;
    --out) out=$2; shift ;;
    *) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
  esac
  shift
done
((${#runners[@]})) || runners=(serf-lan serf-local)
mkdir -p "$out"
results=$out/results.tsv
: >"$results"

now_ms() { local t=${EPOCHREALTIME/./}; echo "${t:0:-3}"; }
log() { echo "[$(date +%T)] $*" >&2; }
# Stamps every line read with the wall clock: "<epoch-seconds.micro> <line>".
stamp_lines() { while IFS= read -r l; do printf '%s %s\n' "$EPOCHREALTIME" "$l"; done; }
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$runner" "$n" "$@" >>"$results"; }

runner_kill() { netns_kill "$1" KILL; }
runner_stop() {
  netns_kill "$1" TERM
  for _ in $(seq 1 50); do
    [[ $(ip netns pids "$(netns_name "$1")") ]] || return 0
    sleep 0.1
  done
  netns_kill "$1" KILL
}

# Every host's events with the observer: "<ms> <observer-k> <event> <member>", by time.
all_events() {
  local k
  for ((k = 1; k <= n; k++)); do "runner_${kind}_events" "$k" | sed "s/ / $k /"; done | sort -n
}

# Whether every host 1..n holds all n members alive, judged from the events: a member is
# alive in K's view when its latest event there is a join (K itself counts as alive).
converged() {
  all_events | awk -v n="$n" '
    $3 == "join" || $3 == "failed" || $3 == "leave" { st[$2, substr($4, 2) + 0] = $3 }
    END { for (o = 1; o <= n; o++) for (m = 1; m <= n; m++)
            if (m != o && st[o, m] != "join") exit 1 }'
}
# Waits at most $1 s for converged.
wait_converged() {
  local deadline=$(($(date +%s) + $1))
  until converged; do
    (($(date +%s) >= deadline)) && return 1
    sleep 1
  done
}

start_cluster() {
  local k
  "runner_${kind}_start" 1 "$variant"
  sleep 0.5
  for ((k = 2; k <= n; k++)); do
    "runner_${kind}_start" "$k" "$variant" 1
    sleep 0.1
  done
  wait_converged "$CONVERGE_TIMEOUT" || { log "cluster of $n did not converge"; return 1; }
  sleep 3  # let the joins' gossip die down
}

scenario_steady() {
  local k before=() t0 t1
  for ((k = 1; k <= n; k++)); do before[k]=$(netns_counters "$k"); done
  t0=$(now_ms)
  sleep "$steady_seconds"
  t1=$(now_ms)
  for ((k = 1; k <= n; k++)); do
    echo "${before[k]} $(netns_counters "$k")" | awk -v s="$((t1 - t0))" -v k="$k" '{
      split("tx_pps tx_Bps rx_pps rx_Bps", name, " ")
      for (i = 1; i <= 4; i++) printf "steady\t%s\t%s\t%.2f\n", k, name[i], ($(i + 4) - $i) * 1000 / s }' |
      while IFS=$'\t' read -r sc rep metric value; do record "$sc" "$rep" "$metric" "$value"; done
  done
  record steady 1 load1 "$(cut -d' ' -f1 /proc/loadavg)"
  if declare -F "runner_${kind}_messages" >/dev/null; then
    sleep 11  # the agents' counters lines come every 10 s: one past the window's end
    for ((k = 1; k <= n; k++)); do
      read -r ms mr < <("runner_${kind}_messages" "$k" "$t0" "$((t1 + 11000))")
      [[ $ms ]] || continue
      record steady "$k" tx_mps "$ms"
      record steady "$k" rx_mps "$mr"
      record steady "$k" io_mps "$(awk -v a="$ms" -v b="$mr" 'BEGIN { printf "%.2f", a + b }')"
    done
  fi
}

# First time (ms) at or after $1 at which host $2 shows "$3 $4" in $events_file, or nothing.
first_event() { awk -v t="$1" -v o="$2" -v e="$3" -v m="$4" '$1 >= t && $2 == o && $3 == e && $4 == m { print $1; exit }' "$events_file"; }
# How many hosts show "$2 $3" at or after $1 in $events_file.
observers() { awk -v t="$1" -v e="$2" -v m="$3" '$1 >= t && $3 == e && $4 == m && !s[$2]++ { c++ } END { print c + 0 }' "$events_file"; }

scenario_kill() {
  local rep v t0 k deadline first confirm tk
  for ((rep = 1; rep <= kill_reps; rep++)); do
    v=$((n - (rep - 1) % (n - 1)))
    events_file=$RUN_DIR/events.kill$rep
    t0=$(now_ms)
    runner_kill "$v"
    deadline=$(($(date +%s) + DETECT_TIMEOUT))
    while sleep 1; do
      all_events >"$events_file"
      (($(observers "$t0" failed "h$v") >= n - 1 || $(date +%s) >= deadline)) && break
    done
    first=$(awk -v t="$t0" -v m="h$v" '$1 >= t && $3 == "suspect" && $4 == m { print $1 - t; exit }' "$events_file")
    record kill "$rep" at_ms "$t0"  # epoch ms of the kill, to re-read the logs later
    record kill "$rep" first_suspect_ms "${first:-NA}"
    confirm=0
    for ((k = 1; k <= n; k++)); do
      ((k == v)) && continue
      tk=$(first_event "$t0" "$k" failed "h$v")
      if [[ -z $tk ]]; then confirm=NA; break; fi
      record kill "$rep" host_confirm_ms $((tk - t0))
      ((tk - t0 > confirm)) && confirm=$((tk - t0))
    done
    record kill "$rep" all_confirm_ms "$confirm"
    record kill "$rep" load1 "$(cut -d' ' -f1 /proc/loadavg)"
    log "kill rep $rep: h$v suspected after ${first:-NA} ms, failed everywhere after $confirm ms"
    # The restart is a change every host must learn of: time until all know h$v again.
    t0=$(now_ms)
    "runner_${kind}_start" "$v" "$variant" 1
    wait_converged "$CONVERGE_TIMEOUT" || log "h$v did not rejoin"
    all_events >"$events_file"
    record kill "$rep" rejoin_all_ms "$(awk -v t="$t0" -v m="h$v" -v n="$n" '
      $1 >= t && $3 == "join" && $4 == m && ("h" $2) != m && !s[$2]++ { c++; last = $1 }
      END { print (c == n - 1) ? last - t : "NA" }' "$events_file")"
    sleep 2
  done
}

scenario_partition() {
  local rep half a b t0 t1 deadline first detect merge
  half=$((n / 2))
  a=$(seq -s' ' 1 "$half")
  b=$(seq -s' ' $((half + 1)) "$n")
  for ((rep = 1; rep <= partition_reps; rep++)); do
    events_file=$RUN_DIR/events.partition$rep
    t0=$(now_ms)
    netns_partition "$a" "$b"
    deadline=$(($(date +%s) + PARTITION_HOLD))
    while sleep 1; do
      all_events >"$events_file"
      detect=$(cut_times "$t0" 0)
      [[ $detect != NA || $(date +%s) -ge $deadline ]] && break
    done
    first=$(awk -v t="$t0" -v half="$half" '$1 >= t && $3 == "suspect" {
        m = substr($4, 2) + 0; if (($2 + 0 <= half) != (m <= half)) { print $1 - t; exit } }' "$events_file")
    t1=$(now_ms)
    netns_heal
    deadline=$(($(date +%s) + MERGE_TIMEOUT))
    while sleep 1; do
      all_events >"$events_file"
      merge=$(cut_times "$t0" "$t1")
      [[ $merge != NA || $(date +%s) -ge $deadline ]] && break
    done
    record partition "$rep" first_suspect_ms "${first:-NA}"
    record partition "$rep" all_detect_ms "$detect"
    record partition "$rep" at_ms "$t0"
    record partition "$rep" heal_at_ms "$t1"
    record partition "$rep" held_ms $((t1 - t0))
    record partition "$rep" merge_ms "$merge"
    log "partition rep $rep: first suspicion ${first:-NA} ms, all failed across the cut $detect ms, re-merged $merge ms after heal"
    wait_converged "$CONVERGE_TIMEOUT" || log "cluster did not converge after heal"
    sleep 2
  done
}

# Across the cut (hosts 1..half against the rest), from $events_file. With $2 = 0: ms from $1
# until every host holds every host of the other side failed, or NA. With $2 = heal time: ms
# from the heal until every (host, member) pair that went failed after $1 has a join again.
cut_times() {
  awk -v t0="$1" -v t1="$2" -v half="$half" -v n="$n" '
    $1 < t0 { next }
    { o = $2 + 0; m = substr($4, 2) + 0 }
    (o <= half) == (m <= half) { next }
    $3 == "failed" && (t1 == 0 || $1 < t1) && !((o, m) in failed) { failed[o, m] = $1; nf++; if ($1 > lf) lf = $1 }
    t1 > 0 && $1 >= t1 && $3 == "join" && ((o, m) in failed) && !((o, m) in back) { back[o, m]; nb++; if ($1 > lb) lb = $1 }
    END { if (t1 == 0) print (nf == 2 * half * (n - half)) ? lf - t0 : "NA"
          else print (nf > 0 && nb == nf) ? lb - t1 : "NA" }' "$events_file"
}

scenario_loss() {
  local minutes k t0 t1 secs
  minutes=$(for x in $loss_minutes; do [[ ${x%%:*} == "$n" ]] && echo "${x#*:}"; done)
  [[ $minutes ]] || { log "no loss duration for N=$n in --loss-minutes '$loss_minutes'"; return; }
  secs=$(awk -v m="$minutes" 'BEGIN { printf "%d", m * 60 }')
  for ((k = 1; k <= n; k++)); do netns_loss "$k" 1 in; done
  # The machine is shared with other work. How long the agents of the unsaturated hosts
  # waited for a CPU (run-queue time of all their threads, /proc/PID/task/*/schedstat), in ms
  # per agent per second, every 10 s: an overloaded machine delays every agent at once, which
  # shows up as false suspicions that no protocol setting explains.
  (
    prev=""
    while sleep 10; do
      cur="$(now_ms) $(for ((k = 1; k < n; k++)); do
        for p in $(ip netns pids "$(netns_name "$k")"); do cat /proc/"$p"/task/*/schedstat; done
      done 2>/dev/null | awk '{ w += $2 } END { printf "%.0f", w }')"
      [[ $prev ]] && awk -v a="$prev" -v b="$cur" -v agents=$((n - 1)) 'BEGIN { split(a, x); split(b, y)
          printf "%s %.1f\n", y[1], (y[2] - x[2]) / 1e6 / agents / ((y[1] - x[1]) / 1000) }'
      prev=$cur
    done
  ) >"$RUN_DIR/agent_wait" &
  local sampler=$!
  t0=$(now_ms)
  netns_saturate "$n" "$secs"
  t1=$(now_ms)
  record loss 1 load1 "$(cut -d' ' -f1 /proc/loadavg)"
  kill "$sampler"
  for ((k = 1; k <= n; k++)); do netns_loss "$k" 0; done
  sleep 5  # a judgement begun under loss may end just after it
  events_file=$RUN_DIR/events.loss
  all_events >"$events_file"
  awk -v t0="$t0" -v t1="$((t1 + 5000))" -v n="$n" -v runner="$runner" -v mins="$minutes" '
    $1 < t0 || $1 > t1 { next }
    $3 == "suspect" { s++ }
    $3 == "failed" { d++; if (last[$4] != "failed") e++ }
    $3 == "failed" || $3 == "join" { last[$4] = $3 }
    END { hm = n * mins
      printf "%s\t%s\tloss\t1\tat_ms\t%.0f\n%s\t%s\tloss\t1\tend_ms\t%.0f\n", runner, n, t0, runner, n, t1 - 5000
      printf "%s\t%s\tloss\t1\thost_minutes\t%s\n", runner, n, hm
      printf "%s\t%s\tloss\t1\tsuspicions\t%d\n", runner, n, s
      printf "%s\t%s\tloss\t1\tfailed_declarations\t%d\n", runner, n, d
      printf "%s\t%s\tloss\t1\tfalse_positive_episodes\t%d\n", runner, n, e }' \
    "$events_file" >>"$results"
  sort -k2 -n "$RUN_DIR/agent_wait" | awk -v runner="$runner" -v n="$n" 'NF == 2 { v[++c] = $2 }
    END { if (c) printf "%s\t%s\tloss\t1\tagent_wait_median_ms_per_s\t%s\n%s\t%s\tloss\t1\tagent_wait_max_ms_per_s\t%s\n",
            runner, n, v[int((c + 1) / 2)], runner, n, v[c] }' >>"$results"
  log "loss: $(grep -P "^$runner\t$n\tloss\t" "$results" | grep -vP "\t(at|end)_ms\t" | cut -f5,6 | tr '\t\n' '= ')"
}

summarize() {
  awk -F'\t' '
    function stats(key,   i, j, k, t, m, c, v, p) {
      c = cnt[key]; if (c == 0) return "-"
      for (i = 1; i <= c; i++) v[i] = val[key, i]
      for (i = 2; i <= c; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
      m = (c % 2) ? v[(c + 1) / 2] : (v[c / 2] + v[c / 2 + 1]) / 2
      k = int(0.99 * c); if (k < 0.99 * c) k++
      p = v[k]
      return sprintf("%s / %s", fmt(m), fmt(p))
    }
    function fmt(x) { return (x >= 100) ? sprintf("%.0f", x) : sprintf("%.3g", x) }
    function one(key) { return (cnt[key] ? val[key, 1] : "-") }
    { key = $1 SUBSEP $2 SUBSEP $3 SUBSEP $5
      if ($6 == "NA") { na[key]++; next }
      val[key, ++cnt[key]] = $6 + 0
      if (!(($1, $2) in seen)) { seen[$1, $2]; order[++rows] = $1 SUBSEP $2 } }
    END {
      print "| runner | N | kill: first suspicion, ms (median / p99) | kill: failed at every live host, ms (median / p99) | kill: failed at one host, ms (median / p99 over all hosts) | kill: reps | kill: restarted host known to all, ms (median / p99) | loss+saturated CPU: false-positive episodes / declarations / suspicions (host-minutes) | per 1,000 host-minutes: episodes | steady: sent pkts/s per host (median / max) | steady: sent B/s per host (median / max) | steady: received pkts/s, B/s per host (median) | steady: messages/s per host sent + received (median / max) | steady: messages/s sent, received (median) | load average (steady; kill, loss median) | partition: first suspicion, ms | partition: all failed across the cut, ms | partition: re-merged after heal, ms | partition: reps |"
      print "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
      for (r = 1; r <= rows; r++) {
        split(order[r], rn, SUBSEP); R = rn[1]; N = rn[2]; b = R SUBSEP N SUBSEP
        hm = one(b "loss" SUBSEP "host_minutes")
        fp = (hm == "-") ? "-" : sprintf("%s / %s / %s (%s)", one(b "loss" SUBSEP "false_positive_episodes"), one(b "loss" SUBSEP "failed_declarations"), one(b "loss" SUBSEP "suspicions"), hm)
        per = (hm == "-" || hm == 0) ? "-" : sprintf("%.3g", 1000 * one(b "loss" SUBSEP "false_positive_episodes") / hm)
        split(stats(b "steady" SUBSEP "rx_pps"), rp, " / "); split(stats(b "steady" SUBSEP "rx_Bps"), rb, " / ")
        split(stats(b "steady" SUBSEP "tx_mps"), tm, " / "); split(stats(b "steady" SUBSEP "rx_mps"), rm, " / ")
        split(stats(b "kill" SUBSEP "load1"), kl, " / "); split(stats(b "loss" SUBSEP "load1"), ll, " / ")
        printf "| %s | %s | %s | %s | %s | %d%s | %s | %s | %s | %s | %s | %s, %s | %s | %s, %s | %s; %s, %s | %s | %s | %s | %d%s |\n", R, N,
          stats(b "kill" SUBSEP "first_suspect_ms"), stats(b "kill" SUBSEP "all_confirm_ms"),
          stats(b "kill" SUBSEP "host_confirm_ms"),
          cnt[b "kill" SUBSEP "all_confirm_ms"], na[b "kill" SUBSEP "all_confirm_ms"] ? " (+" na[b "kill" SUBSEP "all_confirm_ms"] " unconfirmed)" : "",
          stats(b "kill" SUBSEP "rejoin_all_ms"), fp, per, stats(b "steady" SUBSEP "tx_pps"), stats(b "steady" SUBSEP "tx_Bps"), rp[1], rb[1],
          stats(b "steady" SUBSEP "io_mps"), tm[1], rm[1], one(b "steady" SUBSEP "load1"), kl[1], ll[1],
          stats(b "partition" SUBSEP "first_suspect_ms"), stats(b "partition" SUBSEP "all_detect_ms"),
          stats(b "partition" SUBSEP "merge_ms"), cnt[b "partition" SUBSEP "held_ms"],
          (na[b "partition" SUBSEP "all_detect_ms"] || na[b "partition" SUBSEP "merge_ms"]) ? " (some NA)" : ""
      }
    }' "$results"
}

bench_start=$(date +%s)
for runner in "${runners[@]}"; do
  kind=${runner%%-*}
  variant=${runner#*-}
  [[ $variant == "$runner" ]] && variant=default
  if [[ ! -f $here/runner_$kind.sh ]]; then
    log "no runner '$kind': expected $here/runner_$kind.sh"
    exit 2
  fi
  # shellcheck source=/dev/null
  source "$here/runner_$kind.sh"
  for n in $sizes; do
    RUN_DIR=$out/$runner/n$n
    mkdir -p "$RUN_DIR"
    t_start=$(date +%s)
    log "$runner N=$n: up"
    netns_up "$n" || exit 1
    if start_cluster; then
      for s in $scenarios; do
        log "$runner N=$n: $s"
        "scenario_$s"
      done
    fi
    netns_down ""
    log "$runner N=$n: done in $(($(date +%s) - t_start)) s"
    record wall 1 seconds $(($(date +%s) - t_start))
  done
done
summarize | tee "$out/summary.md"
log "all done in $(($(date +%s) - bench_start)) s; results in $out"
