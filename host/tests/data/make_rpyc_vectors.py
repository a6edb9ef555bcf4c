"""Writes rpyc_vectors.json: bytes produced by the real rpyc package (6.0.2),
which the Rust codec's tests decode and must reproduce.

Run with rpyc installed:  python make_rpyc_vectors.py > rpyc_vectors.json

Values are described as ["kind", ...] so the Rust side can rebuild them:
none, true, false, notimpl, ellipsis, ["int", "decimal"], ["float", "hex of
the IEEE bits"], ["complex", re_bits, im_bits], ["str", text], ["bytes",
hex], ["tuple", [items]], ["fset", [items]], ["slice", start, stop, step].
"""
import json
import struct
import sys
import zlib

import rpyc
from rpyc.core import brine, consts, vinegar
from rpyc.core.channel import Channel


def describe(v):
    if v is None:
        return ["none"]
    if v is True:
        return ["true"]
    if v is False:
        return ["false"]
    if v is NotImplemented:
        return ["notimpl"]
    if v is Ellipsis:
        return ["ellipsis"]
    if type(v) is int:
        return ["int", str(v)]
    if type(v) is float:
        return ["float", struct.pack("!d", v).hex()]
    if type(v) is complex:
        return ["complex", struct.pack("!d", v.real).hex(), struct.pack("!d", v.imag).hex()]
    if type(v) is str:
        return ["str", v]
    if type(v) is bytes:
        return ["bytes", v.hex()]
    if type(v) is tuple:
        return ["tuple", [describe(i) for i in v]]
    if type(v) is frozenset:
        # brine dumps tuple(obj): keep that order
        return ["fset", [describe(i) for i in tuple(v)]]
    if type(v) is slice:
        return ["slice", describe(v.start), describe(v.stop), describe(v.step)]
    raise TypeError(v)


VALUES = [
    None, True, False, NotImplemented, Ellipsis,
    0, 1, -1, -48, -49, 159, 160, 255, 256, -1000, 2**31, -2**63, 2**64 - 1, 2**64, 2**127 - 1, -2**127,
    2**128, -(10**80), 10**300,
    0.0, -0.0, 1.5, -2.25, 1e300, float("inf"), float("-inf"),
    complex(1, -2), complex(0, 0.5),
    "", "a", "hé", "日本語", "x" * 4, "x" * 5, "x" * 255, "x" * 256, "x" * 300,
    b"", b"\x00", b"ab", b"abc", b"abcd", b"abcde", bytes(range(256)), b"z" * 300,
    (), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4), (1, 2, 3, 4, 5), tuple(range(255)), tuple(range(256)),
    ((), ((),), (1, ("a", b"b")), None),
    frozenset([7]), frozenset(),
    slice(1, 2, None), slice(None, -1, 2),
    (0, (3, ((1, ()),))),
]


def frames(payload):
    """What a Channel writes for one payload, captured from a fake stream."""
    out = []

    class Capture:
        MAX_IO_CHUNK = 64000

        def write(self, data):
            out.append(bytes(data))

    Channel(Capture(), compress=True).send(payload)
    return b"".join(out)


class Custom(Exception):
    pass


def dumped(exc):
    try:
        raise exc
    except BaseException:
        typ, val, tb = sys.exc_info()
        return vinegar.dump(typ, val, tb, include_local_traceback=False, include_local_version=True)


vectors = {
    "rpyc_version": rpyc.__version__,
    "brine": [{"value": describe(v), "hex": brine.dump(v).hex()} for v in VALUES],
    "frames": [
        {"payload": p.hex(), "frame": frames(p).hex()}
        for p in [b"\x01\x11\x50\x11\x53\x11\x51\x02", b"small", b"abc" * 1000, b"abc" * 1000 + b"d", bytes(range(256)) * 20]
    ],
    "exceptions": [
        {"exception": describe(dumped(e)), "hex": brine.dump(dumped(e)).hex()}
        for e in [ZeroDivisionError("division by zero"), KeyError("k"), AttributeError("cannot access 'foo'"),
                  Custom("custom", 42), ValueError(), StopIteration()]
    ],
}
json.dump(vectors, sys.stdout, indent=1)
print()
