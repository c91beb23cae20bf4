#!/usr/bin/env bash
# Placement benchmark on the namespace test bed (bench/mesh/netns.sh): real augurd processes,
# one per namespace, each with the workflow engine on the process backend, place the shards
# that do not fit on the host a workflow was submitted to on their peers (MeshPlacer,
# docs/MESH.md "Running shards on other hosts").
#
# Usage: bench/mesh/placement_bench.sh [--quick] [--sizes "8 16 32"] [--rounds R] [--kills K]
#          [--cpu C] [--owner-cpu C] [--owners-full] [--shards S] [--run-s T] [--out DIR]
#   Every host offers C cores (workflows.max_cpu; default 1) to shards of 0.25 cores that
#   sleep (so the 2-core machine carries N x 4 of them). Hosts 1, 5, 9, ... (one in four)
#   own workflows: each round, each owner submits one workflow of S shards (default 12: 4
#   run on the owner, 8 must go elsewhere), 3/4 of the mesh's room in all. --owner-cpu
#   gives the owners other room (at least a shard's: the engine plans shards against its
#   own host). --owners-full fills each owner's room with a workflow of hour-long shards
#   first, so that every shard of a round is placed elsewhere and the owner's engine thread
#   starts nothing of its own meanwhile (with --owner-cpu 0.25 --shards 8: 2/3 of the
#   others' room).
#   --quick: N = 8, 2 rounds, 1 kill. Results: DIR/results.tsv (every measurement),
#   DIR/summary.md, DIR/n<N>/ (per-host logs, stamped). Default DIR /tmp/placement-bench-<pid>.
#
# Measured per N:
#   latency    per placed shard, the owner's own time from handing the shard to its negotiator
#              (the engine's kPlace: ready, and no room here) to the grant (the host's Leased
#              back at the owner), as MeshPlacer logs it ("mesh: placed A on H (...) X ms after
#              it was ready, R round(s)"), to the microsecond on one clock. Also from the
#              workflow's submission (augurctl submit returning) to each remote grant, by the
#              wall clock stamped on the log lines: that adds the engine's first tick and any
#              wait for room in the gossiped view.
#   grants/s   remote grants of a round over the time from the first submission to the last
#              grant of the round, across the whole mesh.
#   reassign   a round of long shards (60 s); once every remote shard is granted, kill -9 of
#              every process of one non-owner host that runs some: per shard it ran, the time
#              from the kill to the new attempt's grant on another host (membership declares
#              the host dead, the owner's lease is lost, the engine re-queues the shard after
#              0.5 s, the placer negotiates again). The host is then restarted.
#   load       the machine's load average (1 min) at each round's start, recorded beside the
#              numbers: the machine is shared.
# Needs root (namespaces, cgroups), the build's augurd, augurctl and process plugin.
set -u
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/mesh/netns.sh
source "$here/netns.sh"
: "${AUGUR_BUILD:=$(cd "$here/../.." && pwd)/build}"

sizes="8 16 32"
rounds=4
kills=2
cpu=1
owner_cpu=
owners_full=
shards=12
run_s=4
kill_run_s=60
out=/tmp/placement-bench-$$
: "${CONVERGE_TIMEOUT:=120}"  # s for a started mesh to see every host alive with headroom
: "${ROUND_TIMEOUT:=180}"     # s for a round's workflows to finish
while (($#)); do
  case $1 in
    --quick) sizes=8 rounds=2 kills=1 ;;
    --sizes) sizes=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --kills) kills=$2; shift ;;
    --cpu) cpu=$2; shift ;;
    --owner-cpu) owner_cpu=$2; shift ;;
    --owners-full) owners_full=1 ;;
    --shards) shards=$2; shift ;;
    --run-s) run_s=$2; shift ;;
    --out) out=$2; shift ;;
    *) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
  esac
  shift
done
: "${owner_cpu:=$cpu}"
mkdir -p "$out"
results=$out/results.tsv
: >"$results"
ctl=$AUGUR_BUILD/agent/augurctl

now_ms() { local t=${EPOCHREALTIME/./}; echo "${t:0:-3}"; }
log() { echo "[$(date +%T)] $*" >&2; }
stamp_lines() { while IFS= read -r l; do printf '%s %s\n' "$EPOCHREALTIME" "$l"; done; }
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$n" "$@" >>"$results"; }
cgroup_parent() { echo "augur-pb-$MESH_ID-h$1"; }

start_host() {
  local k=$1 keys=$RUN_DIR/keys
  mkdir -p "$keys" "$RUN_DIR/h$k"
  [[ -f $keys/h$k/host.key ]] || "$ctl" keygen --out "$keys/h$k" --name "h$k" >/dev/null || return 1
  grep -qs " h$k\$" "$keys/authorized_keys" || cat "$keys/h$k/host.pub" >>"$keys/authorized_keys"
  cat >"$RUN_DIR/h$k.yaml" <<YAML
telemetry: {interval: 10s, ebpf: "off", shm_name: augur-pb-$MESH_ID-h$k, capacity: 16, max_series: 64}
metrics: {enabled: false}
forecast: {enabled: false}
plugins: {dir: $AUGUR_BUILD/plugins, enabled: [process], state_dir: $RUN_DIR/h$k/plugins, config: {process: {cgroup_parent: $(cgroup_parent "$k")}}}
workflows: {state_dir: $RUN_DIR/h$k/wf, max_cpu: $( (((k - 1) % 4 == 0)) && echo "$owner_cpu" || echo "$cpu")}
control: {socket: $RUN_DIR/h$k.sock}
mesh:
  enabled: true
  name: h$k
  listen: $(netns_addr "$k"):7946
  zone: zone-$((k % 3))
  seeds: [h1@$(netns_addr 1):7946]
  key_file: $keys/h$k/host.key
  authorized_keys: $keys/authorized_keys
YAML
  # nsenter --net only: `ip netns exec` remounts /sys, which hides the cgroup tree.
  nsenter --net="/run/netns/$(netns_name "$k")" -- "$AUGUR_BUILD/agent/augurd" \
    --config "$RUN_DIR/h$k.yaml" > >(stamp_lines >>"$RUN_DIR/h$k.log") 2>&1 &
}

# Every host in $@ sees all n hosts alive, each with its process backend in its headroom.
ready_view() {
  local k
  for k in "$@"; do
    "$ctl" --socket "$RUN_DIR/h$k.sock" peers --json 2>/dev/null | python3 -c '
import json, sys
n = int(sys.argv[1])
try:
    peers = json.load(sys.stdin)
except Exception:
    sys.exit(1)
ok = [p for p in peers if p.get("state") == "alive" and p.get("headroom", {}).get("backends")]
sys.exit(0 if len(ok) == n else 1)' "$n" || return 1
  done
}
wait_ready() {
  local deadline=$(($(date +%s) + CONVERGE_TIMEOUT))
  until ready_view "$@"; do
    (($(date +%s) >= deadline)) && return 1
    sleep 1
  done
}

owners() { seq 1 4 "$n"; }

workflow_yaml() {  # name shards seconds
  cat <<YAML
workflow: $1
stages:
  - name: work
    resources: {cpu: 0.25, memory: 16Mi}
    shards: {range: [0, $2], count: $2}
    canary: false
    expected: ${3}s
    run: [sh, -c, "sleep $3; echo {shard.begin}"]
YAML
}

# Submits one workflow per owner; prints "owner id submit_ms" lines.
submit_round() {  # tag seconds
  local k id t
  for k in $(owners); do
    workflow_yaml "pb-$1-h$k" "$shards" "$2" >"$RUN_DIR/$1-h$k.yaml"
    t=$(now_ms)
    id=$("$ctl" --socket "$RUN_DIR/h$k.sock" submit "$RUN_DIR/$1-h$k.yaml") || { log "submit to h$k failed"; continue; }
    echo "$k $id $t"
  done
}

wait_finished() {  # file of "owner id t" lines
  local deadline=$(($(date +%s) + ROUND_TIMEOUT)) k id t state
  while read -r k id t; do
    while :; do
      state=$("$ctl" --socket "$RUN_DIR/h$k.sock" status "$id" --json 2>/dev/null </dev/null |
        python3 -c 'import json,sys; j=json.load(sys.stdin); print(j[0].get("state",""))' 2>/dev/null)
      [[ -n $state && $state != running ]] && break
      (($(date +%s) >= deadline)) && { log "$id on h$k still ${state:-unknown}"; return 1; }
      sleep 1
    done
    [[ $state == succeeded ]] || log "$id on h$k: $state"
  done <"$1"
}

# The placements of the workflows in file $1 ("owner id submit_ms" lines), from the owners'
# logs: "stamp_ms owner attempt host latency_ms negotiating_ms rounds submit_ms" lines, then
# the hops when the log line has them (builds since the breakdown; NA before): handed,
# probed, answered, decided, how (timer|all), leased, and the waits: the winner's before it
# answered the probe and the award, the Leased's at the owner; then from the grant to its
# take-up by the owner's engine thread (-1 from builds before it; ms; docs/MESH.md
# "Placement benchmarks").
placements() {
  python3 - "$1" "$RUN_DIR" <<'PY'
import re, sys
line = re.compile(r"^(\S+) .* mesh: placed (\S+) on (\S+) \(.*\) ([0-9.]+) ms after it was ready "
                  r"\(([0-9.]+) ms negotiating\), (\d+) round")
num = r"(-?[0-9.]+)"
hops = re.compile(rf"hops ms: handed {num} probed {num} answered {num} decided {num} \((\w+)\) "
                  rf"leased {num}; waits ms: offer {num} award {num} leased {num}"
                  rf"(?:; taken up {num})?")
for w in open(sys.argv[1]):
    k, wid, sub = w.split()
    for l in open(f"{sys.argv[2]}/h{k}.log", errors="replace"):
        m = line.match(l)
        if m and m.group(2).startswith(wid + "/"):
            h = hops.search(l)
            print(round(float(m.group(1)) * 1000), k, *m.group(2, 3, 4, 5, 6), sub,
                  *([g if g is not None else "-1" for g in h.groups()] if h else ["NA"] * 10))
PY
}

round() {
  local r=$1 sub=$RUN_DIR/round$r.submitted load
  load=$(cut -d' ' -f1 /proc/loadavg)
  record round "$r" load1 "$load"
  submit_round "r$r" "$run_s" >"$sub"
  wait_finished "$sub"
  sleep 1
  placements "$sub" >"$RUN_DIR/round$r.placed"
  python3 - "$RUN_DIR/round$r.placed" "$n" "$r" >>"$results" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1])]
n, r = sys.argv[2], sys.argv[3]
out = lambda m, v: print(f"{n}\tround\t{r}\t{m}\t{v}")
names = ["hop_handed_ms", "hop_probed_ms", "hop_answered_ms", "hop_decided_ms", None,
         "hop_leased_ms", "wait_offer_ms", "wait_award_ms", "wait_leased_ms", "taken_up_ms"]
for ms, k, att, host, lat, neg, rounds, sub, *hops in rows:
    out("latency_ms", lat); out("negotiating_ms", neg); out("rounds", rounds)
    out("from_submit_ms", int(ms) - int(sub))
    if hops and hops[0] != "NA":
        for name, v in zip(names, hops):
            if name and float(v) >= 0: out(name, v)
        out("decided_by_timer", int(hops[4] == "timer"))
        out("leased_at_once", int(hops[4] == "once"))
out("grants", len(rows))
if rows:
    t0 = min(int(x[7]) for x in rows); t1 = max(int(x[0]) for x in rows)
    out("grants_per_s", f"{len(rows) * 1000 / max(1, t1 - t0):.1f}")
PY
  log "N=$n round $r (load $load): $(wc -l <"$RUN_DIR/round$r.placed") remote grants, latency ms $(cut -d' ' -f5 "$RUN_DIR/round$r.placed" | sort -n | awk '{ v[NR] = $1 } END { if (NR) printf "p50 %s max %s", v[int((NR + 1) / 2)], v[NR] }')"
}

kill_round() {
  local r=$1 sub=$RUN_DIR/kill$r.submitted victim t0 expected placed deadline load k id t
  load=$(cut -d' ' -f1 /proc/loadavg)
  record kill "$r" load1 "$load"
  submit_round "k$r" "$kill_run_s" >"$sub"
  expected=$(($(wc -l <"$sub") * shards))
  [[ -n $owners_full ]] || expected=$((expected - $(wc -l <"$sub") * $(awk -v c="$owner_cpu" 'BEGIN { print int(c / 0.25) }')))
  deadline=$(($(date +%s) + 60))
  while :; do
    placements "$sub" >"$RUN_DIR/kill$r.placed"
    placed=$(wc -l <"$RUN_DIR/kill$r.placed")
    ((placed >= expected || $(date +%s) >= deadline)) && break
    sleep 1
  done
  # The host that runs most of the shards among those that own none.
  victim=$(awk '{ h = substr($4, 2) + 0; if ((h - 1) % 4 != 0) c[h]++ }
    END { for (h in c) if (c[h] > best) { best = c[h]; v = h } print v }' "$RUN_DIR/kill$r.placed")
  if [[ -z $victim ]]; then log "kill $r: no host runs shards of others"; return; fi
  sleep 2
  t0=$(now_ms)
  netns_kill "$victim" KILL
  deadline=$(($(date +%s) + 60))
  local report=""
  while :; do
    placements "$sub" >"$RUN_DIR/kill$r.placed"
    report=$(python3 - "$RUN_DIR/kill$r.placed" "$victim" "$t0" "$RUN_DIR" <<'PY'
import re, sys
rows = [l.split() for l in open(sys.argv[1])]
victim, t0, d = "h" + sys.argv[2], int(sys.argv[3]), sys.argv[4]
shard = lambda a: a.rsplit("#", 1)[0]
moved = {(k, shard(a)) for ms, k, a, h, *_ in rows if h == victim and int(ms) < t0}
lost = re.compile(r"^(\S+) .* mesh: lease of (\S+) on " + victim + " lost")
done = 0
for k, s in sorted(moved):
    again = [int(ms) for ms, k2, a, h, *_ in rows if shard(a) == s and h != victim and int(ms) >= t0]
    print("reassign_ms", min(again) - t0 if again else "NA")
    done += bool(again)
    for l in open(f"{d}/h{k}.log", errors="replace"):
        m = lost.match(l)
        if m and shard(m.group(2)) == s and float(m.group(1)) * 1000 >= t0:
            print("lost_ms", round(float(m.group(1)) * 1000) - t0)
            break
print("shards_on_victim", len(moved))
print("complete", int(done == len(moved)))
PY
)
    [[ $report == *"complete 1"* || $(date +%s) -ge $deadline ]] && break
    sleep 1
  done
  echo "$report" | while read -r m v; do [[ $m == complete ]] || record kill "$r" "$m" "$v"; done
  log "N=$n kill $r (load $load): h$victim: $(echo "$report" | awk '$1 == "shards_on_victim" { s = $2 } $1 == "reassign_ms" && $2 > w { w = $2 } END { printf "%s shards re-granted elsewhere within %s ms", s, w }')"
  # The long shards would take another minute: cancelled.
  while read -r k id t; do "$ctl" --socket "$RUN_DIR/h$k.sock" cancel "$id" >/dev/null 2>&1; done <"$sub"
  start_host "$victim"
  wait_ready $(owners) || log "h$victim did not come back"
  sleep 3
}

summarize() {
  awk -F'\t' '
    function sorted(key,   i, j, t, c) {
      c = cnt[key]
      for (i = 1; i <= c; i++) v[i] = val[key, i]
      for (i = 2; i <= c; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
      return c
    }
    function q(key, p,   c, k) { c = sorted(key); if (!c) return "-"; k = int(p * c); if (k < p * c) k++; if (k < 1) k = 1; return v[k] }
    function med(key,   c) { c = sorted(key); if (!c) return "-"; return (c % 2) ? v[(c + 1) / 2] : (v[c / 2] + v[c / 2 + 1]) / 2 }
    function mx(key,   c) { c = sorted(key); return c ? v[c] : "-" }
    function f(x) { return (x == "-") ? x : (x >= 100) ? sprintf("%.0f", x) : sprintf("%.3g", x) }
    { key = $1 SUBSEP $2 SUBSEP $4; if ($5 == "NA") { na[key]++; next }
      val[key, ++cnt[key]] = $5 + 0; if (!($1 in seen)) { seen[$1]; order[++rows] = $1 } }
    END {
      print "| N | remote grants | latency, ready to grant, ms (p50 / p99 / max) | of which negotiating, ms (p50 / p99) | from submission to grant, ms (p50 / p99) | rounds per grant (mean) | grants/s across the mesh (median of rounds) | kill -9: shards re-granted, ms from the kill (median / max) | kill -9: lease lost at the owner, ms (median) | load average (median) |"
      print "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
      for (r = 1; r <= rows; r++) {
        N = order[r]; L = N SUBSEP "round" SUBSEP; K = N SUBSEP "kill" SUBSEP
        s = 0; c = sorted(L "rounds"); for (i = 1; i <= c; i++) s += v[i]
        nl = sorted(N SUBSEP "round" SUBSEP "load1"); nk = sorted(N SUBSEP "kill" SUBSEP "load1")
        printf "| %s | %d | %s / %s / %s | %s / %s | %s / %s | %.2f | %s | %s / %s (%d shards%s) | %s | %s |\n", N, cnt[L "latency_ms"],
          f(q(L "latency_ms", 0.5)), f(q(L "latency_ms", 0.99)), f(mx(L "latency_ms")),
          f(q(L "negotiating_ms", 0.5)), f(q(L "negotiating_ms", 0.99)),
          f(q(L "from_submit_ms", 0.5)), f(q(L "from_submit_ms", 0.99)), c ? s / c : 0,
          f(med(L "grants_per_s")), f(med(K "reassign_ms")), f(mx(K "reassign_ms")), cnt[K "reassign_ms"],
          na[K "reassign_ms"] ? ", " na[K "reassign_ms"] " never" : "", f(med(K "lost_ms")), med(L "load1")
      }
      split("hop_handed_ms hop_probed_ms hop_answered_ms hop_decided_ms hop_leased_ms wait_offer_ms wait_award_ms wait_leased_ms taken_up_ms", H, " ")
      print ""
      print "Where the time went (ms, p50 / p99; the last round of each grant, on the owner'"'"'s clock): handed = engine Tick to the negotiator; probed = to its last round'"'"'s probes; answered = to the first answer; decided = to the award (by the offer_wait timer: share; or the offer was a lease at once: share, and leased is 0);  leased = award to Leased; waits = the winner'"'"'s engine-thread wait before answering the probe and the award, and the Leased'"'"'s at the owner; taken up = from the grant to the owner'"'"'s engine thread taking it up (the mesh thread took the Leased as it came: Placer::OnReceipt)."
      print ""
      print "| N | handed | probed | answered | decided | decided by timer | leased at once | leased | wait: offer | wait: award | wait: leased | taken up |"
      print "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
      for (r = 1; r <= rows; r++) {
        N = order[r]; L = N SUBSEP "round" SUBSEP
        if (!cnt[L "hop_leased_ms"]) continue
        line = "| " N
        for (i = 1; i <= 4; i++) line = line " | " f(q(L H[i], 0.5)) " / " f(q(L H[i], 0.99))
        s = 0; c = sorted(L "decided_by_timer"); for (i = 1; i <= c; i++) s += v[i]
        line = line sprintf(" | %.0f %%", c ? 100 * s / c : 0)
        s = 0; c = sorted(L "leased_at_once"); for (i = 1; i <= c; i++) s += v[i]
        line = line sprintf(" | %.0f %%", c ? 100 * s / c : 0)
        for (i = 5; i <= 9; i++) line = line " | " f(q(L H[i], 0.5)) " / " f(q(L H[i], 0.99))
        print line " |"
      }
    }' "$results"
}

bench_start=$(date +%s)
for n in $sizes; do
  RUN_DIR=$out/n$n
  mkdir -p "$RUN_DIR"
  t_start=$(date +%s)
  log "N=$n: up"
  netns_up "$n" || exit 1
  for ((k = 1; k <= n; k++)); do start_host "$k"; sleep 0.1; done
  if wait_ready $(owners); then
    if [[ -n $owners_full ]]; then
      slots=$(awk -v c="$owner_cpu" 'BEGIN { print int(c / 0.25) }')
      for k in $(owners); do
        workflow_yaml "pb-fill-h$k" "$slots" 3600 >"$RUN_DIR/fill-h$k.yaml"
        "$ctl" --socket "$RUN_DIR/h$k.sock" submit "$RUN_DIR/fill-h$k.yaml" >/dev/null ||
          log "filler on h$k not submitted"
      done
    fi
    sleep 3
    for ((r = 1; r <= rounds; r++)); do round "$r"; done
    for ((r = 1; r <= kills; r++)); do kill_round "$r"; done
  else
    log "N=$n: the mesh did not converge in $CONVERGE_TIMEOUT s"
  fi
  netns_down ""
  # The backends' parent cgroups and the instance cgroups left under them (their tasks died
  # with the bed), deepest first.
  for ((k = 1; k <= n; k++)); do
    find /sys/fs/cgroup -maxdepth 2 -type d -name "$(cgroup_parent "$k")" |
      while read -r d; do find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null; done
  done
  record wall 1 seconds $(($(date +%s) - t_start))
  log "N=$n: done in $(($(date +%s) - t_start)) s"
done
summarize | tee "$out/summary.md"
log "all done in $(($(date +%s) - bench_start)) s; results in $out"
