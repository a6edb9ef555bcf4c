"""Records what the real rpyc client and the host send each other in a few
sessions (calls, cached methods, a callback, exposed classes, errors,
introspection) as seeds for the `rpyc_stream` fuzz target: one file per
session and direction. Run from the repository root after a release build:

    .venv/bin/python fuzz/capture_rpyc_seeds.py
"""
import hashlib
import pathlib
import sys

import rpyc
from rpyc.core.stream import SocketStream

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "python"))
from conftest import GUESTS, Host  # noqa: E402  (the tests' way to run the host)

CORPUS = ROOT / "fuzz" / "corpus" / "rpyc_stream"
SERVICES = ("calculator", "callback", "my_service")


def recorded(port, session):
    """Runs `session(conn)` and returns the bytes sent and received."""
    sent, received = bytearray(), bytearray()
    write, read = SocketStream.write, SocketStream.read
    SocketStream.write = lambda self, data: (sent.extend(data), write(self, data))[1]
    SocketStream.read = lambda self, count: (lambda data: (received.extend(data), data)[1])(read(self, count))
    try:
        conn = rpyc.connect("127.0.0.1", port)
        try:
            session(conn)
        finally:
            conn.close()
    finally:
        SocketStream.write, SocketStream.read = write, read
    return bytes(sent), bytes(received)


def calls(conn):
    add = conn.root.add
    assert add(4, 7) == 11 and add(a=1, b=2) == 3
    assert conn.root.exposed_mul(6, 7) == 42
    assert conn.root.div(1.5, 0.5) == 3.0
    assert conn.root.get_service_name() == "CALCULATOR"


def errors(conn):
    for call in (lambda: conn.root.div(1, 0), lambda: conn.root.missing(), lambda: conn.root.add("x", 1)):
        try:
            call()
        except Exception:
            pass
    conn.ping()


def introspection(conn):
    dir(conn.root)
    repr(conn.root.add)
    str(conn.root)
    conn.root.get_service_aliases()


def callback(conn):
    assert conn.root.bar(lambda: "foo") == "foobar"


def classes(conn):
    obj = conn.root.MyClass(1, 2)
    assert obj.foo() == 3
    other = obj.add(conn.root.MyClass(3, 4))
    assert conn.root.same(other, other)
    del obj, other
    conn.root.live_objects()


def main():
    host = Host(*(GUESTS / f"{name}.wasm" for name in SERVICES))
    ports = host.ports
    try:
        sessions = [(ports["calculator"], s) for s in (calls, errors, introspection)]
        sessions += [(ports["callback"], callback), (ports["my_service"], classes)]
        for port, session in sessions:
            for data in recorded(port, session):
                name = hashlib.sha1(data).hexdigest()
                (CORPUS / name).write_bytes(data)
                print(session.__name__, len(data), "bytes:", name)
    finally:
        host.stop()


if __name__ == "__main__":
    main()
