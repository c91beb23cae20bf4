#!/usr/bin/env bash
# A multi-host test bed on one machine: N "hosts", each a network namespace with one veth into
# a bridge that lives in a namespace of its own (the "switch"). Packet loss and partitions are
# nftables rules inside the hosts' namespaces (this kernel has no tc netem).
#
# Safety, by construction:
#   - Addresses are 198.18.0.K/16, in the RFC 2544 benchmarking range (198.18.0.0/15), and exist
#     only inside the namespaces made here. Nothing is ever sent to any other address.
#   - The bridge and the switch ends of the veths are created inside the switch namespace, the
#     host ends inside the host namespaces: no interface in the root namespace joins the test
#     network, at no moment (`ip -n SW link add ... peer ... netns HOST`).
#   - Names are augur-<ID>-sw and augur-<ID>-h<K>. ID is the owner's PID, optionally with a
#     suffix (".<n>") so one process can hold several beds. A bed whose owner PID is gone is a
#     leftover of a crashed run: `down` removes its own bed and every such leftover.
#   - A script that sources this file and calls netns_up gets `trap netns_down EXIT` (and INT,
#     TERM made to exit through it).
#
# Library (source this file; MESH_ID defaults to $$, the sourcing shell):
#   netns_up N                 hosts 1..N on the switch; IPv6 off (no ND/MLD chatter in counters)
#   netns_down [--all]         kill what runs inside, delete the namespaces of this bed and of
#                              dead owners (--all: every augur-* bed, whoever owns it)
#   netns_exec K CMD...        run CMD inside host K (ip netns exec: own /sys, same filesystem)
#   netns_kill K [SIGNAL]      signal (default KILL) every process inside host K
#   netns_addr K               prints 198.18.0.K
#   netns_name K               prints the namespace name of host K
#   netns_loss K PCT [in|out|both]   drop PCT % of the frames host K's eth0 receives and/or
#                              sends (default both: a packet between two lossy hosts then
#                              crosses two filters); PCT 0 removes the rule
#   netns_partition "A..." "B..."  drop all traffic between the two groups (rules in every host
#                              of both groups); netns_heal removes every partition rule
#   netns_counters K           prints "tx_packets tx_bytes rx_packets rx_bytes": the IP packets
#                              (and their bytes, IP header on, Ethernet off) host K's stack sent
#                              out of and received from eth0, counted by nftables in its
#                              namespace the same whatever runs on the hosts. ARP is not
#                              counted. A packet the loss or partition filter drops on the way
#                              out counts as sent (the agent sent it); one dropped on the way in
#                              does not count as received.
#   netns_saturate K SECONDS   starve host K's processes of CPU for SECONDS (blocks; see below)
#   netns_check                prints why the bed cannot run here and returns 1, or returns 0
#
# CLI: bench/mesh/netns.sh up N | down [--all] | exec K CMD... | kill K [SIG] |
#      loss K PCT [dir] | partition "A" "B" | heal | counters K | saturate K SECONDS | check |
#      list (every augur-* namespace, of any bed) | addr K | name K
#   From the CLI, MESH_ID (taken from the environment if set) defaults to the calling shell's
#   PID ($PPID), so successive commands typed in one shell address one bed, and the bed counts
#   as a leftover once that shell exits.
#   The CLI `up` does not tear down on exit (that is what `down` is for).

MESH_PREFIX=augur
MESH_NET=198.18.0
_NETNS_ENV_ID=${MESH_ID:-}
: "${MESH_ID:=$$}"
# Saturation: hogs per saturated host and their nice level (see netns_saturate).
: "${SATURATE_HOGS:=2}"
: "${SATURATE_NICE:=-10}"

netns_name() { echo "$MESH_PREFIX-$MESH_ID-h$1"; }
netns_switch() { echo "$MESH_PREFIX-$MESH_ID-sw"; }
netns_addr() { echo "$MESH_NET.$1"; }
netns_exec() {
  local k=$1
  shift
  ip netns exec "$(netns_name "$k")" "$@"
}

# Writes a sysctl inside a namespace (the /proc/sys/net view follows the writer's namespace).
_netns_sysctl() { ip netns exec "$1" sh -c "echo $3 > /proc/sys/net/$2"; }

_netns_new() {
  ip netns add "$1" || return 1
  # Before any interface exists, so eth0 inherits it: no IPv6 link-local, ND or MLD traffic.
  _netns_sysctl "$1" ipv6/conf/default/disable_ipv6 1
  _netns_sysctl "$1" ipv6/conf/all/disable_ipv6 1
  ip -n "$1" link set lo up
}

netns_up() {
  local n=$1 sw
  if ! [[ $n =~ ^[0-9]+$ ]] || ((n < 1 || n > 250)); then
    echo "netns_up: N must be 1..250, got '$n'" >&2
    return 1
  fi
  # Beds are named after their owner's pid (PID or PID.N) so that netns_down can remove the
  # beds of dead owners; any other id would make a bed nothing ever removes.
  if ! [[ $MESH_ID =~ ^[0-9]+(\.[0-9]+)?$ ]]; then
    echo "netns_up: MESH_ID must be a pid or PID.N (the bed's owner), got '$MESH_ID'" >&2
    return 1
  fi
  sw=$(netns_switch)
  if ip netns list | awk '{print $1}' | grep -qxF "$sw"; then
    echo "netns_up: a bed with id $MESH_ID is already up ($sw)" >&2
    return 1
  fi
  # A sourcing script gets its cleanup; the CLI's `up` keeps the bed.
  # INT and TERM exit through the EXIT trap.
  if [[ -z ${_NETNS_CLI:-} ]]; then
    trap netns_down EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
  fi
  _netns_build "$n" || { netns_down ""; return 1; }
}

_netns_build() {
  local n=$1 sw k host
  # The kernel's ARP cache is one table for all namespaces (net.ipv4.neigh.default.gc_thresh3,
  # 1024 by default): N hosts that all talk to each other hold N*N entries, so a 32-host bed
  # beside another one overflows it ("neighbor table overflow" in dmesg) and hosts started
  # last never resolve their peers. Raised here when lower (memory for the cache only).
  local need=$(( 4 * (n * n + 256) )) t cur
  for t in 2 3; do
    cur=$(sysctl -n "net.ipv4.neigh.default.gc_thresh$t" 2>/dev/null || echo 0)
    ((cur >= need)) || sysctl -q -w "net.ipv4.neigh.default.gc_thresh$t=$need" >/dev/null 2>&1
  done
  sw=$(netns_switch)
  _netns_new "$sw" || return 1
  ip -n "$sw" link add br0 type bridge || return 1
  ip -n "$sw" link set br0 up || return 1
  for ((k = 1; k <= n; k++)); do
    host=$(netns_name "$k")
    _netns_new "$host" || return 1
    ip -n "$sw" link add "p$k" type veth peer name eth0 netns "$host" || return 1
    ip -n "$sw" link set "p$k" master br0 up || return 1
    ip -n "$host" addr add "$(netns_addr "$k")/16" dev eth0 || return 1
    ip -n "$host" link set eth0 up || return 1
    _netns_counting "$host" || return 1
  done
}

# Counts the IP packets the host's stack sends out of and receives from eth0 (netns_counters).
# Priority -30: before any filter of the stack's own hooks.
_netns_counting() {
  ip netns exec "$1" nft -f - <<'EOF'
table inet augur_count {
  counter sent { }
  counter received { }
  chain out { type filter hook output priority -30; oifname "eth0" counter name "sent"; }
  chain in { type filter hook input priority -30; iifname "eth0" counter name "received"; }
}
EOF
}

# Prints the names of this bed's namespaces, and those of beds whose owner is dead (or every
# bed with --all).
_netns_to_remove() {
  local all=$1 name id pid
  ip netns list | awk '{print $1}' | while read -r name; do
    [[ $name =~ ^$MESH_PREFIX-(([0-9]+)(\.[0-9]+)?)-(sw|h[0-9]+)$ ]] || continue
    id=${BASH_REMATCH[1]}
    pid=${BASH_REMATCH[2]}
    if [[ $all == 1 || $id == "$MESH_ID" ]] || ! kill -0 "$pid" 2>/dev/null; then
      echo "$name"
    fi
  done
}

# Sends a signal (default KILL) to every process in namespace $1.
_netns_signal() {
  local pids
  mapfile -t pids < <(ip netns pids "$1" 2>/dev/null)
  ((${#pids[@]})) && kill "-${2:-KILL}" "${pids[@]}" 2>/dev/null
  return 0
}
netns_kill() { _netns_signal "$(netns_name "$1")" "${2:-KILL}"; }

netns_down() {
  local all=0 names name
  [[ ${1:-} == --all ]] && all=1
  names=$(_netns_to_remove "$all")
  [[ $names ]] || return 0
  for name in $names; do _netns_signal "$name"; done
  for name in $names; do
    # A namespace stays alive while a process is inside: wait for the killed ones to go.
    for _ in $(seq 1 50); do
      [[ $(ip netns pids "$name" 2>/dev/null) ]] || break
      sleep 0.1
    done
    ip netns delete "$name" 2>/dev/null
  done
  # The agents' telemetry segments (the benches name them augur-<bench>-<id>-hK): an agent
  # that was killed leaves its segment in /dev/shm.
  ((all)) || rm -f /dev/shm/augur-*-"$MESH_ID"-h*
  return 0
}

netns_list() { ip netns list | awk '{print $1}' | grep -E "^$MESH_PREFIX-[0-9.]+-(sw|h[0-9]+)$"; }

# Loss and partitions are filters on host K's eth0 in the netdev family (ingress and egress
# hooks), not in the IP stack's input/output hooks: a packet dropped on output there fails the
# sender's sendto() with EPERM, which an agent sees as a local error (memberlist then skips
# the probe instead of suspecting anyone), whereas a lost packet vanishes silently. On the
# device the sender's send succeeds and the frame is gone, as on a real wire.
netns_loss() {
  local k=$1 pct=$2 dir=${3:-both} rules="" match
  if ! [[ $pct =~ ^[0-9]+$ ]] || ((pct > 100)); then
    echo "netns_loss: PCT must be 0..100, got '$pct'" >&2
    return 1
  fi
  if ! [[ $dir =~ ^(in|out|both)$ ]]; then
    echo "netns_loss: direction must be in, out or both, got '$dir'" >&2
    return 1
  fi
  # One nft batch (one netlink transaction): the old rules go and the new ones come at once,
  # never a moment without either; "add" first so that the delete finds a table to delete.
  local batch=$'add table netdev augur_loss\ndelete table netdev augur_loss\n'
  if ((pct > 0)); then
    # numgen random mod 100 is uniform on 0..99: "< PCT" drops PCT % of frames (nft refuses
    # "< 100": 100 % is a plain drop).
    match="numgen random mod 100 < $pct"
    ((pct == 100)) && match=""
    [[ $dir != out ]] && rules+=$(_netns_chain in ingress "$match")$'\n'
    [[ $dir != in ]] && rules+=$(_netns_chain out egress "$match")$'\n'
    batch+=$(printf 'table netdev augur_loss {\n%s}' "$rules")$'\n'
  fi
  printf '%s' "$batch" | netns_exec "$k" nft -f -
}

# A base chain named $1 on eth0's $2 hook (ingress or egress) that counts and drops what
# matches $3. Partitions (priority -20) come before loss (-10).
_netns_chain() {
  local prio=-10
  [[ $1 == cut* ]] && prio=-20
  echo "chain $1 { type filter hook $2 device \"eth0\" priority $prio; $3 counter drop; }"
}

# Each host of one group drops every frame from or to an address of the other group.
netns_partition() {
  local a=$1 b=$2 k
  _netns_cut() {
    local others="" j
    for j in $2; do others+="${others:+, }$(netns_addr "$j")"; done
    printf 'table netdev augur_part {\n%s\n%s\n}\n' \
      "$(_netns_chain cut_in ingress "ip saddr { $others }")" \
      "$(_netns_chain cut_out egress "ip daddr { $others }")" | netns_exec "$1" nft -f -
  }
  for k in $a; do _netns_cut "$k" "$b" || return 1; done
  for k in $b; do _netns_cut "$k" "$a" || return 1; done
}

netns_heal() {
  local name
  for name in $(ip netns list | awk '{print $1}' | grep -E "^$MESH_PREFIX-$MESH_ID-h[0-9]+$"); do
    ip netns exec "$name" nft delete table netdev augur_part 2>/dev/null
  done
  return 0
}

netns_counters() {
  netns_exec "$1" nft list counters table inet augur_count |
    awk '$1 == "counter" { name = $2 } $1 == "packets" { v[name] = $2 " " $4 }
         END { print v["sent"], v["received"] }'
}

# Starves every process of host K of CPU for SECONDS, then gives its CPUs back.
#
# Network namespaces do not isolate CPU: a busy loop "inside" host K would only slow the whole
# machine, all hosts alike. To starve host K alone, its processes (every thread: taskset -a)
# are pinned to the last CPU, and SATURATE_HOGS busy loops are pinned to that same CPU at
# nice SATURATE_NICE. The default, nice -10 against the agents' 0, is "higher priority": the
# scheduler's weights are 9548 to 1024, so with 2 hogs the agent gets about 5 % of its CPU
# whenever it wants to run, and every reply it sends is late by tens to hundreds of ms. At
# equal priority the scheduler would serve a mostly-sleeping agent almost at once on wakeup
# and the agent would hardly notice the load. Hogs are not real-time (SCHED_FIFO): that would
# freeze the agent outright for 950 ms of every second (kernel.sched_rt_runtime_us), a stall
# rather than a saturated CPU. Nice only orders tasks within one autogroup: the hogs and the
# agents must be started from the same session (they are: both come from the harness).
# The other hosts' processes are not pinned; the scheduler moves them to the other CPUs.
# The hogs run inside host K's namespace (so `down` kills them) under `timeout` (so a crashed
# harness leaves none running).
netns_saturate() {
  local k=$1 secs=$2 cpu all pids p i hogs=()
  cpu=$(($(nproc) - 1))
  all="0-$cpu"
  pids=$(ip netns pids "$(netns_name "$k")")
  for p in $pids; do taskset -a -p -c "$cpu" "$p" >/dev/null 2>&1; done
  for ((i = 0; i < SATURATE_HOGS; i++)); do
    netns_exec "$k" nice -n "$SATURATE_NICE" taskset -c "$cpu" \
      timeout "$secs" sh -c 'while :; do :; done' &
    hogs+=($!)
  done
  wait "${hogs[@]}" 2>/dev/null
  for p in $pids; do taskset -a -p -c "$all" "$p" >/dev/null 2>&1; done
  return 0
}

netns_check() {
  local probe="$MESH_PREFIX-$$.9999" why=""
  if ((EUID != 0)); then
    why="needs root (network namespaces, veth, nftables)"
  elif ! command -v ip >/dev/null; then
    why="no 'ip' command (iproute2)"
  elif ! command -v nft >/dev/null; then
    why="no 'nft' command (nftables)"
  elif ! ip netns add "$probe-sw" 2>/dev/null; then
    why="cannot create a network namespace (ip netns add failed)"
  elif ! ip netns add "$probe-h1" 2>/dev/null ||
    ! ip -n "$probe-sw" link add p1 type veth peer name eth0 netns "$probe-h1" 2>/dev/null; then
    why="cannot create a veth pair between namespaces"
  elif ! ip -n "$probe-sw" link add br0 type bridge 2>/dev/null; then
    why="cannot create a bridge"
  elif ! printf 'table netdev augur_probe {\n%s\n%s\n}\n' \
    "$(_netns_chain in ingress "numgen random mod 100 < 1")" \
    "$(_netns_chain out egress "ip daddr 198.18.0.2")" | ip netns exec "$probe-h1" nft -f - 2>/dev/null; then
    why="nftables cannot load netdev ingress/egress filters with numgen inside a namespace"
  fi
  ip netns delete "$probe-h1" 2>/dev/null
  ip netns delete "$probe-sw" 2>/dev/null
  [[ -z $why ]] && return 0
  echo "$why"
  return 1
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  set -u
  _NETNS_CLI=1
  MESH_ID=${_NETNS_ENV_ID:-$PPID}
  cmd=${1:-}
  shift || true
  case $cmd in
    up | down | exec | kill | loss | partition | heal | counters | saturate | check | list | addr | name)
      "netns_$cmd" "$@" ;;
    *)
      sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'
      exit 2
      ;;
  esac
fi
