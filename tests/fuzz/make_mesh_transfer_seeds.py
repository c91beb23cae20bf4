#!/usr/bin/env python3
"""Writes the seed corpus of the mesh_transfer fuzz target (tests/fuzz/corpus/mesh_transfer/).

Messages of src/mesh/transfer.proto and replication.proto in protobuf text format, encoded by
protoc from the real .proto files (chunk checksums computed here, CRC-32C as in
src/common/crc32c.h), each alone and as frames for the state machines:
[channel][from][time step][len lo][len hi][payload], channel 0 = data, 2 = replication,
0x82 = a membership change (peers from the `from` byte's bits 2-4). Rerun after changing a
proto: python3 tests/fuzz/make_mesh_transfer_seeds.py
"""
import os
import struct
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.join(HERE, "..", "..", "src", "mesh")
OUT = os.path.join(HERE, "corpus", "mesh_transfer")


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def encode(proto, message, text):
    return subprocess.run(
        ["protoc", f"--encode=augur.mesh.wire.{message}", f"-I{PROTO_DIR}",
         os.path.join(PROTO_DIR, proto)],
        input=text.encode(), capture_output=True, check=True).stdout


def esc(b):
    return "".join(f"\\{c:03o}" for c in b)


def chunk(tid, offset, total, data, blob=None, bad=False):
    le = struct.pack("<QQ", offset, total)
    crc = crc32c(data, crc32c(le, crc32c(tid.encode())))
    if bad:
        crc ^= 1
    text = (f'version: 1 chunk {{ transfer_id: "{tid}" offset: {offset} total_size: {total} '
            f'data: "{esc(data)}" crc32c: {crc}')
    if blob is not None:
        text += f" blob_crc32c: {crc32c(blob)}"
    return encode("transfer.proto", "TransferMessage", text + " }")


def repl(wf, epoch, owner, body):
    return encode("replication.proto", "ReplicationMessage",
                  f'version: 1 workflow_id: "{wf}" epoch {{ number: {epoch} owner: "{owner}" }} {body}')


def record(seq, epoch, owner, kind, fields):
    return f'{{ seq: {seq} epoch {{ number: {epoch} owner: "{owner}" }} kind: {kind} {fields} }}'


def frame(channel, sender, step, payload):
    return bytes([channel, sender, step]) + struct.pack("<H", len(payload)) + payload


def write(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def main():
    os.makedirs(OUT, exist_ok=True)
    blob = bytes(range(256)) * 2
    c0 = chunk("in-7", 0, 512, blob[:200])
    c1 = chunk("in-7", 200, 512, blob[200:400])
    c2 = chunk("in-7", 400, 512, blob[400:], blob=blob)
    write("chunk.pb", c0)
    write("chunk_last.pb", c2)
    # A whole transfer from h1, out of order with a duplicate, then a late duplicate.
    write("transfer_frames", b"".join(frame(0, 0, 1, c) for c in (c2, c0, c0, c1, c2)))
    # A corrupted chunk, a blob over the limit, an empty blob, an abort.
    write("bad_frames", b"".join([
        frame(0, 1, 1, chunk("x", 0, 10, b"0123456789", blob=b"0123456789", bad=True)),
        frame(0, 1, 1, chunk("big", 0, 10 << 20, b"a" * 100)),
        frame(0, 2, 1, chunk("empty", 0, 0, b"", blob=b"")),
        frame(0, 1, 1, chunk("y", 0, 20, b"a" * 10)),
        frame(0, 1, 1, encode("transfer.proto", "TransferMessage",
                              'version: 1 abort { transfer_id: "y" reason: "cancelled" }')),
        frame(0, 1, 255, b""),  # time passes: idle transfers fail
    ]))
    # Acks for the sender's transfer "out-1" (to h1): selective, then complete.
    ack = encode("transfer.proto", "TransferMessage",
                 'version: 1 ack { transfer_id: "out-1" cumulative: 0 highest: 3000 '
                 'missing { begin: 0 end: 1000 } }')
    done = encode("transfer.proto", "TransferMessage",
                  'version: 1 ack { transfer_id: "out-1" state: 1 cumulative: 3000 highest: 3000 }')
    write("ack.pb", ack)
    write("ack_frames", frame(0, 0, 1, ack) + frame(0, 0, 30, b"") + frame(0, 0, 1, done))

    # Replication: a newer owner h1 probes, appends and releases wf-x; replies to wf-own.
    rec1 = record(1, 1, "h2", 1, 'name: "w" text: "spec"')
    rec2 = record(2, 3, "h1", 2, 'stage: "s" shard: "1" attempt_id: "wf-x/s/1#1" host: "h3" lease_id: "l"')
    rec3 = record(3, 3, "h1", 3, 'stage: "s" shard: "1" attempt_id: "wf-x/s/1#1" host: "h3" ok: true digest: "d"')
    probe = repl("wf-x", 3, "h1", "probe {}")
    append = repl("wf-x", 3, "h1", f"append {{ prev_seq: 0 records {rec1} records {rec2} records {rec3} "
                                   'committed_seq: 2 replicas: "h0" replicas: "h2" }')
    mismatch = repl("wf-x", 3, "h1", 'append { prev_seq: 9 prev_epoch { number: 2 owner: "h3" } }')
    release = repl("wf-x", 3, "h1", 'release { summary { runs { epoch { number: 1 owner: "h2" } first_seq: 1 } '
                                    'last_seq: 1 } }')
    stale = repl("wf-own", 7, "h2", "stale {}")
    reply = repl("wf-own", 1, "h0", "append_reply { ok: true acked_seq: 3 }")
    orphan = record(4, 1, "h3", 3, 'stage: "s" shard: "2" attempt_id: "wf-own/s/2#1" ok: true')
    behind = repl("wf-own", 1, "h0", 'append_reply { summary { runs { epoch { number: 1 owner: "h0" } '
                                     f'first_seq: 1 }} last_seq: 1 }} orphans {orphan} }}')
    hint = repl("wf-y", 4, "h3", 'hint { summary { runs { epoch { number: 4 owner: "h3" } first_seq: 1 } '
                                 'last_seq: 5 } }')
    fetch = repl("wf-own", 2, "h1", "fetch { from_seq: 1 }")
    for name, msg in [("probe.pb", probe), ("append.pb", append), ("release.pb", release),
                      ("append_reply.pb", behind), ("hint.pb", hint)]:
        write(name, msg)
    write("replication_frames", b"".join([
        frame(2, 0, 1, reply), frame(2, 0, 1, behind), frame(2, 0, 5, b""),
        frame(2, 0, 1, probe), frame(2, 0, 1, append), frame(2, 0, 1, mismatch),
        frame(2, 0, 1, release), frame(2, 1, 1, stale), frame(2, 2, 1, hint),
        frame(2, 0, 1, fetch),
        frame(0x82, 0b11100, 20, b""),  # everyone live
        frame(0x82, 0b00000, 20, b""),  # alone
        frame(2, 0, 100, b""),
    ]))
    # Not a message at all.
    write("garbage", b"\xff\xff\xff\xff\x01garbage")


if __name__ == "__main__":
    main()
