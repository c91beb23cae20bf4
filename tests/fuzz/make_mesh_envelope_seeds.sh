#!/usr/bin/env bash
# Writes the seed corpus of the mesh_envelope fuzz target (tests/fuzz/corpus/mesh_envelope/):
# a few Envelope messages (src/mesh/envelope.proto) in protobuf text format, encoded by protoc
# from the real .proto, good ones and one of each kind the decoder refuses. Rerun after
# changing the proto: bash tests/fuzz/make_mesh_envelope_seeds.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
proto_dir=$here/../../src/mesh
out=$here/corpus/mesh_envelope
mkdir -p "$out"
seed() {  # NAME TEXT
  printf '%s\n' "$2" | protoc --encode=augur.mesh.wire.Envelope -I"$proto_dir" \
    "$proto_dir/envelope.proto" >"$out/$1.pb"
}
good='version: 1 sender: "node-a.rack-2" boot_id: 1796536295989494525 seq: 7'
seed good_membership "$good channel: 1 payload: \"ping 42\" sent_unix_ns: 1796536296000000000"
seed good_placement "$good channel: 2 payload: \"bid\\000\\001\\002 cpu=2 mem=4G\""
seed good_data_1k "$good channel: 4 payload: \"$(head -c 1024 /dev/zero | tr '\0' 'x')\""
seed good_no_payload "$good channel: 3"
seed bad_version_2 'version: 2 sender: "node-a" boot_id: 1 seq: 1 channel: 1'
seed bad_channel_9 'version: 1 sender: "node-a" boot_id: 1 seq: 1 channel: 9'
seed bad_seq_0 'version: 1 sender: "node-a" boot_id: 1 channel: 1'
seed bad_sender_space 'version: 1 sender: "node a" boot_id: 1 seq: 1 channel: 1'
seed bad_sender_utf8 'version: 1 sender: "h\303\050" boot_id: 1 seq: 1 channel: 1'
# Not an envelope at all, and the replay window's favourite: runs of (boot, seq) triples.
printf '\377\377\377\377\001garbage' >"$out/bad_garbage"
printf '\001\001\000\001\002\000\001\001\000\002\377\377\001\005\000\000\001\000' >"$out/replay_ops"
