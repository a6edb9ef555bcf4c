"""Runs RPyC's own tests of classic mode, from a checkout of its repository,
unchanged against `wasm-rpyc classic`: only the connections are pointed at
the host. Prints each test's outcome, then compares them with expected.txt.
Started by run.sh (which says what it needs); exit status non-zero if an
outcome differs from the expected one, either way.

Usage: driver.py BINARY CHECKOUT EXPECTED LOGS   (TMPDIR: a scratch directory)
"""
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import types
import unittest

import rpyc  # the client's own rpyc (6.0.2, the venv's), before the checkout's
from rpyc.utils import factory

binary, checkout, expected_file, logs = sys.argv[1:]
checkout = os.path.abspath(checkout)
scratch = tempfile.gettempdir()
sys.path.insert(0, checkout)  # rpyc's `tests` package

# The files of RPyC's tests (tag 6.0.2) that connect to a classic server
# (SlaveService or ClassicService). Not here: test_context_managers and the
# other files that serve services of their own; the unix-socket variant of
# test_threaded_server (the host serves TCP); test_gevent_server,
# test_ssh, test_deploy, test_urllib3 (gevent, ssh to localhost, network).
TESTS = [
    "tests.test_classic", "tests.test_attributes", "tests.test_magic",
    "tests.test_netref_hierachy", "tests.test_remoting", "tests.test_refcount",
    "tests.test_async", "tests.test_race", "tests.test_teleportation",
    "tests.test_affinity", "tests.test_get_id_pack",
    "tests.test_threaded_server.Test_ThreadedServer",
    "tests.test_threaded_server.Test_ThreadPoolServer",
    "tests.test_ssl", "tests.test_ipv6",
]


class Host:
    """`wasm-rpyc classic` on a free port, seeing the checkout at /rpyc (to
    import `tests`) and the scratch directory at its own path (the tests
    compare files the server wrote with the client's). test_async waits up
    to 7 s in one call."""

    def __init__(self, name, *flags):
        self.log = os.path.join(logs, f"host-{name}.log")
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                [binary, "classic", "--host", "127.0.0.1", "--port", "0",
                 "--dir", f"{checkout}::/rpyc:ro", "--dir", scratch, "--call-deadline", "60", *flags],
                stdout=log, stderr=subprocess.STDOUT)
        hosts.append(self)
        # The first start builds the classic component (about a minute).
        deadline = time.time() + 600
        while not (found := re.search(r"serving service=SLAVE address=\S+:(\d+)", open(self.log).read())):
            if self.process.poll() is not None or time.time() > deadline:
                sys.exit(f"wasm-rpyc classic did not start; its log ({self.log}):\n{open(self.log).read()}")
            time.sleep(0.2)
        self.port = int(found[1])

    def connect(self, service=rpyc.ClassicService, config={}, **tls):
        if tls:
            conn = factory.ssl_connect("127.0.0.1", self.port, service=service, config=config, **tls)
        else:
            conn = factory.connect("127.0.0.1", self.port, service=service, config=config)
        # In RPyC's runs the server is the tests' own process, where `tests`
        # and the modules it has loaded are importable (test_classic and
        # test_magic look up `tests.test_magic` without importing it).
        conn.execute("import sys; sys.path.insert(0, '/rpyc'); import tests.test_magic")
        return conn


# Every connection to a classic server goes to the host, whatever address
# the test names: the same-process server of connect_thread, the child
# process of connect_subproc, the ports of the ThreadedServers the tests
# start (stood in for below); test_ssl's to a host serving TLS with its
# certificate.
def connect_thread(service=rpyc.VoidService, config={}, remote_service=rpyc.VoidService, remote_config={}):
    if remote_service in (rpyc.ClassicService, rpyc.SlaveService):
        return plain.connect(service, config)
    return original_connect_thread(service, config, remote_service, remote_config)


def connect_subproc(server_file=None):
    conn = plain.connect()
    # The child's exit status: 0 once the connection closed cleanly.
    conn.proc = types.SimpleNamespace(wait=lambda: 0 if conn.closed else 1)
    return conn


def ssl_connect(address, port=None, **options):
    return tls.connect(**options)


original_connect_thread = rpyc.connect_thread
rpyc.connect_thread = factory.connect_thread = connect_thread
rpyc.classic.connect_thread = lambda: plain.connect()
rpyc.classic.connect = lambda *address, **options: plain.connect()
rpyc.classic.connect_subproc = connect_subproc
rpyc.classic.ssl_connect = ssl_connect


class StandInServer:
    """Stands in for a ThreadedServer(SlaveService) a test starts in its own
    process: the classic server is the host."""
    clients = ()

    def __init__(self, service, *args, **kwargs):
        assert service is rpyc.SlaveService, service
        self.logger = types.SimpleNamespace()

    def _start_in_thread(self):
        return types.SimpleNamespace(join=lambda: None)

    def close(self):
        pass


class Unconnected:
    """A connection the server could not make: using it raises why."""

    def __init__(self, error):
        self.error = error

    def __getattr__(self, name):
        raise self.error

    def close(self):
        pass


suite = unittest.defaultTestLoader.loadTestsFromNames(TESTS)
for name, module in list(sys.modules.items()):
    if name.startswith("tests.") and hasattr(module, "ThreadedServer"):
        module.ThreadedServer = module.ThreadPoolServer = StandInServer

# test_teleportation starts bin/rpyc_classic.py (oneshot) in setUp and waits
# for it in tearDown.
teleportation = sys.modules["tests.test_teleportation"].TeleportationTest


def teleportation_setup(self):
    self.proc = types.SimpleNamespace(communicate=lambda: (b"", b""))
    self.conn = rpyc.classic.connect("localhost", 0)


teleportation.setUp = teleportation_setup

# test_get_id_pack's setUpClass has the server connect to a second one
# (chained_conn): if it cannot, only the test that uses it fails.
id_pack = sys.modules["tests.test_get_id_pack"].Test_get_id_pack
id_pack_setup = id_pack.setUpClass.__func__


def id_pack_setup_class(cls):
    try:
        id_pack_setup(cls)
    except Exception as error:
        if not hasattr(cls, "conn_rpyc"):
            raise
        cls.chained_conn = Unconnected(error)


id_pack.setUpClass = classmethod(id_pack_setup_class)


# Each test's outcome, by its id without `tests.` (a failing setUpClass
# counts as one test of that name).
class Result(unittest.TextTestResult):
    outcomes = {}

    def record(self, test, outcome):
        if isinstance(test, unittest.TestCase):
            name = test.id()
        else:  # "setUpClass (tests.module.Class)"
            fixture, scope = re.fullmatch(r"(\w+) \((.*)\)", str(test)).groups()
            name = f"{scope}.{fixture}"
        self.outcomes[name.removeprefix("tests.")] = outcome

    def addSuccess(self, test):
        super().addSuccess(test)
        self.record(test, "ok")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self.record(test, "FAIL")

    def addError(self, test, err):
        super().addError(test, err)
        self.record(test, "ERROR")

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self.record(test, "skipped")


# A timeout (run.sh's) ends the run and the hosts (unittest records any
# exception a test raises but KeyboardInterrupt).
signal.signal(signal.SIGTERM, signal.default_int_handler)
hosts = []
try:
    plain = Host("plain")
    tls = Host("tls", "--tls-cert", f"{checkout}/tests/server.crt", "--tls-key", f"{checkout}/tests/server.key")
    unittest.TextTestRunner(sys.stdout, resultclass=Result).run(suite)
finally:
    for running in hosts:
        running.process.terminate()
        running.process.wait()

# expected.txt: "TEST fail|skip REASON" per line; every other test passes.
expected = {}
for line in open(expected_file):
    if line.strip() and not line.startswith("#"):
        name, outcome, reason = line.split(maxsplit=2)
        expected[name] = (outcome, reason.strip())

# Each test's outcome, then those that differ from the expected ones.
print()
wrong = []
for name, outcome in sorted(Result.outcomes.items()):
    want, reason = expected.get(name, ("ok", ""))
    got = {"ok": "ok", "FAIL": "fail", "ERROR": "fail", "skipped": "skip"}[outcome]
    if got != want:
        wrong.append(f"  {name}: {outcome}, expected {want}" + (f" ({reason})" if reason else ""))
    print(f"{outcome:8} {name}" + (f"  [{reason}]" if reason else "") + ("  <- UNEXPECTED" if got != want else ""))
for name in sorted(set(expected) - set(Result.outcomes)):
    wrong.append(f"  {name}: did not run, expected {expected[name][0]} (stale entry of expected.txt)")

counts = {o: list(Result.outcomes.values()).count(o) for o in ("ok", "FAIL", "ERROR", "skipped")}
print(f"\nRPyC's tests against wasm-rpyc classic: {len(Result.outcomes)} run, "
      + ", ".join(f"{n} {o}" for o, n in counts.items()))
if wrong:
    print(f"{len(wrong)} outcomes differ from {expected_file}:", *wrong, sep="\n")
    print(f"the hosts' logs: {logs}")
    sys.exit(1)
print(f"each as {expected_file} expects")
