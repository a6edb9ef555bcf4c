"""Running the host: `wasm-rpyc ping`, the log options and the limits set
from the command line, each checked on a real `wasm-rpyc serve` process."""
import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest
import rpyc

from conftest import BINARY, GUESTS, POLYGLOT, Host
from test_tls import pki, tls_host  # noqa: F401 (the fixture is used by name)


def ping(*args, timeout=20):
    return subprocess.run([str(BINARY), "ping", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "NO_COLOR": "1"})


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_ping_prints_the_name_of_a_live_service(calculator_port):
    answer = ping(f"127.0.0.1:{calculator_port}")
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout == "CALCULATOR\n"


def test_ping_fails_clearly_on_a_dead_port():
    port = free_port()
    answer = ping(f"127.0.0.1:{port}")
    assert answer.returncode != 0
    assert f"127.0.0.1:{port} did not answer" in answer.stderr
    assert "refused" in answer.stderr.lower()


def test_ping_gives_up_after_its_timeout_on_a_silent_port():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = "127.0.0.1:%d" % silent.getsockname()[1]
        started = time.monotonic()
        answer = ping(address, "--timeout", "0.5")
        elapsed = time.monotonic() - started
    assert answer.returncode != 0
    assert "did not answer within 500ms" in answer.stderr
    assert elapsed < 5


def test_ping_over_tls(pki):  # noqa: F811 (the fixture)
    host = tls_host(pki)
    try:
        address = f"127.0.0.1:{host.ports['calculator']}"
        answer = ping(address, "--tls-ca", str(pki / "ca.pem"))
        assert answer.returncode == 0, answer.stderr
        assert answer.stdout == "CALCULATOR\n"
        # Without TLS the handshake never happens: the host closes the socket.
        assert ping(address, "--timeout", "2").returncode != 0
        wrong = ping(address, "--tls-ca", str(pki / "ca.pem"), "--tls-server-name", "elsewhere")
        assert wrong.returncode != 0
        assert "certificate" in wrong.stderr.lower()
        missing = ping(address, "--tls-ca", str(pki / "missing.pem"))
        assert missing.returncode != 0
        assert "missing.pem" in missing.stderr and "did not answer" not in missing.stderr
    finally:
        host.stop()


def serve(*args):
    """`wasm-rpyc serve ARGS` on a port of its own, once `ping` answers; its
    stderr goes to a file (a pipe nobody reads could fill and stall it)."""
    port = free_port()
    log = tempfile.TemporaryFile("a+")  # appended to: reading does not move the writes
    process = subprocess.Popen([str(BINARY), "serve", "-p", str(port), *map(str, args)],
                               stderr=log, text=True,
                               env={k: v for k, v in os.environ.items() if k != "NO_COLOR"})
    process.log = log
    deadline = time.monotonic() + 60
    while ping(f"127.0.0.1:{port}", "--timeout", "1").returncode != 0:
        assert process.poll() is None, stop(process)
        assert time.monotonic() < deadline, "the host did not answer"
        time.sleep(0.1)
    return process, port


def stop(process):
    """Stops the host (SIGTERM) and returns what it logged."""
    if process.poll() is None:
        process.terminate()
    process.wait(timeout=20)
    process.log.seek(0)
    return process.log.read()


def test_json_logs_parse_and_carry_no_escape_codes():
    process, port = serve(GUESTS / "calculator.wasm", "--log-format", "json")
    stderr = stop(process)
    assert "\x1b" not in stderr
    lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]
    serving = [line for line in lines if line["fields"].get("message") == "serving"]
    assert serving, lines
    assert serving[0]["level"] == "INFO"
    assert serving[0]["fields"]["address"] == f"127.0.0.1:{port}"
    assert {"timestamp", "target"} <= serving[0].keys()


def test_text_logs_into_a_pipe_carry_no_escape_codes_and_quiet_keeps_errors_only():
    process, _ = serve(GUESTS / "calculator.wasm")
    stderr = stop(process)
    assert "serving" in stderr
    assert "\x1b" not in stderr, "no colour when stderr is not a terminal"
    process, _ = serve(GUESTS / "calculator.wasm", "-q")
    assert stop(process) == ""


def test_max_frame_refuses_larger_frames():
    process, port = serve(GUESTS / "testbed.wasm", "--max-frame", "1")
    try:
        conn = rpyc.connect("127.0.0.1", port)
        assert len(conn.root.echo_string("x" * 500_000)) == 500_000
        with pytest.raises((EOFError, ConnectionError)):
            conn.root.echo_string("x" * 2_000_000)
    finally:
        stop(process)


def test_call_timeout_bounds_the_wait_for_a_callback():
    def slow(_):
        time.sleep(2.5)
        return "late"

    process, port = serve(GUESTS / "testbed.wasm", "--call-timeout", "1")
    try:
        conn = rpyc.connect("127.0.0.1", port, config={"sync_request_timeout": 30})
        with pytest.raises(Exception) as raised:
            conn.root.call_with(slow, [1])
        assert "TimeoutError" in str(raised.value) or "timed out" in str(raised.value).lower()
    finally:
        stop(process)
    # The default waits long enough for the same callback.
    process, port = serve(GUESTS / "testbed.wasm")
    try:
        conn = rpyc.connect("127.0.0.1", port, config={"sync_request_timeout": 30})
        assert conn.root.call_with(slow, [1]) == "late"
    finally:
        stop(process)


def test_shutdown_grace_bounds_how_long_a_call_in_progress_holds_the_exit():
    process, port = serve(GUESTS / "testbed.wasm", "--shutdown-grace", "0.5")
    conn = rpyc.connect("127.0.0.1", port)

    def sleep():
        try:
            conn.root.sleep(20_000)
        except Exception:  # the host goes away in the middle of the call
            pass

    threading.Thread(target=sleep, daemon=True).start()
    time.sleep(0.5)
    started = time.monotonic()
    stderr = stop(process)
    assert time.monotonic() - started < 4, stderr
    assert "still open after 500ms" in stderr


def test_a_dir_granted_without_a_guest_path_is_seen_at_the_same_path(tmp_path):
    (tmp_path / "note.txt").write_text("hello")
    process, port = serve(GUESTS / "sandbox.wasm", "--dir", f"{tmp_path}:ro")
    try:
        conn = rpyc.connect("127.0.0.1", port)
        assert conn.root.read_file(str(tmp_path / "note.txt")) == "hello"
        with pytest.raises(Exception):
            conn.root.write_file(str(tmp_path / "other.txt"), "no")
        assert not (tmp_path / "other.txt").exists()
    finally:
        stop(process)


def test_a_second_start_loads_the_python_calculator_from_the_cache(tmp_path):
    component = POLYGLOT / "python" / "calculator.wasm"
    assert component.exists(), "run services/build.sh first"
    cache = tmp_path / "cache"
    process, _ = serve(component, "--cache-dir", cache)
    first = stop(process)
    assert "hits=0 misses=1" in first, first
    started = time.monotonic()
    process, _ = serve(component, "--cache-dir", cache)
    answered = time.monotonic() - started
    second = stop(process)
    assert "hits=1 misses=0" in second, second
    # Compiled cold it takes seconds; from the cache, milliseconds.
    assert answered < 0.5, f"answered {answered:.3f} s after starting"


def test_the_cache_directory_must_be_private(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    answer = subprocess.run([str(BINARY), "serve", "-p", "0", str(GUESTS / "calculator.wasm"),
                             "--cache-dir", str(shared)], capture_output=True, text=True, timeout=60)
    assert answer.returncode != 0
    assert "open to other users" in answer.stderr


def test_sighup_recompiles_only_files_that_changed(tmp_path):
    served = tmp_path / "service.wasm"
    served.write_bytes((GUESTS / "calculator.wasm").read_bytes())
    process, port = serve(served)
    try:
        process.send_signal(signal.SIGHUP)
        wait_for_log(process, "unchanged: not recompiled")
        served.write_bytes((GUESTS / "testbed.wasm").read_bytes())
        process.send_signal(signal.SIGHUP)
        wait_for_log(process, "replaced: new connections get the new version")
        assert rpyc.connect("127.0.0.1", port).root.echo_string("hi") == "hi"
    finally:
        log = stop(process)
    assert log.count("unchanged: not recompiled") == 1, log


def wait_for_log(process, text, within=30):
    deadline = time.monotonic() + within
    while True:
        process.log.seek(0)
        if text in process.log.read():
            return
        assert time.monotonic() < deadline, f"{text!r} not logged"
        time.sleep(0.05)


def test_common_flags_fall_back_to_environment_variables(pki):  # noqa: F811 (the fixture)
    port = free_port()
    log = tempfile.TemporaryFile("a+")
    env = {**os.environ, "WASM_RPYC_PORT": str(port), "WASM_RPYC_LOG_FORMAT": "json",
           "WASM_RPYC_TLS_CERT": str(pki / "server.pem"),
           "WASM_RPYC_TLS_KEY": str(pki / "server.key")}
    process = subprocess.Popen([str(BINARY), "serve", str(GUESTS / "calculator.wasm")],
                               stderr=log, text=True, env=env)
    process.log = log
    try:
        deadline = time.monotonic() + 60
        while True:
            answer = ping(f"127.0.0.1:{port}", "--tls-ca", str(pki / "ca.pem"), "--timeout", "1")
            if answer.returncode == 0:
                break
            assert process.poll() is None and time.monotonic() < deadline, answer.stderr
            time.sleep(0.1)
        assert answer.stdout == "CALCULATOR\n"
    finally:
        logged = stop(process)
    assert all(json.loads(line) for line in logged.splitlines() if line.strip()), logged
