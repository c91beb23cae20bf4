#!/usr/bin/env bash
# The floor under a placement's round trip on this machine (docs/MESH.md, "The hops"):
# mesh-wake-rtt between two hosts of the namespace bed (bench/mesh/netns.sh), and within one
# host on loopback, over TCP, ZeroMQ and ZeroMQ with CURVE, back to back and after each
# sender slept 5 ms. Prints one line per case. Needs root (namespaces).
#
# Usage: bench/mesh/wake_rtt.sh [--count N] [--idle-us U]
set -u
export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/mesh/netns.sh
source "$here/netns.sh"
: "${AUGUR_BUILD:=$(cd "$here/../.." && pwd)/build}"
tool=$AUGUR_BUILD/bench/mesh-wake-rtt
count=400
idle=5000
while (($#)); do
  case $1 in
    --count) count=$2; shift ;;
    --idle-us) idle=$2; shift ;;
    *) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
  esac
  shift
done
[[ -x $tool ]] || { echo "wake_rtt: build $tool first (cmake --build build --target mesh-wake-rtt)" >&2; exit 1; }
netns_check || exit 1
netns_up 2 >/dev/null || exit 1
port=7300
for mode in tcp zmq curve; do
  for gap in 0 "$idle"; do
    for where in loopback veth; do
      port=$((port + 1))
      if [[ $where == loopback ]]; then srv=1 addr=127.0.0.1; else srv=2 addr=$(netns_addr 2); fi
      nsenter --net="/run/netns/$(netns_name "$srv")" -- "$tool" server --mode "$mode" \
        --bind "$addr:$port" &
      pid=$!
      sleep 0.3
      printf '%-8s ' "$where"
      nsenter --net="/run/netns/$(netns_name 1)" -- "$tool" client --mode "$mode" \
        --connect "$addr:$port" --count "$count" --idle-us "$gap"
      kill "$pid" 2>/dev/null
      wait "$pid" 2>/dev/null
    done
  done
done
