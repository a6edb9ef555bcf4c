"""Bad input on the RPyC side of the listener, as raw bytes: each case is a
clear error (an exception reply) or a closed connection, and the host keeps
serving everyone else."""
import socket
import struct

import pytest
import rpyc
from rpyc.core import brine, consts

REQUEST, REPLY, EXCEPTION = consts.MSG_REQUEST, consts.MSG_REPLY, consts.MSG_EXCEPTION


def frame(payload):
    return struct.pack("!LB", len(payload), 0) + payload + b"\n"


def request(seq, handler, args):
    return frame(bytes([REQUEST]) + brine.dump((seq, (handler, (consts.LABEL_VALUE, args)))))


def read_frame(sock):
    header = recv_exactly(sock, 5)
    length, compressed = struct.unpack("!LB", header)
    assert compressed == 0
    return recv_exactly(sock, length + 1)[:-1]


def recv_exactly(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError("closed by the host")
        data += chunk
    return data


def connect(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.settimeout(5)
    return sock


def assert_closed(sock):
    try:
        assert sock.recv(100) == b"", "the host answered instead of closing"
    except ConnectionResetError:
        pass


@pytest.fixture
def still_serving(calculator_port):
    yield
    conn = rpyc.connect("localhost", calculator_port)
    assert conn.root.add(4, 7) == 11
    conn.close()


@pytest.mark.parametrize(
    "bytes_",
    [
        struct.pack("!LB", 2**32 - 1, 0),  # an absurd length
        frame(bytes([REQUEST]) + b"\x07"),  # an unknown brine tag
        frame(bytes([REQUEST]) + b"\x10" * 500 + b"\x00"),  # deep nesting
        frame(b"\x09" + brine.dump((0, (3, (1, ()))))),  # an unknown message type
        frame(b""),  # an empty message
        struct.pack("!LB", 10, 1) + b"not zlib!!" + b"\n",  # bad compressed data
    ],
    ids=["absurd-length", "unknown-tag", "deep-nesting", "message-type", "empty", "bad-zlib"],
)
def test_undecodable_frames_close_the_connection(calculator_port, still_serving, bytes_):
    sock = connect(calculator_port)
    sock.sendall(bytes_)
    assert_closed(sock)


def test_a_truncated_frame_then_eof_closes(calculator_port, still_serving):
    sock = connect(calculator_port)
    sock.sendall(request(0, consts.HANDLE_GETROOT, ())[:-4])
    sock.shutdown(socket.SHUT_WR)
    assert_closed(sock)


def exception_reply(sock, seq):
    payload = read_frame(sock)
    assert payload[0] == EXCEPTION
    got_seq, (name, args, _attrs, _tb) = brine.load(payload[1:])
    assert got_seq == seq
    return name, args


def test_unknown_handlers_and_unknown_objects_get_exceptions(calculator_port, still_serving):
    sock = connect(calculator_port)
    sock.sendall(request(1, 99, ()))
    assert exception_reply(sock, 1) == (("builtins", "KeyError"), ("unknown handler 99",))
    stale = (consts.LABEL_LOCAL_REF, ("builtins.method", 1, 12345))
    sock.sendall(frame(bytes([REQUEST]) + brine.dump((2, (consts.HANDLE_DEL, (consts.LABEL_TUPLE, (stale, (1, 1))))))))
    name, args = exception_reply(sock, 2)
    assert name == ("builtins", "KeyError") and "12344" in args[0]
    sock.sendall(request(3, consts.HANDLE_GETATTR, (1, 2)))
    assert exception_reply(sock, 3)[0] == ("builtins", "TypeError")
    # A reply to a request the host never sent is dropped; the connection goes on.
    sock.sendall(frame(bytes([REPLY]) + brine.dump((777, (consts.LABEL_VALUE, None)))))
    sock.sendall(request(4, consts.HANDLE_PING, ("still here",)))
    payload = read_frame(sock)
    assert payload[0] == REPLY and brine.load(payload[1:]) == (4, (consts.LABEL_VALUE, "still here"))
    sock.close()


def test_an_rpyc5_client_hears_about_the_version_mismatch(calculator_port, still_serving):
    sock = connect(calculator_port)
    # RPyC 5.x: the envelope is one brine tuple (type, seq, args); its first byte is 0x12.
    sock.sendall(frame(brine.dump((REQUEST, 0, (consts.HANDLE_GETROOT, (consts.LABEL_VALUE, ()))))))
    kind, seq, (name, args, _attrs, _tb) = brine.load(read_frame(sock))
    assert (kind, seq, name) == (EXCEPTION, 0, ("builtins", "ValueError"))
    assert "RPyC 5.x" in args[0] and "RPyC 6" in args[0]
    sock.close()
