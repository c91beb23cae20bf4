#!/usr/bin/env python3
"""Writes the seed corpus of the mesh_replication fuzz target (tests/fuzz/corpus/mesh_replication/).

Messages of src/mesh/status_query.proto and replication.proto in protobuf text format, encoded
by protoc from the real .proto files (replication messages as make_mesh_transfer_seeds.py makes
them), each alone and as frames for the fuzzed host h0: [channel][from][time step][len lo]
[len hi][payload], channel 0 = replication, 1 = status (from 0..3 = h1, h2, h3, h0),
2 = a membership change (the live peers are the `from` byte's bits 2-4), 3 = h0 asks for the
status of the workflow the payload names. h0 runs "wf-own" (submitted there) and asks its
first question with query id 1. Rerun after changing a proto:
python3 tests/fuzz/make_mesh_replication_seeds.py
"""
import json
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from make_mesh_transfer_seeds import HERE, encode, esc, frame, record, repl

OUT = os.path.join(HERE, "corpus", "mesh_replication")


def status(body):
    return encode("status_query.proto", "StatusMessage", f"version: 1 {body}")


def digest(data):
    h = 14695981039346656037
    for b in data:
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return f"fnv1a64:{h:016x}"


def carried(output):
    """A record's fields for a success carrying `output` (bytes), as workflow_log.h says."""
    return f'ok: true digest: "{digest(output)}" size: {len(output)} output: "{esc(output)}"'


def write(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def takeover(stage, shard_id):
    """Frames: h1 owns wf-x~1 and replicates a submitted workflow with a shard done and its
    stage merged to h0; then h0 is alone and takes it over (rebuilding the log)."""
    shards = json.dumps([{"i": 0, "id": shard_id, "b": 0, "e": 1, "items": [],
                          "want": [0.25, 1000], "min": [0.25, 1000]}]).replace('"', '\\"')
    done = carried(b"0\n")
    recs = [
        record(1, 3, "h1", 1, 'name: "x" text: "workflow: x" detail: "{}"'),
        record(2, 3, "h1", 7, f'stage: "{stage}" text: "{shards}"'),
        record(3, 3, "h1", 3, f'stage: "{stage}" shard: "0" attempt_id: "wf-x/{stage}/0#1" '
                              f'host: "h2" {done}'),
        record(4, 3, "h1", 4, f'stage: "{stage}" {done}'),
    ]
    append = repl("wf-x~1", 3, "h1", f'append {{ prev_seq: 0 records {" records ".join(recs)} '
                                     'committed_seq: 4 replicas: "h0" }')
    return b"".join([
        frame(0, 0, 1, append),
        frame(3, 0, 1, b"x"),           # status by name: h0 holds a replica, asks h1
        frame(2, 0b00000, 5, b""),      # h0 alone: it owns wf-x~1 now
        frame(0, 0, 100, b""), frame(0, 0, 100, b""),
        frame(3, 1, 1, b"wf-x"),
    ])


def main():
    os.makedirs(OUT, exist_ok=True)
    query = status('query { query_id: 5 workflow: "wf-own" explain: true }')
    reply_owner = status('reply { query_id: 1 found: true from_owner: true owner: "h3" '
                         'json: "[{\\"id\\": \\"wf-x\\"}]" }')
    reply_replica = status('reply { query_id: 1 found: true owner: "h3" json: "[{}]" }')
    reply_none = status("reply { query_id: 1 }")
    write("query.pb", query)
    write("reply.pb", reply_owner)
    write("bad_no_body.pb", status(""))
    write("bad_found_without_status.pb", status("reply { query_id: 1 found: true }"))
    write("bad_workflow.pb", status('query { query_id: 1 workflow: "has space" }'))
    write("bad_garbage", b"\xff\xff\xff\xff\x01garbage")
    # The asker's side: h0 asks every live host of a workflow it holds nothing of, they answer
    # (nothing, a replica's answer, the owner's); then asks again and nobody answers in time.
    # The owner's side: queries for the workflow h0 runs, by name and id, and for none.
    write("status_frames", b"".join([
        frame(3, 0, 1, b"wf-x"),
        frame(1, 0, 1, reply_none), frame(1, 1, 1, reply_replica), frame(1, 2, 1, reply_owner),
        frame(1, 2, 1, reply_owner),  # late: answered already
        frame(3, 1, 1, b"wf-y"), frame(1, 0, 1, reply_none), frame(0, 0, 255, b""),
        frame(1, 0, 1, query),
        frame(1, 1, 1, status('query { query_id: 6 workflow: "wf-own-1a2b3c" }')),
        frame(1, 2, 1, status('query { query_id: 7 workflow: "nothing" }')),
        frame(2, 0b00100, 1, b""), frame(3, 0, 1, b"wf-own"),
    ]))
    write("takeover_frames", takeover("s", "0"))
    # A log whose names would lead out of the workflow's directory: not rebuilt.
    write("regress_takeover_escape", takeover("../../../../tmp/escape", "0"))
    write("regress_takeover_escape_shard", takeover("s", "../../x"))


if __name__ == "__main__":
    main()
