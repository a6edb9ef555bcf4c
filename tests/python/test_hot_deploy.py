"""Hot deploy: `serve --watch` (or SIGHUP) replaces a served component from
its file; connections made after it get the new version, open ones keep
theirs, and a load running across the replacement sees no failed call."""
import os
import queue
import shutil
import signal
import threading
import time

import rpyc

from conftest import GUESTS, Host

V1, V2 = GUESTS / "calculator.wasm", GUESTS / "testbed.wasm"


def put(source, served):
    """Replaces the served file at once, as a deploy script should."""
    staging = served.with_suffix(".tmp")
    shutil.copy(source, staging)
    os.replace(staging, served)


def wait_for_log(host, text, timeout=300):
    """The line the host logs with `text`, once it does (after a compile:
    seconds, more on a loaded machine)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = host.log.get(timeout=0.2)
        except queue.Empty:
            continue
        if text in line:
            return line
    raise AssertionError(f"the host never logged {text!r}")


def check(conn, i):
    """One call of the version `conn` is served, checked."""
    if conn.root.get_service_name() == "CALCULATOR":
        assert conn.root.add(i, 1) == i + 1
        return "CALCULATOR"
    assert conn.root.echo_s32(i) == i
    return "TESTBED"


class Load:
    """Threads calling the service without pause: each keeps one connection
    for its whole run and opens a fresh one for every tenth call."""

    def __init__(self, port, threads=4):
        self.port, self.stop = port, threading.Event()
        self.calls, self.failures, self.fresh_versions, self.kept_versions = 0, [], [], set()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run) for _ in range(threads)]
        for thread in self.threads:
            thread.start()

    def run(self):
        kept = rpyc.connect("localhost", self.port)
        i = 0
        while not self.stop.is_set():
            i += 1
            try:
                kept_version = check(kept, i)
                if i % 10 == 0:
                    fresh = rpyc.connect("localhost", self.port)
                    version = check(fresh, i)
                    fresh.close()
                    with self.lock:
                        self.fresh_versions.append(version)
                with self.lock:
                    self.calls += 1
                    self.kept_versions.add(kept_version)
            except Exception as error:  # noqa: BLE001 - every failure counts
                with self.lock:
                    self.failures.append(repr(error))
        kept.close()

    def met(self, version, calls=0):
        """Waits until a fresh connection has met `version` and the load has
        made `calls` calls (a loaded machine is slow to get going)."""
        deadline = time.monotonic() + 120
        while True:
            with self.lock:
                if version in self.fresh_versions and self.calls >= calls:
                    return
            assert time.monotonic() < deadline, (version, self.calls, self.failures[:3])
            time.sleep(0.05)

    def finish(self):
        self.stop.set()
        for thread in self.threads:
            thread.join()


def test_watch_replaces_the_component_under_load_without_a_failed_call(tmp_path):
    served = tmp_path / "service.wasm"
    put(V1, served)
    host = Host(served, args=["--watch"])
    try:
        port = host.ports["service"]
        before = rpyc.connect("localhost", port)
        load = Load(port)
        # The load runs on the old version first, then across the
        # replacement and on the new one.
        load.met("CALCULATOR")
        put(V2, served)
        wait_for_log(host, "replaced: new connections get the new version")
        load.met("TESTBED", calls=load.calls + 100)
        after = rpyc.connect("localhost", port)
        load.finish()
        assert load.failures == [], load.failures[:5]
        assert load.calls > 100, load.calls
        assert load.kept_versions == {"CALCULATOR"}, "open connections keep their version"
        assert load.fresh_versions[0] == "CALCULATOR" and load.fresh_versions[-1] == "TESTBED"
        assert before.root.add(2, 3) == 5
        assert after.root.get_service_name() == "TESTBED"
        assert after.root.echo_s32(9) == 9
        before.close()
        after.close()
        assert host.alive()
    finally:
        host.stop()


def test_sighup_replaces_and_a_broken_file_changes_nothing(tmp_path):
    served = tmp_path / "service.wasm"
    put(V1, served)
    host = Host(served)
    try:
        port = host.ports["service"]
        put(V2, served)
        time.sleep(1.5)
        conn = rpyc.connect("localhost", port)
        assert conn.root.get_service_name() == "CALCULATOR", "without --watch, only SIGHUP replaces"
        host.process.send_signal(signal.SIGHUP)
        wait_for_log(host, "replaced: new connections get the new version")
        assert rpyc.connect("localhost", port).root.get_service_name() == "TESTBED"
        assert conn.root.add(1, 1) == 2

        served.write_bytes(b"not a component")
        host.process.send_signal(signal.SIGHUP)
        line = wait_for_log(host, "not replaced: still serving the previous version")
        assert "cannot be compiled" in line
        assert rpyc.connect("localhost", port).root.echo_s32(4) == 4
        assert host.alive()
    finally:
        host.stop()


MODULE = """import rpyc


class CounterService(rpyc.Service):
    def exposed_answer(self):
        return {answer}
"""


def test_watch_rebuilds_a_served_module_and_a_broken_edit_changes_nothing(tmp_path):
    module = tmp_path / "counter.py"
    module.write_text(MODULE.format(answer=1))
    host = Host(module, args=["--watch"])
    try:
        port = host.ports["counter"]
        conn = rpyc.connect("localhost", port)
        assert conn.root.answer() == 1
        module.write_text(MODULE.format(answer=2))
        # Building the module, then compiling it: minutes on a loaded machine.
        wait_for_log(host, "replaced: new connections get the new version", timeout=900)
        assert rpyc.connect("localhost", port).root.answer() == 2
        assert conn.root.answer() == 1, "an open connection keeps its version"

        module.write_text("import rpyc\n\nclass Broken(rpyc.Service)\n")
        line = wait_for_log(host, "not rebuilt: still serving the previous version", timeout=900)
        assert "counter.py:3: SyntaxError" in line, line
        assert rpyc.connect("localhost", port).root.answer() == 2
        assert host.alive()
    finally:
        host.stop()
