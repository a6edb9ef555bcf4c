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

from conftest import BINARY, GUESTS, PATIENT, POLYGLOT, Host
from test_tls import tls_host


def ping(*args, timeout=20):
    return subprocess.run([str(BINARY), "ping", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "NO_COLOR": "1"})


def cpu_time(pid):
    """The CPU time, in seconds, process `pid` has used (Linux's /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        # The fields after the name: utime is the 14th, stime the 15th.
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


def test_ping_over_tls(pki):
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
    # It compiles its components first: a Python one for seconds, minutes
    # on a loaded machine. One that exits is reported at once.
    deadline = time.monotonic() + 600
    while ping(f"127.0.0.1:{port}", "--timeout", "1").returncode != 0:
        assert process.poll() is None, stop(process)
        assert time.monotonic() < deadline, "the host did not answer"
        time.sleep(0.1)
    return process, port


def stop(process):
    """Stops the host (SIGTERM) and returns what it logged."""
    if process.poll() is None:
        process.terminate()
    process.wait(timeout=60)
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
    # A call in progress that says so: the service calls this client back,
    # and the callback holds it until the test is done (guessing how long a
    # call takes to reach the service fails on a loaded machine).
    entered, done = threading.Event(), threading.Event()

    def hold(_):
        entered.set()
        done.wait(120)
        return "late"

    def call():
        try:
            conn.root.call_with(hold, [1])
        except Exception:  # the host goes away in the middle of the call
            pass

    threading.Thread(target=call, daemon=True).start()
    try:
        assert entered.wait(60), "the call never reached the service"
        started = time.monotonic()
        stderr = stop(process)
        # After the grace (0.5 s), not the call (the 30 s the host waits for
        # the callback): the bound leaves a loaded machine seconds to exit.
        assert time.monotonic() - started < 15, stderr
        assert "still open after 500ms" in stderr
    finally:
        done.set()


def test_shutdown_does_not_wait_for_clients_that_have_not_spoken():
    # A grace far longer than the bound below: had the host waited for the
    # silent client, it would take it all.
    process, port = serve(GUESTS / "testbed.wasm", "--shutdown-grace", "60")
    silent = rpyc.connect("127.0.0.1", port)  # RPyC's client says nothing until it calls
    time.sleep(0.2)
    started = time.monotonic()
    stderr = stop(process)
    assert time.monotonic() - started < 15, stderr
    assert "still open" not in stderr
    silent.close()


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
    started = time.monotonic()
    process, _ = serve(component, "--cache-dir", cache)
    cold = time.monotonic() - started
    first = stop(process)
    assert "hits=0 misses=1" in first, first
    started = time.monotonic()
    process, _ = serve(component, "--cache-dir", cache)
    answered = time.monotonic() - started
    second = stop(process)
    assert "hits=1 misses=0" in second, second
    # Compiled cold it takes seconds; from the cache, milliseconds. Both
    # starts also pay for starting processes (the host's, the pings'), which
    # a loaded machine slows as much as the compile: so the bound is the
    # cold start's, not one of the clock.
    assert answered < cold / 4, f"answered {answered:.3f} s after starting, {cold:.3f} s cold"


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
        wait_for_log(process, "unchanged: not recompiled", within=120)
        served.write_bytes((GUESTS / "testbed.wasm").read_bytes())
        process.send_signal(signal.SIGHUP)
        # After compiling it: seconds on a loaded machine.
        wait_for_log(process, "replaced: new connections get the new version", within=300)
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


def test_common_flags_fall_back_to_environment_variables(pki):
    port = free_port()
    log = tempfile.TemporaryFile("a+")
    env = {**os.environ, "WASM_RPYC_PORT": str(port), "WASM_RPYC_LOG_FORMAT": "json",
           "WASM_RPYC_TLS_CERT": str(pki / "server.pem"),
           "WASM_RPYC_TLS_KEY": str(pki / "server.key")}
    process = subprocess.Popen([str(BINARY), "serve", str(GUESTS / "calculator.wasm")],
                               stderr=log, text=True, env=env)
    process.log = log
    try:
        deadline = time.monotonic() + 600
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


def scrape(port, method="GET", path="/metrics"):
    """The status, headers and body of one request to the metrics port."""
    import http.client
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()
    finally:
        connection.close()


def samples(text):
    """The samples of a scrape: {(name, frozenset of label pairs): value}."""
    import re
    found = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r'([a-z_]+)(?:\{(.*)\})? (\S+)', line)
        assert match, line
        labels = frozenset(re.findall(r'([a-z_]+)="((?:[^"\\]|\\.)*)"', match[2] or ""))
        found[(match[1], labels)] = float(match[3])
    return found


def sample(found, name, **labels):
    return found.get((name, frozenset(labels.items())), 0)


OPEN = "wasm_rpyc_connections_open"


def scraped(port, condition, within=60):
    """The samples of the first scrape that meets `condition`."""
    deadline = time.monotonic() + within
    while True:
        found = samples(scrape(port)[2])
        if condition(found):
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.05)


def test_metrics_count_the_traffic_a_host_served():
    metrics_port = free_port()
    process, port = serve(GUESTS / "testbed.wasm", "--metrics", f"127.0.0.1:{metrics_port}",
                          "--max-frame", "1", "--max-connections-per-ip", "3")
    try:
        # Once the ping that found the host has gone, four connections from
        # this address: the fourth is refused.
        scraped(metrics_port, lambda found: sample(found, OPEN, service="TESTBED") == 0)
        conn = rpyc.connect("127.0.0.1", port)
        for n in range(3):
            assert conn.root.echo_s32(n) == n
        for _ in range(2):
            with pytest.raises(ValueError):
                getattr(conn.root, "raise")("ValueError", "no")
        with pytest.raises(Exception, match="trapped"):
            conn.root.panic("boom")
        assert conn.root.echo_s32(7) == 7  # a fresh instance after the trap
        second = rpyc.connect("127.0.0.1", port)
        assert second.root.echo_s32(2) == 2  # RPyC's client says nothing until it calls
        too_large = rpyc.connect("127.0.0.1", port)
        with pytest.raises((EOFError, ConnectionError)):
            rpyc.connect("127.0.0.1", port).root.echo_s32(1)
        with pytest.raises((EOFError, ConnectionError)):
            too_large.root.echo_string("x" * 2_000_000)

        status, headers, text = scrape(metrics_port)
        assert status == 200
        assert headers["Content-Type"].startswith("application/openmetrics-text")
        assert text.endswith("# EOF\n")
        # The connection closed for its frame is counted out once its task ends.
        found = scraped(metrics_port, lambda found: sample(found, OPEN, service="TESTBED") == 2)
        calls = "wasm_rpyc_calls_total"
        assert sample(found, calls, service="TESTBED", method="echo_s32", outcome="ok") == 5
        assert sample(found, calls, service="TESTBED", method="raise", outcome="ValueError") == 2
        assert sample(found, calls, service="TESTBED", method="panic",
                      outcome="RuntimeError") == 1
        assert sample(found, "wasm_rpyc_call_duration_seconds_count",
                      service="TESTBED", method="echo_s32") == 5
        assert sample(found, "wasm_rpyc_traps_total", service="TESTBED",
                      kind="UnreachableCodeReached") == 1
        refused = sample(found, "wasm_rpyc_connections_refused_total", service="TESTBED",
                         reason="per_address")
        assert refused == 1
        assert sample(found, "wasm_rpyc_frames_too_large_total", direction="in") == 1
        # The pings, the four connections above but the refused one.
        assert sample(found, "wasm_rpyc_connections_accepted_total", service="TESTBED") >= 4
        assert sample(found, "wasm_rpyc_instances") >= 2
        assert sample(found, "wasm_rpyc_compile_duration_seconds_count") == 1
        hits = sample(found, "wasm_rpyc_compile_cache_hits_total")
        misses = sample(found, "wasm_rpyc_compile_cache_misses_total")
        assert hits + misses == 1
        conn.close()
        second.close()

        status, _, body = scrape(metrics_port, method="HEAD")
        assert (status, body) == (200, "")
        assert scrape(metrics_port, path="/")[0] == 404
        assert scrape(metrics_port, method="POST")[0] == 405
    finally:
        stop(process)


def test_metrics_count_deployments_and_their_cache():
    metrics_port, deploy_port = free_port(), free_port()
    process, _ = serve(GUESTS / "calculator.wasm", "--metrics", f"127.0.0.1:{metrics_port}",
                       "--allow-deploy", "--deploy-port", deploy_port)
    try:
        conn = rpyc.connect("127.0.0.1", deploy_port, config=PATIENT)
        calculator = (GUESTS / "calculator.wasm").read_bytes()
        first = conn.root.deploy(calculator)
        second = conn.root.deploy(calculator)
        assert first.add(1, 2) + second.add(3, 4) == 10
        with pytest.raises(ValueError):
            conn.root.deploy(b"not a component")
        found = samples(scrape(metrics_port)[2])
        assert sample(found, "wasm_rpyc_deployments_total", outcome="deployed") == 2
        assert sample(found, "wasm_rpyc_deployments_total", outcome="failed") == 1
        assert sample(found, "wasm_rpyc_deployments_live") == 2
        assert sample(found, "wasm_rpyc_deploy_cache_lookups_total", outcome="miss") == 2
        assert sample(found, "wasm_rpyc_deploy_cache_lookups_total", outcome="hit") == 1
        assert sample(found, "wasm_rpyc_deploy_cache_components") == 1
        assert sample(found, "wasm_rpyc_deploy_cache_bytes") > 0
        calls = "wasm_rpyc_calls_total"
        assert sample(found, calls, service="DEPLOY", method="deploy", outcome="ok") == 2
        assert sample(found, calls, service="DEPLOY", method="deploy", outcome="ValueError") == 1
        conn.close()
        scraped(metrics_port, lambda found: sample(found, "wasm_rpyc_deployments_live") == 0)
    finally:
        stop(process)


def test_metrics_port_must_be_free():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = "127.0.0.1:%d" % taken.getsockname()[1]
        answer = subprocess.run([str(BINARY), "serve", "-p", "0", str(GUESTS / "calculator.wasm"),
                                 "--metrics", address], capture_output=True, text=True, timeout=60)
    assert answer.returncode != 0
    assert f"cannot listen on {address} for metrics" in answer.stderr


def test_a_config_file_serves_services_with_their_own_grants_and_limits(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "note.txt").write_text("hello")
    (tmp_path / "sandbox.wasm").write_bytes((GUESTS / "sandbox.wasm").read_bytes())
    reader_port, limited_port, metrics_port = free_port(), free_port(), free_port()
    config = tmp_path / "services.toml"
    config.write_text(f"""
metrics = "127.0.0.1:{metrics_port}"

[[service]]
component = "sandbox.wasm"  # beside the file
port = {reader_port}
aliases = ["READER"]
dirs = ["data::/data:ro"]
env = {{ GREETING = "hi" }}

[[service]]
component = "{GUESTS / 'testbed.wasm'}"
port = {limited_port}
aliases = ["LIMITED", "TESTBED"]
cpu-budget = 0.2
max-frame = 1
max-connections = 1
shared = true
""")
    log = tempfile.TemporaryFile("a+")
    process = subprocess.Popen([str(BINARY), "serve", "--config", str(config)], stderr=log,
                               text=True, env={**os.environ, "NO_COLOR": "1"})
    process.log = log
    try:
        deadline = time.monotonic() + 600
        while ping(f"127.0.0.1:{limited_port}", "--timeout", "1").returncode != 0:
            assert process.poll() is None, stop(process)
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert ping(f"127.0.0.1:{reader_port}").stdout == "READER\n"
        reader = rpyc.connect("127.0.0.1", reader_port)
        assert reader.root.read_file("/data/note.txt") == "hello"
        assert reader.root.env("GREETING") == "hi"
        with pytest.raises(Exception):
            reader.root.write_file("/data/other.txt", "no")
        # The second service has its own names, no grants, and its own limits
        # (its one slot free once the ping has gone).
        scraped(metrics_port, lambda found: sample(found, OPEN, service="LIMITED") == 0)
        # Its spin lasts until its budget of CPU time, which a loaded machine
        # hands the guests (at the lowest priority) slowly.
        limited = rpyc.connect("127.0.0.1", limited_port, config=PATIENT)
        assert limited.root.get_service_aliases() == ("LIMITED", "TESTBED")
        # Shared: its connections are numbered from 1 (an instance of its own is 0).
        assert limited.root.connection() >= 1
        # The host's CPU time, not the clock's, tells its budget (0.2 s) from
        # the default (10 s): a loaded machine stretches the clock's.
        spent = cpu_time(process.pid)
        with pytest.raises(TimeoutError, match="used up its CPU budget"):
            limited.root.spin()
        spent = cpu_time(process.pid) - spent
        assert spent < 5, f"its CPU budget is 0.2 s, not the default 10 s: it spent {spent:.2f} s"
        # Its one slot is taken: a second client is refused.
        with pytest.raises(Exception, match="connections"):
            rpyc.connect("127.0.0.1", limited_port).root.echo_s32(1)
        # A frame of 2 MB: past the second service's limit, within the first's.
        with pytest.raises((EOFError, ConnectionError)):
            limited.root.echo_string("x" * 2_000_000)
        with pytest.raises(Exception) as raised:
            reader.root.read_file("/data/" + "x" * 2_000_000)
        assert not isinstance(raised.value, (EOFError, ConnectionError))
        assert reader.root.read_file("/data/note.txt") == "hello"
    finally:
        logged = stop(process)
    assert "serving" in logged, logged
