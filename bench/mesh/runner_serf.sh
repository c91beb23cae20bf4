# shellcheck shell=bash
# The Serf runner of membership_bench.sh (sourced by it; see its header for the contract).
# Runs HashiCorp Serf (Debian's `serf`, memberlist with Lifeguard inside) as the anchor:
#   serf agent -node hK -bind 198.18.0.K:7946 -profile=VARIANT -log-level=debug
#              -event-handler=RUN_DIR/serf-handler.sh -join=198.18.0.J:7946 ...
# VARIANT is the Serf profile: lan (probe every 1 s, 500 ms ack timeout, suspicion multiplier
# 4) or local (1 s, 200 ms, 3).
#
# Where the events come from. Serf's log has one-second timestamps, so every line is stamped
# with the wall clock (bash's $EPOCHREALTIME, microseconds) as it leaves the agent; Go writes
# each log line in one unbuffered write, so the stamp is the moment of logging. Lines used:
#   "[INFO] memberlist: Suspect hX has failed, no acks received"  -> suspect hX (logged by the
#       host whose probe failed; a host that only hears the suspicion by gossip logs nothing)
#   "[INFO] serf: EventMemberFailed: hX 198.18.0.X"  -> failed hX (at every host: whether its
#       own suspicion timer ran out, "memberlist: Marking hX as failed, suspect timeout reached
#       (N peer confirmations)" just before, or it heard the death by gossip)
#   "[INFO] serf: EventMemberJoin: hX ..."  -> join hX;  "EventMemberLeave: hX ..." -> leave hX
# The -event-handler script writes "<epoch-ms> <event> <member>" to RUN_DIR/hK.handler as the
# brief for the bench asks, but those times are not used: the agent coalesces member events
# (quiet for 1 s, at most 3 s) before it runs a handler, so they lag the log by 1 to 3 s.

RUNNER_SERF_PORT=7946

runner_serf_start() {
  local k=$1 variant=$2 j joins=()
  shift 2
  for j in "$@"; do joins+=("-join=$(netns_addr "$j"):$RUNNER_SERF_PORT"); done
  if [[ ! -x $RUN_DIR/serf-handler.sh ]]; then
    cat >"$RUN_DIR/serf-handler.sh" <<'EOF'
#!/bin/bash
# Serf event handler: one line per member of the event, "<epoch-ms> <event> <member>".
while read -r name _; do
  t=${EPOCHREALTIME/[.,]/}
  echo "${t:0:-3} $SERF_EVENT $name" >>"$SERF_EVENT_LOG"
done
EOF
    chmod +x "$RUN_DIR/serf-handler.sh"
  fi
  SERF_EVENT_LOG="$RUN_DIR/h$k.handler" netns_exec "$k" serf agent -node "h$k" \
    -bind "$(netns_addr "$k"):$RUNNER_SERF_PORT" -profile="$variant" -log-level=debug \
    -event-handler="$RUN_DIR/serf-handler.sh" "${joins[@]}" \
    > >(stamp_lines >>"$RUN_DIR/h$k.log") 2>&1 &
}

# Every occurrence in a line counts: the agent's log writer now and then runs two log lines
# into one (2 of 19,000 lines in a full run).
runner_serf_events() {
  awk '{ ms = sprintf("%.0f", $1 * 1000); line = $0
         while (match(line, /memberlist: Suspect [^ ]+ has failed|serf: EventMember(Failed|Join|Leave): [^ ]+/)) {
           split(substr(line, RSTART, RLENGTH), f, " ")
           line = substr(line, RSTART + RLENGTH)
           if (f[2] == "Suspect") { print ms, "suspect", f[3]; continue }
           ev = f[2]; sub(/^EventMember/, "", ev); sub(/:$/, "", ev)
           print ms, tolower(ev), f[3]
         } }' "$RUN_DIR/h$1.log" 2>/dev/null
}
