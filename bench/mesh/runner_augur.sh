# shellcheck shell=bash
# The augur runner of membership_bench.sh (sourced by it; see its header for the contract).
# Runs augurd with only its mesh doing work (telemetry sampling every 10 s from procfs, no
# eBPF, no forecaster, no workflow engine, no /metrics), one per namespace:
#   augurd --config RUN_DIR/hK.yaml    (mesh.name hK, listen 198.18.0.K:7946, seeds h1@...)
# VARIANT is unused (augur has one profile: its defaults, docs/MESH.md); name it "default".
#
# Keys: each host gets its own pair from `augurctl keygen` as it starts, and its public line
# is appended to one authorized_keys file that every host reads (a peer's key added while the
# others run is taken up without a restart, as in production).
#
# Events come from augurd's log (spdlog, millisecond stamps in local time), stamped with the
# wall clock as each line leaves the agent (stamp_lines), as for Serf:
#   "mesh: member hX suspect ..."  -> suspect hX    "mesh: member hX dead ..."   -> failed hX
#   "mesh: member hX joined ..."   -> join hX       "mesh: member hX alive ..."  -> join hX
#   "mesh: member hX left ..."     -> leave hX
# Unlike Serf's, augur's suspect line is logged by every host that comes to suspect hX (by
# its own probe or by gossip); the bench takes the first at any host, which is always the
# prober's own.

RUNNER_AUGUR_PORT=7946
: "${AUGUR_BUILD:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build}"

runner_augur_start() {
  local k=$1 j seeds="" keys=$RUN_DIR/keys
  shift 2
  mkdir -p "$keys"
  [[ -f $keys/h$k/host.key ]] ||
    "$AUGUR_BUILD/agent/augurctl" keygen --out "$keys/h$k" --name "h$k" >/dev/null || return 1
  grep -qs " h$k\$" "$keys/authorized_keys" || cat "$keys/h$k/host.pub" >>"$keys/authorized_keys"
  for j in "$@"; do seeds+="h$j@$(netns_addr "$j"):$RUNNER_AUGUR_PORT, "; done
  cat >"$RUN_DIR/h$k.yaml" <<YAML
telemetry: {interval: 10s, ebpf: "off", shm_name: augur-mb-$MESH_ID-h$k, capacity: 16, max_series: 64}
metrics: {enabled: false}
forecast: {enabled: false}
plugins: {enabled: []}
workflows: {enabled: false}
control: {socket: $RUN_DIR/h$k.sock}
mesh:
  enabled: true
  name: h$k
  listen: $(netns_addr "$k"):$RUNNER_AUGUR_PORT
  seeds: [${seeds%, }]
  key_file: $keys/h$k/host.key
  authorized_keys: $keys/authorized_keys
YAML
  netns_exec "$k" "$AUGUR_BUILD/agent/augurd" --config "$RUN_DIR/h$k.yaml" \
    > >(stamp_lines >>"$RUN_DIR/h$k.log") 2>&1 &
}

# Only the agent's current life counts (the log is appended across restarts): what a killed
# agent knew is not what its restart knows, and an old "join" line must not make a restarted
# host look converged on a member it has not learned again.
runner_augur_events() {
  awk '{ ms = sprintf("%.0f", $1 * 1000) }
       $5 == "augurd" && $7 == "starting," { n = 0 }
       $5 == "mesh:" && $6 == "member" {
         if ($8 == "suspect") ev[++n] = ms " suspect " $7
         else if ($8 == "dead") ev[++n] = ms " failed " $7
         else if ($8 == "joined" || $8 == "alive") ev[++n] = ms " join " $7
         else if ($8 == "left") ev[++n] = ms " leave " $7
       }
       END { for (i = 1; i <= n; i++) print ev[i] }' "$RUN_DIR/h$1.log" 2>/dev/null
}

# Mesh messages per second host K sent and received between epoch-ms $2 and $3, from the
# agent's own counters (MeshNode logs "mesh: counters sent_msgs=N ... received_msgs=N ..."
# every 10 s): the difference between the first line at or after $2 and the last at or
# before $3, over the time between them. Prints "sent received", or nothing when the window
# holds fewer than two lines.
runner_augur_messages() {
  awk -v t0="$2" -v t1="$3" '$5 == "mesh:" && $6 == "counters" {
      ms = $1 * 1000; if (ms < t0 || ms > t1) next
      for (i = 7; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
      if (!n++) { a = ms; s0 = v["sent_msgs"]; r0 = v["received_msgs"] }
      b = ms; s1 = v["sent_msgs"]; r1 = v["received_msgs"]
    }
    END { if (n >= 2 && b > a) printf "%.2f %.2f\n", (s1 - s0) * 1000 / (b - a), (r1 - r0) * 1000 / (b - a) }' \
    "$RUN_DIR/h$1.log" 2>/dev/null
}
