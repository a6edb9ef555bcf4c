"""`wasm-rpyc registry` with the real rpyc registry clients, over UDP and TCP:
registration, discovery, listing, connect_by_service, and hostile datagrams."""
import os
import pathlib
import shutil
import queue
import socket
import subprocess
import sys
import threading
import time

import pytest
import rpyc
from rpyc.core import brine
from rpyc.utils.factory import DiscoveryError
from rpyc.utils.registry import TCPRegistryClient, UDPRegistryClient

from conftest import BINARY, GUESTS, Host


def free_port(kind):
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def eventually(probe, timeout=120):
    """What `probe` returns once it is truthy, asking again until `timeout`
    (long enough for a host to compile what it serves on a loaded machine)."""
    deadline = time.monotonic() + timeout
    while not (found := probe()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


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
    while "registry serving" not in lines.get(timeout=120):
        pass
    client = UDPRegistryClient if mode == "UDP" else TCPRegistryClient
    yield client(ip="127.0.0.1", port=port)
    assert process.poll() is None, "the registry died"
    process.terminate()
    process.wait(timeout=60)


def test_discover_list_and_connect_by_service(registrar, calculator_port):
    assert registrar.register(("CALCULATOR", "calc"), calculator_port)
    assert rpyc.discover("calc", registrar=registrar) == (("127.0.0.1", calculator_port),)
    assert set(rpyc.list_services(registrar=registrar)) == {"CALCULATOR", "CALC"}
    assert rpyc.list_services(registrar=registrar, filter_host="10.9.9.9") == ()
    conn = rpyc.connect_by_service("calculator", registrar=registrar)
    assert conn.root.add(4, 7) == 11
    conn.close()
    registrar.unregister(calculator_port)
    # The UDP client does not wait for the reply: ask until it is applied.
    assert eventually(lambda: not registrar.discover("calc"))
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
        for data in junk:
            with socket.create_connection((registrar.ip, registrar.port)) as sock:
                sock.sendall(data)
                sock.shutdown(socket.SHUT_WR)
                sock.settimeout(5)
                assert sock.recv(100) == b"", f"no reply to {data[:20]!r}"
        with socket.create_connection((registrar.ip, registrar.port)) as sock:
            try:
                sock.sendall(b"\x00" * 100_000)
            except OSError:
                pass  # the registry closed on a request it did not read whole
    silent = None
    if isinstance(registrar, TCPRegistryClient):
        silent = socket.create_connection((registrar.ip, registrar.port))  # never sends
    # Over UDP the kernel drops what arrives while the registry's buffer is
    # still full of the flood, as it would for RPyC's registry: ask again.
    assert eventually(lambda: registrar.register(("CALCULATOR",), calculator_port))
    assert rpyc.discover("CALCULATOR", registrar=registrar) == (("127.0.0.1", calculator_port),)
    if silent:
        silent.close()


def wait_until_answering(mode, port):
    """Asks the registry on `port` to list its services until it answers."""
    request = brine.dump(("RPYC", "LIST", ((None,),)))
    # A Python process takes a moment to start, seconds on a loaded machine.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        kind = socket.SOCK_DGRAM if mode == "UDP" else socket.SOCK_STREAM
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.settimeout(0.1)
            try:
                if mode == "UDP":
                    sock.sendto(request, ("127.0.0.1", port))
                else:
                    sock.connect(("127.0.0.1", port))
                    sock.sendall(request)
                if sock.recv(15000):
                    return
            except OSError:
                time.sleep(0.05)
    raise TimeoutError(f"no registry answers on {mode} port {port}")


@pytest.mark.parametrize("mode", ["UDP", "TCP"])
def test_the_host_registers_with_rpycs_own_registry(mode):
    """`serve --register` with the real `rpyc_registry`: found by name at the
    address it serves on (127.0.0.2, not the registry's 127.0.0.1), then gone
    when the host shuts down."""
    port = free_port(socket.SOCK_DGRAM if mode == "UDP" else socket.SOCK_STREAM)
    registry = subprocess.Popen(
        [str(pathlib.Path(sys.executable).parent / "rpyc_registry"), "-m", mode, "-p", str(port), "-l", "true"],
        stderr=subprocess.DEVNULL,
    )
    client = (UDPRegistryClient if mode == "UDP" else TCPRegistryClient)(ip="127.0.0.1", port=port)
    try:
        wait_until_answering(mode, port)  # a Python process takes a moment to start
        host = Host(GUESTS / "calculator.wasm", args=(
            "--host", "127.0.0.2", "--register", "--registry-type", mode,
            "--registry-host", "127.0.0.1", "--registry-port", str(port)))
        served = host.ports_in_order[0]
        found = eventually(lambda: client.discover("CALCULATOR"))
        assert tuple(found) == (("127.0.0.2", served),)
        conn = rpyc.connect_by_service("calculator", registrar=client)
        assert conn.root.add(4, 7) == 11
        conn.close()
        host.stop()  # SIGTERM: the host unregisters before it exits
        assert client.discover("CALCULATOR") == ()
    finally:
        registry.terminate()
        registry.wait(timeout=60)


def test_replacements_and_the_deploy_service_are_registered(registrar, tmp_path):
    """With --register, DEPLOY is registered too, and a component replaced by
    one of other names is registered under the new names at once."""
    mode = "UDP" if isinstance(registrar, UDPRegistryClient) else "TCP"
    served = tmp_path / "service.wasm"
    shutil.copy(GUESTS / "calculator.wasm", served)
    host = Host(served, args=("--watch", "--allow-deploy", "--deploy-port", "0", "--register",
                              "--registry-type", mode, "--registry-host", "127.0.0.1",
                              "--registry-port", str(registrar.port)))
    try:
        port = host.ports["service"]
        assert eventually(lambda: registrar.discover("CALCULATOR")) == (("127.0.0.1", port),)
        assert eventually(lambda: registrar.discover("DEPLOY")) == (("127.0.0.1", host.deploy_port),)
        shutil.copy(GUESTS / "testbed.wasm", tmp_path / "next.tmp")
        os.replace(tmp_path / "next.tmp", served)
        assert eventually(lambda: registrar.discover("TESTBED")) == (("127.0.0.1", port),)
        assert registrar.discover("CALCULATOR") == ()
        assert registrar.discover("DEPLOY") == (("127.0.0.1", host.deploy_port),)
    finally:
        host.stop()


def test_a_name_with_many_servers_is_still_discovered(registrar):
    """Past about 80 servers a full reply would not fit in the 1500 bytes
    RPyC's client reads: the freshest that fit are answered."""
    for port in range(20000, 20200):
        assert eventually(lambda: registrar.register(("CROWDED",), port))
    found = rpyc.discover("CROWDED", registrar=registrar)
    assert 10 < len(found) <= 64, len(found)
    assert found[0] == ("127.0.0.1", 20199), "the freshest first"


def test_tcp_requests_are_applied_in_the_order_they_were_sent(registrar, calculator_port):
    """RPyC's TCP client sends UNREGISTER without waiting for an answer: a
    query right after it must not see the name (RPyC's own test_api)."""
    for _ in range(50):
        assert registrar.register(("ORDERED",), calculator_port)
        assert rpyc.discover("ORDERED", registrar=registrar)
        registrar.unregister(calculator_port)
        with pytest.raises(DiscoveryError):
            rpyc.discover("ORDERED", registrar=registrar)


def test_classic_mode_is_registered_as_slave(registrar):
    """`classic --register` registers RPyC's name for it, and the classic
    client finds it as RPyC users do."""
    mode = "UDP" if isinstance(registrar, UDPRegistryClient) else "TCP"
    host = Host(args=("--classic", "--register", "--registry-type", mode, "--registry-host", "127.0.0.1",
                      "--registry-port", str(registrar.port)))
    try:
        assert eventually(lambda: registrar.discover("SLAVE")) == (("127.0.0.1", host.classic_port),)
        conn = rpyc.connect_by_service("SLAVE", registrar=registrar, service=rpyc.ClassicService)
        assert conn.modules.math.factorial(5) == 120
        conn.close()
    finally:
        host.stop()
