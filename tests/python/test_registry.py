"""`wasm-rpyc registry` with the real rpyc registry clients, over UDP and TCP:
registration, discovery, listing, connect_by_service, and hostile datagrams."""
import os
import queue
import re
import socket
import subprocess
import threading
import time

import pytest
import rpyc
from rpyc.core import brine
from rpyc.utils.factory import DiscoveryError
from rpyc.utils.registry import TCPRegistryClient, UDPRegistryClient

from conftest import BINARY


def free_port(kind):
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(params=["UDP", "TCP"])
def registrar(request):
    """A registry process of each transport, and an rpyc client of it."""
    mode = request.param
    port = free_port(socket.SOCK_DGRAM if mode == "UDP" else socket.SOCK_STREAM)
    process = subprocess.Popen(
        [str(BINARY), "registry", "-m", mode, "-p", str(port), "-l", "--host", "127.0.0.1"],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1", "RUST_LOG": "info"},
    )
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stderr], daemon=True).start()
    while "registry serving" not in lines.get(timeout=30):
        pass
    client = UDPRegistryClient if mode == "UDP" else TCPRegistryClient
    yield client(ip="127.0.0.1", port=port)
    assert process.poll() is None, "the registry died"
    process.terminate()
    process.wait(timeout=10)


def test_discover_list_and_connect_by_service(registrar, calculator_port):
    assert registrar.register(("CALCULATOR", "calc"), calculator_port)
    assert rpyc.discover("calc", registrar=registrar) == (("127.0.0.1", calculator_port),)
    assert set(rpyc.list_services(registrar=registrar)) == {"CALCULATOR", "CALC"}
    assert rpyc.list_services(registrar=registrar, filter_host="10.9.9.9") == ()
    conn = rpyc.connect_by_service("calculator", registrar=registrar)
    assert conn.root.add(4, 7) == 11
    conn.close()
    registrar.unregister(calculator_port)
    time.sleep(0.2)  # the UDP client does not wait for the reply
    with pytest.raises(DiscoveryError):
        rpyc.discover("calc", registrar=registrar)


def test_garbage_floods_and_oversized_requests_leave_it_answering(registrar, calculator_port):
    junk = [b"", b"\xff" * 1400, b"GET / HTTP/1.1\r\n\r\n", brine.dump(("HTTP", "QUERY", ("x",))),
            brine.dump(("RPYC", "SHUTDOWN", ())), brine.dump(("RPYC", "REGISTER", (("X",), 70000)))]
    if isinstance(registrar, UDPRegistryClient):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for _ in range(2000):
                for data in junk:
                    sock.sendto(data, (registrar.ip, registrar.port))
            sock.sendto(b"\x00" * 60000, (registrar.ip, registrar.port))
    else:
        for data in junk + [b"\x00" * 100_000]:
            with socket.create_connection((registrar.ip, registrar.port)) as sock:
                try:
                    sock.sendall(data)
                    sock.shutdown(socket.SHUT_WR)
                    sock.settimeout(5)
                    assert sock.recv(100) == b"", "no reply to what is not a request"
                except ConnectionResetError:
                    pass  # the registry closed on a request it did not read whole
    silent = None
    if isinstance(registrar, TCPRegistryClient):
        silent = socket.create_connection((registrar.ip, registrar.port))  # never sends
    assert registrar.register(("CALCULATOR",), calculator_port)
    assert rpyc.discover("CALCULATOR", registrar=registrar) == (("127.0.0.1", calculator_port),)
    if silent:
        silent.close()
