#!/usr/bin/env python3
"""Writes the seed corpus of the mesh_membership fuzz target (tests/fuzz/corpus/mesh_membership/).

Messages of src/mesh/membership.proto in protobuf text format, encoded by protoc from the real
.proto file, each alone (the target feeds the whole input to the host as one message from h1)
and as frames for a longer exchange: [op][time step][len lo][len hi][payload], op 0..3 = from
h1, h2, h3, h0 (the fuzzed host's own name), 0x80 = set this host's meta to the payload,
0xC0 = leave. The fuzzed host is h0 and joins through h1 and h2. Rerun after changing the
proto: python3 tests/fuzz/make_mesh_membership_seeds.py
"""
import os
import struct
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.join(HERE, "..", "..", "src", "mesh")
OUT = os.path.join(HERE, "corpus", "mesh_membership")


def msg(text):
    return subprocess.run(
        ["protoc", "--encode=augur.mesh.wire.MembershipMessage", f"-I{PROTO_DIR}",
         os.path.join(PROTO_DIR, "membership.proto")],
        input=text.encode(), capture_output=True, check=True).stdout


def alive(name, inc, meta_version=0):
    return (f'{{ status: MEMBER_ALIVE name: "{name}" incarnation: {inc} '
            f'endpoint: "tcp://10.0.0.{ord(name[-1]) - 46}:7946" zone: "z1" meta: "m" '
            f'meta_version: {meta_version} }}')


def frame(op, step, payload):
    return struct.pack("<BBH", op, step, len(payload)) + payload


def write(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def main():
    os.makedirs(OUT, exist_ok=True)
    # The seeds answer the join: h1's whole state.
    join_reply = msg(f"sync {{ members {alive('h1', 1)} members {alive('h2', 0)} "
                     f"members {alive('h3', 2, 1)} }}")
    join = msg(f"sync {{ join: true members {alive('h3', 2)} }}")
    ping = msg('ping { seq: 7 target: "h0" endpoint: "tcp://10.0.0.2:7946" }')
    ack = msg("ack { seq: 1 }")  # the host's first probe
    ping_req = msg('ping_req { seq: 9 target: "h3" target_endpoint: "tcp://10.0.0.4:7946" '
                   'endpoint: "tcp://10.0.0.2:7946" }')
    nack = msg("nack { seq: 2 }")
    digest = msg(f"sync {{ reply: true members {alive('h2', 0)} digest_lo: 0 "
                 "digest_hi: 18446744073709551615 digest_name: 1 digest_incarnation: 0 "
                 "digest_status: MEMBER_ALIVE digest_meta_version: 0 }")
    suspect_h3 = msg('updates { status: MEMBER_SUSPECT name: "h3" incarnation: 2 from: "h2" }')
    dead_h3 = msg('updates { status: MEMBER_DEAD name: "h3" incarnation: 2 from: "h1" }')
    suspect_self = msg('updates { status: MEMBER_SUSPECT name: "h0" incarnation: 0 from: "h1" }')
    left_h2 = msg('updates { status: MEMBER_LEFT name: "h2" incarnation: 1 }')
    rejoin_h3 = msg(f"updates {alive('h3', 3)}")
    for name, data in [("join_reply.pb", join_reply), ("join.pb", join), ("ping.pb", ping),
                       ("ping_req.pb", ping_req), ("digest.pb", digest),
                       ("suspect_self.pb", suspect_self), ("dead.pb", dead_h3)]:
        write(name, data)
    write("bad_digest.pb", msg("sync { reply: true digest_lo: 5 digest_hi: 1 digest_name: 1 }"))
    write("bad_update.pb", msg('updates { status: MEMBER_ALIVE name: "" incarnation: 1 }'))
    write("bad_garbage", b"\xff\xff\xff\xff\x01garbage")
    # An accusation no refutation can outbid (it wrapped the host's incarnation around to 0).
    write("regress_incarnation_max", frame(0, 1, msg(
        'updates { status: MEMBER_SUSPECT name: "h0" incarnation: 18446744073709551615 from: "h1" }'))
        + frame(0, 1, ping))
    # Joined, probed and probing, a relay, a suspicion refuted, h3 dead and back, h2 leaves.
    write("life_frames", b"".join([
        frame(0, 1, join_reply), frame(1, 10, ping), frame(0, 30, ack), frame(1, 1, ping_req),
        frame(2, 30, b""), frame(0, 5, nack), frame(1, 5, suspect_self), frame(0, 10, digest),
        frame(2, 1, join), frame(1, 20, suspect_h3), frame(0, 200, b""), frame(0, 1, dead_h3),
        frame(2, 10, rejoin_h3), frame(0x80, 10, b"headroom v2"), frame(1, 10, left_h2),
        frame(3, 1, ping), frame(0, 255, b""), frame(0xC0, 1, b""), frame(0, 10, ping),
        frame(0, 255, b""),
    ]))
    # A host that hears nothing: its probes fail, its suspicions run out, it reaps.
    write("silence_frames", frame(0, 1, join_reply) + b"".join(frame(0, 255, b"") for _ in range(40)))


if __name__ == "__main__":
    main()
