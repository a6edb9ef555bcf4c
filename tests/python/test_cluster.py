"""A fleet on NATS JetStream (Debian's nats-server 2.9, started here): hosts
on 127.0.0.2-4 join it with `serve --cluster`, and fleet registries
(`registry --cluster`) answer the unmodified rpyc client from the shared
view; hosts that stop, die, hang or lose NATS (stopped, or cut off in a
network namespace) drop out, and come back. Components deployed to the fleet
reach every host that accepts them."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest
import rpyc
from rpyc.utils.registry import TCPRegistryClient, UDPRegistryClient
from rpyc.utils.server import ThreadedServer

from conftest import BINARY, GUESTS, POLYGLOT

NATS = shutil.which("nats-server") or "/usr/sbin/nats-server"
# Short timings, so that the tests see hosts come and go quickly; but a
# time-to-live a loaded machine does not outlast by holding up a heartbeat or
# a read of the fleet (at 1 s, a stall of a moment made a live host drop out,
# or a registry fall silent).
TTL = 6
TIMINGS = ("--heartbeat", "0.5", "--cluster-ttl", str(TTL))
IPS = ("127.0.0.2", "127.0.0.3", "127.0.0.4")


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def eventually(probe, within=30):
    """Asks `probe` until it is true; fails after `within` seconds (what it
    waits for takes a moment, but a loaded machine may take seconds)."""
    deadline = time.monotonic() + within
    while not probe():
        assert time.monotonic() < deadline, "not within %s s" % within
        time.sleep(0.05)
    return time.monotonic()


def logged(*args):
    """Starts a process whose stderr goes to a file (a pipe nobody reads
    could fill and stall it); `.log()` reads it."""
    log = tempfile.TemporaryFile("a+")
    process = subprocess.Popen(list(map(str, args)), stdout=subprocess.DEVNULL, stderr=log,
                               text=True, env={**os.environ, "NO_COLOR": "1"})

    def read():
        log.seek(0)
        return log.read()

    process.log = read
    return process


def end(process):
    if process.poll() is None:
        process.send_signal(signal.SIGCONT)
        process.terminate()
    process.wait(timeout=60)


class Nats:
    """A nats-server with JetStream on a free port of `address`, its store in
    `store`."""

    def __init__(self, store, address="127.0.0.1", options=()):
        self.port = free_port()
        self.store = store
        self.address = address
        self.options = options
        self.url = f"nats://127.0.0.1:{self.port}"
        self.start()

    def start(self):
        self.process = logged(NATS, "-js", "-a", self.address, "-p", self.port, "-sd", self.store,
                              *self.options)
        eventually(self.answers, within=60)

    def answers(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def stop(self):
        end(self.process)


@pytest.fixture
def nats(tmp_path):
    server = Nats(tmp_path / "jetstream")
    yield server
    server.stop()


def fleet_host(nats, ip, port, *args):
    """`wasm-rpyc serve` of the calculator on `ip:port`, in the fleet."""
    host = logged(BINARY, "serve", GUESTS / "calculator.wasm", "--host", ip, "-p", port,
                  "--cluster", nats.url, *TIMINGS, *args)
    return joined(host)


def joined(host):
    """`host`, once it says it joined the fleet; ended if it does not. (It
    compiles its component first: seconds, more on a loaded machine; one that
    exits is reported at once.)"""
    try:
        eventually(lambda: "joined the fleet" in host.log() or host.poll() is not None, within=300)
        assert host.poll() is None, host.log()
    except BaseException:
        end(host)
        raise
    return host


def fleet_registry(nats, mode, port, *args):
    """`wasm-rpyc registry --cluster`, and an rpyc client of it."""
    # A classic registration counts for 30 s: rpyc's server registers once a
    # minute, and a loaded machine may take seconds from its registering to
    # the test's connecting. The client waits 5 s for an answer (a silent
    # registry costs each question that long; an answering one, a moment).
    registry = logged(BINARY, "registry", "-m", mode, "-p", port, "--host", "127.0.0.1", "-l",
                      "-t", "30", "--cluster", nats.url, *TIMINGS, *args)
    client = (UDPRegistryClient if mode == "UDP" else TCPRegistryClient)(
        ip="127.0.0.1", port=port, timeout=5)
    try:
        # Serving, and the fleet read once.
        eventually(lambda: "reading the fleet" in registry.log() or registry.poll() is not None,
                   within=120)
        assert registry.poll() is None, registry.log()
    except BaseException:
        end(registry)
        raise
    return registry, client


def found(client, name="CALCULATOR"):
    return set(client.discover(name))


def test_hosts_are_found_through_every_fleet_registry_and_drop_out_when_gone(nats):
    port = free_port()
    hosts, started = {}, []
    try:
        for ip in IPS:
            hosts[ip] = fleet_host(nats, ip, port)
            started.append(hosts[ip])
        udp, by_udp = fleet_registry(nats, "UDP", free_port(socket.SOCK_DGRAM))
        started.append(udp)
        tcp, by_tcp = fleet_registry(nats, "TCP", free_port())
        started.append(tcp)
        everyone = {(ip, port) for ip in IPS}
        eventually(lambda: found(by_udp) == everyone)
        eventually(lambda: found(by_tcp) == everyone)
        # Shuffled among the equally fresh: RPyC's "first that connects"
        # spreads clients over the hosts.
        firsts = {by_udp.discover("CALCULATOR")[0] for _ in range(40)}
        assert len(firsts) >= 2, firsts
        conn = rpyc.connect_by_service("calculator", registrar=by_tcp)
        assert conn.root.add(4, 7) == 11
        conn.close()
        assert "CALCULATOR" in by_udp.list()
        assert by_udp.list("127.0.0.3") == ("CALCULATOR",)

        # A clean stop: out of the view before the listeners close, its
        # record deleted: long before it could age out (its last heartbeat
        # and the time-to-live after it, at least 5.5 s), which leaves a
        # loaded machine seconds.
        hosts["127.0.0.2"].terminate()
        stopped = time.monotonic()
        gone = eventually(lambda: ("127.0.0.2", port) not in found(by_udp))
        assert gone - stopped < TTL / 2, gone - stopped
        assert "left the fleet" in hosts["127.0.0.2"].log()

        # Killed: gone once its record is older than its time-to-live.
        hosts["127.0.0.3"].kill()
        eventually(lambda: found(by_tcp) == {("127.0.0.4", port)}, within=TTL + 30)

        # Hung (SIGSTOP): gone the same way, and back once it runs again.
        hosts["127.0.0.4"].send_signal(signal.SIGSTOP)
        eventually(lambda: found(by_udp) == set(), within=TTL + 30)
        hosts["127.0.0.4"].send_signal(signal.SIGCONT)
        eventually(lambda: found(by_udp) == {("127.0.0.4", port)})
    finally:
        for process in started:
            end(process)


class EchoService(rpyc.Service):
    def exposed_echo(self, value):
        return value


def test_a_classic_rpyc_server_registers_through_one_fleet_registry_and_is_found_by_another(nats):
    udp, by_udp = fleet_registry(nats, "UDP", free_port(socket.SOCK_DGRAM))
    try:
        tcp, by_tcp = fleet_registry(nats, "TCP", free_port())
    except BaseException:
        end(udp)
        raise
    server = ThreadedServer(EchoService, hostname="127.0.0.5", port=0, auto_register=True,
                            registrar=UDPRegistryClient(ip="127.0.0.1", port=by_udp.port))
    thread = threading.Thread(target=server.start, daemon=True)
    try:
        thread.start()
        classic = {("127.0.0.5", server.port)}
        eventually(lambda: found(by_tcp, "ECHO") == classic)
        conn = rpyc.connect_by_service("echo", registrar=by_tcp)
        assert conn.root.echo("hi") == "hi"
        conn.close()
        server.close()  # unregisters (or, were the datagram lost, pruned after 30 s)
        eventually(lambda: found(by_tcp, "ECHO") == set(), within=60)
    finally:
        server.close()
        end(udp)
        end(tcp)


def test_hosts_keep_serving_without_nats_and_rejoin_when_it_returns(nats):
    port = free_port()
    host = fleet_host(nats, "127.0.0.2", port)
    try:
        registry, client = fleet_registry(nats, "UDP", free_port(socket.SOCK_DGRAM))
    except BaseException:
        end(host)
        raise
    try:
        eventually(lambda: found(client) == {("127.0.0.2", port)})
        nats.stop()
        # The host serves on; the registry, cut off, stops answering rather
        # than hand out what may be stale.
        conn = rpyc.connect("127.0.0.2", port)
        assert conn.root.add(1, 2) == 3
        # Once its view is older than the time-to-live.
        eventually(lambda: client.discover("CALCULATOR") == (), within=TTL + 30)
        assert conn.root.add(2, 3) == 5
        nats.start()
        eventually(lambda: found(client) == {("127.0.0.2", port)}, within=60)
        assert host.poll() is None, host.log()
    finally:
        end(host)
        end(registry)


def fleet(nats, *args, timeout=900):
    """A fleet command (`deploy`, `undeploy`, `rollback`, `status`). A
    deploy compiles the component here, then waits for the hosts to: a
    Python one takes minutes of a loaded machine, three times over."""
    return subprocess.run([str(BINARY), *map(str, args), "--cluster", nats.url, *TIMINGS],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "NO_COLOR": "1"})


def refused(ip, port):
    try:
        socket.create_connection((ip, port), timeout=1).close()
        return False
    except OSError:
        return True


def digest_of(path):
    import hashlib
    return hashlib.sha256(path.read_bytes()).hexdigest()[:8]


def test_a_component_deployed_to_the_fleet_reaches_every_accepting_host_without_a_failed_call(
        nats, tmp_path):
    rust, python = GUESTS / "calculator.wasm", POLYGLOT / "python" / "calculator.wasm"
    assert python.exists(), "run services/build.sh first"
    port, ips = free_port(), IPS[:2]
    hosts = [logged(BINARY, "serve", "--host", ip, "--cluster", nats.url, "--accept-fleet-deploys",
                    *TIMINGS) for ip in ips]
    calling = threading.Event()
    failures, calls = [], [0]

    def keep_calling():
        # Connections made before, during and after the new revision: none
        # may fail (open ones keep their instance, new ones get the new one).
        while calling.is_set():
            for ip in ips:
                try:
                    conn = rpyc.connect(ip, port)
                    assert conn.root.add(4, 7) == 11
                    conn.close()
                    calls[0] += 1
                except Exception as error:  # noqa: BLE001 (every failure counts)
                    failures.append(repr(error))

    def said(answer):
        """What the command and the hosts said, for a failure's message."""
        return "\n".join([answer.stdout, answer.stderr[-2000:],
                          *(host.log()[-3000:] for host in hosts)])

    try:
        for host in hosts:
            eventually(lambda: "joined the fleet" in host.log(), within=300)
        answer = fleet(nats, "deploy", rust, "--name", "calc", "--port", port, "--wait", "300")
        assert answer.returncode == 0, said(answer)
        assert answer.stdout.count(f"serving {digest_of(rust)} on port {port}") == 2, answer.stdout
        for ip in ips:
            assert rpyc.connect(ip, port).root.add(1, 2) == 3

        calling.set()
        caller = threading.Thread(target=keep_calling, daemon=True)
        caller.start()
        answer = fleet(nats, "deploy", python, "--name", "calc", "--port", port, "--wait", "600")
        assert answer.returncode == 0, said(answer)
        assert answer.stdout.count(f"serving {digest_of(python)}") == 2, answer.stdout
        # And calls after the new revision, however slowly they come.
        deployed = calls[0]
        eventually(lambda: calls[0] >= deployed + 10 or failures, within=120)
        calling.clear()
        caller.join(timeout=120)
        assert not caller.is_alive(), "a call never ended"
        assert failures == [], failures[:3]
        assert calls[0] > 10

        # A component that does not load changes nothing anywhere.
        broken = tmp_path / "broken.wasm"
        broken.write_bytes(b"\0asm not really")
        answer = fleet(nats, "deploy", broken, "--name", "calc", "--port", port)
        assert answer.returncode != 0
        assert "broken.wasm does not load; nothing was deployed" in answer.stderr
        status = fleet(nats, "status")
        assert status.returncode == 0, status.stderr
        assert status.stdout.count(digest_of(python)) >= 3, status.stdout  # 2 hosts + the deployment

        answer = fleet(nats, "rollback", "calc", "--wait", "300")
        assert answer.returncode == 0, said(answer)
        assert answer.stdout.count(f"serving {digest_of(rust)}") == 2, answer.stdout

        answer = fleet(nats, "undeploy", "calc", "--wait", "300")
        assert answer.returncode == 0, said(answer)
        for ip in ips:
            eventually(lambda: refused(ip, port))
        assert fleet(nats, "undeploy", "calc").returncode != 0
    finally:
        calling.clear()
        for host in hosts:
            end(host)


class Partition:
    """A network namespace joined to this one by a veth pair: processes run
    inside it reach NATS over the link, which `cut` and `heal` take down and
    bring back. Needs root and iproute2."""

    def __init__(self):
        self.name = f"wrpyc-{os.getpid()}"
        self.outer, self.inner = f"wro{os.getpid() % 100000}", f"wri{os.getpid() % 100000}"
        self.outer_ip, self.inner_ip = "10.213.7.1", "10.213.7.2"
        steps = [
            ["ip", "netns", "add", self.name],
            ["ip", "link", "add", self.outer, "type", "veth", "peer", "name", self.inner],
            ["ip", "link", "set", self.inner, "netns", self.name],
            ["ip", "addr", "add", f"{self.outer_ip}/24", "dev", self.outer],
            ["ip", "link", "set", self.outer, "up"],
            ["ip", "netns", "exec", self.name, "ip", "addr", "add", f"{self.inner_ip}/24",
             "dev", self.inner],
            ["ip", "netns", "exec", self.name, "ip", "link", "set", self.inner, "up"],
            ["ip", "netns", "exec", self.name, "ip", "link", "set", "lo", "up"],
        ]
        for step in steps:
            subprocess.run(step, check=True, capture_output=True)

    def run(self, *args):
        return ["ip", "netns", "exec", self.name, *map(str, args)]

    def cut(self):
        subprocess.run(["ip", "link", "set", self.outer, "down"], check=True)

    def heal(self):
        subprocess.run(["ip", "link", "set", self.outer, "up"], check=True)

    def remove(self):
        subprocess.run(["ip", "link", "del", self.outer], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


@pytest.fixture
def partition():
    try:
        made = Partition()
    except (OSError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", b"") or b""
        pytest.skip(f"no network namespaces here ({error} {detail.decode().strip()})")
    yield made
    made.remove()


def test_a_host_cut_off_from_nats_drops_out_and_its_registry_falls_silent_until_the_link_returns(
        tmp_path, partition):
    # NATS listens on the outer end of the link; the partitioned host and a
    # registry beside it run inside the namespace.
    server = Nats(tmp_path / "jetstream", address="0.0.0.0")
    url = f"nats://{partition.outer_ip}:{server.port}"
    port, inner_registry_port = free_port(), free_port(socket.SOCK_DGRAM)
    started = []
    try:
        host = logged(*partition.run(BINARY, "serve", GUESTS / "calculator.wasm", "--host",
                                     partition.inner_ip, "-p", port, "--cluster", url, *TIMINGS))
        started.append(host)
        inner = logged(*partition.run(BINARY, "registry", "-p", inner_registry_port, "--host",
                                      "127.0.0.1", "--cluster", url, *TIMINGS))
        started.append(inner)
        outer, by_outer = fleet_registry(server, "UDP", free_port(socket.SOCK_DGRAM))
        started.append(outer)

        def inner_answer():
            """What the registry inside the namespace answers, asked from
            inside it ("none": no answer)."""
            ask = ("import socket\n"
                   "from rpyc.core import brine\n"
                   "sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                   "sock.settimeout(0.5)\n"
                   "sock.sendto(brine.dump(('RPYC', 'QUERY', ('CALCULATOR',))), "
                   f"('127.0.0.1', {inner_registry_port}))\n"
                   "try:\n"
                   "    print(brine.load(sock.recv(1500)))\n"
                   "except socket.timeout:\n"
                   "    print('none')\n")
            asked = subprocess.run(partition.run(sys.executable, "-c", ask),
                                   capture_output=True, text=True)
            return asked.stdout.strip()

        the_host = {(partition.inner_ip, port)}
        eventually(lambda: found(by_outer) == the_host, within=300)
        eventually(lambda: partition.inner_ip in inner_answer(), within=60)

        # Both once the host's record, and the inner registry's view, are
        # older than the time-to-live.
        partition.cut()
        eventually(lambda: found(by_outer) == set(), within=TTL + 30)
        eventually(lambda: inner_answer() == "none", within=TTL + 30)
        assert host.poll() is None, host.log()

        partition.heal()
        eventually(lambda: found(by_outer) == the_host, within=60)
        eventually(lambda: partition.inner_ip in inner_answer(), within=60)
    finally:
        partition.heal()
        for process in started:
            end(process)
        server.stop()


@pytest.mark.parametrize("how", ["user and password", "token", "TLS"])
def test_the_fleet_is_joined_with_nats_credentials_and_tls(tmp_path, pki, how):
    server_options, client_options = {
        "user and password": (("--user", "fleet", "--pass", "s3cret"),
                              ("--cluster-user", "fleet", "--cluster-password", "s3cret")),
        "token": (("--auth", "t0ken"), ("--cluster-token", "t0ken")),
        "TLS": (("--tls", "--tlscert", pki / "server.pem", "--tlskey", pki / "server.key"),
                ("--cluster-tls-ca", pki / "ca.pem")),
    }[how]
    server = Nats(tmp_path / "jetstream", options=server_options)
    port, started = free_port(), []
    try:
        started.append(fleet_host(server, "127.0.0.2", port, *client_options))
        registry, client = fleet_registry(server, "UDP", free_port(socket.SOCK_DGRAM),
                                          *client_options)
        started.append(registry)
        eventually(lambda: found(client) == {("127.0.0.2", port)})
        # Without them, a host serves but never joins.
        outsider = logged(BINARY, "serve", GUESTS / "calculator.wasm", "--host", "127.0.0.3",
                          "-p", port, "--cluster", server.url, *TIMINGS)
        started.append(outsider)
        # Serving (a loaded machine may take seconds to start it), then
        # heartbeats enough to have joined, had it been let in.
        eventually(lambda: "serving" in outsider.log() or outsider.poll() is not None, within=300)
        time.sleep(2)
        assert outsider.poll() is None, outsider.log()
        assert "joined the fleet" not in outsider.log()
        assert found(client) == {("127.0.0.2", port)}
    finally:
        for process in started:
            end(process)
        server.stop()


def test_a_host_that_cannot_serve_a_deployment_says_why_and_the_deploy_fails(nats):
    python = POLYGLOT / "python" / "calculator.wasm"
    small = joined(logged(BINARY, "serve", "--host", "127.0.0.2", "--cluster", nats.url,
                          "--accept-fleet-deploys", "--max-deploy-size", "1", *TIMINGS))
    try:
        answer = fleet(nats, "deploy", python, "--name", "big", "--wait", "300")
        assert answer.returncode != 0
        assert (f"127.0.0.2        {digest_of(python)} failed: the component is "
                f"{python.stat().st_size} bytes; this host takes components of at most 1048576 "
                "bytes") in answer.stdout, answer.stdout
        assert "1 of 1 hosts did not settle on big" in answer.stderr
    finally:
        end(small)
