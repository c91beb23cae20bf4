#!/usr/bin/env python3
"""Writes the seed corpora of the mesh_placement and mesh_remote_run fuzz targets
(tests/fuzz/corpus/mesh_placement/, corpus/mesh_remote_run/).

Messages of src/mesh/placement.proto and remote_run.proto in protobuf text format, encoded by
protoc from the real .proto files. The placement seeds are also written as frames for the
bidder and negotiator: [from][time step][len lo][len hi][payload], from 0..3 = h1, h2, h3,
h0 (the fuzzed host itself). The negotiator's own shards are "wf/s/0#1" and "wf/s/1#1", so
its first requests are "wf/s/0#1@1" and "wf/s/1#1@1". Rerun after changing a proto:
python3 tests/fuzz/make_mesh_run_seeds.py
"""
import os
import struct
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.join(HERE, "..", "..", "src", "mesh")


def encode(proto, message, text):
    return subprocess.run(
        ["protoc", f"--encode=augur.mesh.wire.{message}", f"-I{PROTO_DIR}",
         os.path.join(PROTO_DIR, proto)],
        input=text.encode(), capture_output=True, check=True).stdout


def placement(body):
    return encode("placement.proto", "PlacementMessage", f"version: 1 {body}")


def run(body):
    return encode("remote_run.proto", "RemoteRunMessage", f"version: 1 {body}")


def frame(sender, step, payload):
    return struct.pack("<BBH", sender, step, len(payload)) + payload


def write(target, name, data):
    out = os.path.join(HERE, "corpus", target)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)


def amount(cpu_milli, memory):
    return f"{{ cpu_milli: {cpu_milli} memory: {memory} }}"


def main():
    gib = 1 << 30
    bid = placement(f'bid_request {{ request_id: "r1" shard: "a/s/0#1" want {amount(1000, gib)} '
                    f'min {amount(500, gib // 2)} score: 1.5 predicted_ms: 2000 hold_ms: 200 '
                    f'may_shrink: true backend: "process" }}')
    big = placement(f'bid_request {{ request_id: "r2" shard: "a/s/1#1" want {amount(8000, 4 * gib)} '
                    f'min {amount(3500, gib)} hold_ms: 200 queue_ms: 1000 backend: "process" }}')
    award = placement('award { request_id: "r1" ttl_ms: 1000 }')
    renew = placement('renew { request_id: "r1" ttl_ms: 1000 }')
    release = placement('release { request_id: "r1" }')
    decline = placement('decline { request_id: "r2" }')
    offer = placement(f'offer {{ request_id: "wf/s/0#1@1" grant {amount(1000, gib)} start_ms: 0 '
                      f'finish_ms: 10000 hold_ms: 200 }}')
    offer2 = placement(f'offer {{ request_id: "wf/s/1#1@1" grant {amount(500, gib // 2)} '
                       f'finish_ms: 20000 cost_per_hour: 0.5 cost_class: "spot" preemptible: true '
                       f'hold_ms: 200 }}')
    leased = placement(f'leased {{ request_id: "wf/s/0#1@1" grant {amount(1000, gib)} ttl_ms: 1000 }}')
    changed = placement(f'lease_changed {{ request_id: "wf/s/0#1@1" grant {amount(500, gib // 2)} '
                        f'reason: "shrunk" }}')
    reclaimed = placement('reclaimed { request_id: "wf/s/0#1@1" reason: "expired" }')
    for name, data in [("bid_request.pb", bid), ("award.pb", award), ("offer.pb", offer),
                       ("leased.pb", leased), ("lease_changed.pb", changed),
                       ("reclaimed.pb", reclaimed)]:
        write("mesh_placement", name, data)
    write("mesh_placement", "bad_min_above_want.pb",
          placement(f'bid_request {{ request_id: "r" want {amount(100, 1)} min {amount(200, 1)} }}'))
    write("mesh_placement", "bad_version_2.pb",
          encode("placement.proto", "PlacementMessage", 'version: 2 release { request_id: "r" }'))
    write("mesh_placement", "bad_garbage", b"\xff\xfe\x00\x01garbage")
    # Candidate side: a bid, its award and renewal, a larger bid that waits, release.
    write("mesh_placement", "bidder_frames", b"".join([
        frame(0, 1, bid), frame(0, 1, bid), frame(0, 1, award), frame(1, 1, big),
        frame(0, 20, renew), frame(1, 1, decline), frame(0, 1, release), frame(2, 255, b"")]))
    # Owner side: offers for its two shards, one leased and then shrunk and reclaimed.
    write("mesh_placement", "negotiator_frames", b"".join([
        frame(0, 1, offer), frame(1, 1, offer2), frame(0, 2, leased), frame(0, 1, changed),
        frame(0, 30, reclaimed), frame(1, 255, b"")]))

    runshard = run(
        'run { lease_id: "owner/wf/s/0#1@1" attempt_id: "wf/s/0#1" argv: "sh" argv: "-c" '
        'argv: "cat /w/wf/in.txt /w/wf/big.txt > /w/wf/s/0.out" env: "A=b" workdir: "/w/wf" '
        'backend: "process" priority: 5 range_begin: 0 range_end: 10 '
        'inputs { path: "in.txt" data: "small" } '
        'inputs { path: "big.txt" transfer_id: "00ff00ff00ff00ff.in.1" size: 5242880 } '
        'output: "/w/wf/s/0.out" }')
    write("mesh_remote_run", "run.pb", runshard)
    write("mesh_remote_run", "status.pb",
          run('status { lease_id: "owner/wf/s/0#1@1" attempt_id: "wf/s/0#1" error: "" }'))
    write("mesh_remote_run", "result_inline.pb", run(
        'result { lease_id: "owner/wf/s/0#1@1" attempt_id: "wf/s/0#1" state: "succeeded" '
        'exit_code: 0 cpu_seconds: 0.5 peak_memory_bytes: 1000 output: "3\\n" }'))
    write("mesh_remote_run", "result_transfer.pb", run(
        'result { lease_id: "owner/wf/s/0#1@1" attempt_id: "wf/s/0#1" state: "succeeded" '
        'output_transfer: "00ff00ff00ff00ff.out" output_size: 7340032 }'))
    write("mesh_remote_run", "bad_input_escapes.pb", run(
        'run { lease_id: "l" attempt_id: "a" argv: "x" workdir: "/w" backend: "process" '
        'inputs { path: "../etc/passwd" data: "x" } output: "/w/o" }'))
    write("mesh_remote_run", "bad_state.pb",
          run('result { lease_id: "l" attempt_id: "a" state: "winning" }'))
    write("mesh_remote_run", "bad_garbage", b"\x12\x80\x80\x80\x80\x10")


if __name__ == "__main__":
    main()
