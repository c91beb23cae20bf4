#!/usr/bin/env python3
"""Writes the seed corpora of the plugin fuzz targets (tests/fuzz/corpus/plugin_request and
plugin_reply): a few serialized wire::Request and wire::Reply messages (plugin_host.proto),
encoded by hand so that no protobuf Python package is needed. Rerun after changing the
proto: python3 tests/fuzz/make_plugin_seeds.py"""
import os
import struct

def varint(n):
    n &= (1 << 64) - 1
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out

def f_varint(field, n): return varint(field << 3) + varint(n)
def f_double(field, x): return varint(field << 3 | 1) + struct.pack("<d", x)
def f_bytes(field, b):
    if isinstance(b, str): b = b.encode()
    return varint(field << 3 | 2) + varint(len(b)) + b

def resources(cpu, mem): return f_double(1, cpu) + f_varint(2, mem)
def kv(k, v): return f_bytes(1, k) + f_bytes(2, v)
def alloc(name, labels=()):
    return (f_bytes(1, name) + f_bytes(2, resources(2, 1 << 30)) + f_bytes(3, resources(1, 1 << 20))
            + b"".join(f_bytes(6, kv(k, v)) for k, v in labels))

here = os.path.dirname(os.path.abspath(__file__))
req = {
    "describe": f_varint(1, 1) + f_bytes(11, b""),
    "provision": f_varint(1, 2) + f_bytes(12, f_bytes(1, alloc("job-1", [("zone", "a")]))),
    "prewarm": f_varint(1, 3) + f_bytes(13, f_bytes(1, alloc("warm")) + f_varint(2, 3)),
    "resize": f_varint(1, 4) + f_bytes(14, f_bytes(1, "inst-1") + f_bytes(2, resources(1.5, 4096))),
    "run": f_varint(1, 5) + f_bytes(15, f_bytes(1, "inst-1") + f_bytes(2, f_bytes(1, "inv-1")
                                        + f_bytes(1, "--flag") + f_bytes(2, "A=B")
                                        + f_bytes(6, f_bytes(1, "wf") + f_varint(6, 1)
                                                     + f_bytes(8, "owner.example")))),
    # No argv: the mirror plugin answers with the origin host as the invocation handle.
    "run_origin": f_varint(1, 10) + f_bytes(15, f_bytes(1, "inst-1") + f_bytes(2, f_bytes(6,
                                        f_bytes(1, "wf") + f_bytes(8, "h\x01st")))),
    "poll": f_varint(1, 6) + f_bytes(16, f_bytes(1, "inv-1") + f_varint(2, 0)),
    # A negative timeout: the mirror reports it as I/O counters past INT64_MAX.
    "poll_negative": f_varint(1, 11) + f_bytes(16, f_bytes(1, "inv-12") + f_varint(2, -7)),
    "cancel": f_varint(1, 7) + f_bytes(17, f_bytes(1, "inv-1")),
    "release": f_varint(1, 8) + f_bytes(18, f_bytes(1, "inst-1")),
    "recover": f_varint(1, 9) + f_bytes(19, f_bytes(1, "inst-1") + f_bytes(2, "inv-22")),
}
info = (f_bytes(1, "example") + f_bytes(2, "1.0.0") + f_varint(3, 1) + f_bytes(4, "")
        + f_bytes(5, resources(4, 1 << 33)) + f_bytes(6, resources(2, 1 << 32))
        + f_bytes(7, f_bytes(1, "local") + f_double(2, 0.01) + f_double(3, 0.002))
        + f_bytes(8, kv("zone", "eu-1a")))
rep = {
    "info": f_varint(1, 1) + f_bytes(11, info),
    "instance": f_varint(1, 2) + f_bytes(12, f_bytes(1, "inst-1") + f_bytes(2, resources(2, 1 << 30))
                                         + f_varint(3, 1)),
    "prepared": f_varint(1, 3) + f_varint(13, 2),
    "granted": f_varint(1, 4) + f_bytes(14, resources(1.5, 4096)),
    "invocation": f_varint(1, 5) + f_bytes(15, "inv-1"),
    "status": f_varint(1, 6) + f_bytes(16, f_varint(1, 1) + f_varint(2, 0) + f_double(4, 0.25)
                                       + f_varint(6, 1700000000000000000)
                                       + f_varint(8, 8 << 20) + f_varint(9, 4096)),
    "status_io_huge": f_varint(1, 12) + f_bytes(16, f_varint(1, 1) + f_varint(9, (1 << 64) - 1)),
    "recovered": f_varint(1, 9) + f_bytes(17, f_bytes(1, varint(1)) + f_bytes(2, varint(1))),
    "error": f_varint(1, 10) + f_varint(2, 1) + f_bytes(3, "not found"),
    "fault": f_varint(1, 11) + f_bytes(4, "describe: name is NULL"),
}
for name, msgs in (("plugin_request", req), ("plugin_reply", rep)):
    d = os.path.join(here, "corpus", name)
    os.makedirs(d, exist_ok=True)
    for k, v in msgs.items():
        with open(os.path.join(d, k + ".pb"), "wb") as f:
            f.write(v)
