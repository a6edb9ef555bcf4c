"""Classic mode (`wasm-rpyc classic`, `serve --classic`) with the unmodified
`rpyc.classic` client: RPyC's SlaveService in a sandboxed interpreter per
connection. Everything classic mode gives a client works, and everything the
sandbox forbids fails with an exception that says so; the host and every
other connection carry on."""
import io
import os
import pickle
import re
import socket
import subprocess
import sys
import threading
import time

import pytest
import rpyc

from conftest import BINARY, GUESTS, PATIENT, Host


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """A directory granted to the sandbox at `/scratch`, and one granted
    read-only at `/ro`."""
    root = tmp_path_factory.mktemp("classic")
    (root / "scratch").mkdir()
    (root / "ro").mkdir()
    (root / "ro" / "given.txt").write_text("read me")
    return root


@pytest.fixture(scope="module")
def classic(scratch):
    """A host serving classic mode with two grants, an environment variable
    and a CPU budget a runaway call reaches soon (CPU time: far above what
    the other calls take, however loaded the machine)."""
    served = Host(args=[
        "--classic", "--dir", f"{scratch / 'scratch'}::/scratch", "--dir", f"{scratch / 'ro'}::/ro:ro",
        "--env", "GREETING=hello", "--cpu-budget", "3",
    ])
    yield served.classic_port
    assert served.alive(), "the host died during the classic tests"
    served.stop()


@pytest.fixture(scope="module")
def hurried():
    """Classic mode with a short deadline, for calls that only wait (on a
    loaded machine a computing guest gets little of a core, so the host
    above keeps the default deadline for its imports and uploads)."""
    served = Host(args=["--classic", "--call-deadline", "5"])
    yield served.classic_port
    assert served.alive(), "the host died during the classic tests"
    served.stop()


def connect(port):
    """A classic connection as RPyC users make it, patient with a loaded
    machine."""
    conn = rpyc.classic.connect("127.0.0.1", port)
    conn._config.update(PATIENT)
    return conn


@pytest.fixture
def conn(classic):
    connection = connect(classic)
    yield connection
    connection.close()


def raised(code, conn):
    """The exception `conn.execute(code)` raises."""
    with pytest.raises(Exception) as caught:
        conn.execute(code)
    return caught.value


def test_eval_execute_and_the_namespace(conn):
    assert conn.eval("1 + 1") == 2
    conn.execute("x = 5")
    assert conn.namespace["x"] == 5
    assert conn.eval("x * 2") == 10
    conn.namespace["y"] = 3
    assert conn.eval("x + y") == 8
    assert conn.root.get_service_name() == "SLAVE"


def test_modules_and_builtins(conn):
    assert conn.modules.math.sqrt(16) == 4.0
    assert conn.modules["os.path"].join("a", "b") == "a/b"
    assert conn.modules.sys.version_info[:2] == (3, 14)
    assert conn.builtins.len("four") == 4
    assert "json" in conn.modules
    assert "no_such_module" not in conn.modules


def test_any_pure_python_module_of_the_standard_library_imports_on_demand(conn):
    # None of these is in the interpreter's image: each is read from the
    # bundled standard library when first imported.
    assert conn.modules.statistics.mean([1, 2, 3, 6]) == 3
    assert str(conn.modules.fractions.Fraction(3, 6)) == "1/2"
    document = conn.modules["xml.dom.minidom"].parseString("<a><b/></a>")
    assert document.documentElement.tagName == "a"
    assert conn.modules.textwrap.shorten("classic mode in a sandbox", 16) == "classic [...]"


def test_remote_objects_have_classic_access(conn):
    conn.execute("class Thing:\n    def __init__(self):\n        self._private = 1\n")
    thing = conn.eval("Thing()")
    assert thing._private == 1
    thing.public = [1, 2]
    assert thing.public == [1, 2]
    del thing.public
    assert not conn.builtins.hasattr(thing, "public")
    assert "_private" in dir(thing)
    assert repr(conn.eval("[1, 'a']")) == "[1, 'a']"
    assert list(rpyc.buffiter(conn.builtins.range(2500))) == list(range(2500))
    assert conn.eval("{'k': 'v'}")["k"] == "v"
    with pytest.raises(KeyError):
        conn.eval("{}")["missing"]
    # The service object itself is not the peer's to change, as in RPyC.
    with pytest.raises(AttributeError, match="access denied"):
        conn.root.namespace = {}


def test_a_class_the_service_sends_is_a_class_on_the_client(conn):
    conn.execute("class Base:\n    pass\nclass Derived(Base):\n    pass\n")
    base, derived = conn.namespace["Base"], conn.namespace["Derived"]
    instance = conn.eval("Derived()")
    assert isinstance(instance, derived) and isinstance(instance, base)
    assert not isinstance(conn.eval("Base()"), derived)
    assert not isinstance(7, derived)
    assert isinstance(conn.builtins.KeyError(), conn.builtins.LookupError)
    assert conn.builtins.issubclass(derived, base)
    assert derived.__name__ == "Derived"
    assert conn.eval("lambda cls: cls.__name__")(derived) == "Derived"


def test_obtain_and_deliver_pickle_both_ways(conn):
    remote = conn.eval("[1, {'two': 2}, (3,)]")
    assert rpyc.classic.obtain(remote) == [1, {"two": 2}, (3,)]
    delivered = rpyc.classic.deliver(conn, {"a": [1, 2]})
    assert conn.builtins.type(delivered).__name__ == "dict"
    assert delivered["a"][1] == 2


def test_a_pickle_that_does_not_load_is_the_unpicklers_own_error(conn):
    loads = conn.modules["rpyc.lib.compat"].pickle.loads
    with pytest.raises(pickle.UnpicklingError):
        loads(b"not a pickle")
    assert conn.eval("1") == 1


def test_files_only_under_the_granted_directories(conn, scratch):
    with conn.builtins.open("/scratch/written.txt", "w") as remote:
        remote.write("from the sandbox")
    assert (scratch / "scratch" / "written.txt").read_text() == "from the sandbox"
    assert conn.builtins.open("/ro/given.txt").read() == "read me"
    with pytest.raises(PermissionError):
        conn.builtins.open("/ro/new.txt", "w")
    with pytest.raises(FileNotFoundError):
        conn.builtins.open("/etc/passwd")
    with pytest.raises(FileNotFoundError):
        conn.builtins.open(str(scratch / "scratch" / "written.txt"))


def test_upload_and_download_files_and_directories(conn, scratch, tmp_path):
    local = tmp_path / "tree"
    (local / "sub").mkdir(parents=True)
    (local / "top.txt").write_text("top")
    (local / "sub" / "data.bin").write_bytes(os.urandom(1 << 20))
    rpyc.classic.upload(conn, str(local), "/scratch/tree")
    granted = scratch / "scratch" / "tree"
    assert (granted / "sub" / "data.bin").read_bytes() == (local / "sub" / "data.bin").read_bytes()
    back = tmp_path / "back"
    rpyc.classic.download(conn, "/scratch/tree", str(back))
    assert (back / "top.txt").read_text() == "top"
    assert (back / "sub" / "data.bin").read_bytes() == (local / "sub" / "data.bin").read_bytes()


def test_redirected_stdio_prints_on_the_client(conn):
    out = io.StringIO()
    saved = sys.stdout
    sys.stdout = out
    try:
        with rpyc.classic.redirected_stdio(conn):
            conn.execute("print('hello from the sandbox')")
    finally:
        sys.stdout = saved
    assert out.getvalue() == "hello from the sandbox\n"


def test_exceptions_reach_the_client_as_their_own_classes(conn):
    error = raised("def inner():\n    return 1 / 0\ninner()", conn)
    assert isinstance(error, ZeroDivisionError)
    # The remote traceback names where it was raised, as RPyC's server's does.
    remote = str(error).split("========= Remote Traceback (1) =========")[1]
    assert "Traceback (most recent call last)" in remote and "in inner" in remote
    import json

    assert isinstance(raised("import json; json.loads('{')", conn), json.JSONDecodeError)
    conn.execute("class Mine(Exception):\n    pass\n")
    mine = raised("raise Mine('custom')", conn)
    assert "custom" in str(mine)


def test_the_server_calls_back_into_the_client(conn):
    assert conn.eval("lambda f: f(2) + 1")(lambda x: x * 10) == 21
    # The service reads the client's dict through its netref.
    assert rpyc.classic.obtain(conn.builtins.dict({"a": 1})) == {"a": 1}
    # Classic goes both ways: the service reaches the client's modules.
    assert conn.root.getconn().modules["os"] is os
    # The client's objects go back as themselves, however the service
    # passes them: kept, returned, passed to themselves.
    kept = [1]
    conn.namespace["kept"] = kept
    assert conn.namespace["kept"] is kept
    assert conn.eval("lambda f: f(f)")(lambda g: 7) == 7

    class Plain:
        pass

    assert conn.eval("lambda a: a == a")(Plain()) is True
    assert conn.eval("lambda a: a == 1")(Plain()) is False


def test_teleporting_from_another_python_version_says_which_versions(conn):
    def add(a, b):
        return a + b

    if sys.version_info[:2] == (3, 14):
        assert rpyc.classic.teleport_function(conn, add)(2, 3) == 5
        return
    with pytest.raises(ValueError) as caught:
        rpyc.classic.teleport_function(conn, add)
    message = str(caught.value)
    assert "Python {}.{}".format(*sys.version_info[:2]) in message and "Python 3.14" in message
    assert conn.eval("1") == 1


@pytest.mark.parametrize("code", [
    "import os; os.system('true')",
    "import subprocess; subprocess.run(['true'])",
    "import os; os.fork()",
    "import os; os.execv('/bin/true', ['true'])",
])
def test_the_sandbox_runs_no_processes(conn, code):
    error = raised(code, conn)
    assert isinstance(error, PermissionError)
    assert "the sandbox runs no processes" in str(error)


@pytest.mark.parametrize("code", [
    "import socket; socket.create_connection(('127.0.0.1', PORT))",
    "import socket; socket.create_connection(('example.org', 80))",
    "import socket; socket.socket().bind(('127.0.0.1', 0))",
])
def test_the_sandbox_grants_no_network(conn, classic, code):
    error = raised(code.replace("PORT", str(classic)), conn)
    assert isinstance(error, PermissionError)
    assert "the sandbox grants no network" in str(error)


def test_the_sandbox_starts_no_threads(conn):
    error = raised("import threading; threading.Thread(target=print).start()", conn)
    assert isinstance(error, RuntimeError)
    assert conn.eval("2") == 2


def test_the_environment_is_what_was_granted(conn):
    assert rpyc.classic.obtain(conn.eval("dict(__import__('os').environ)")) == {"GREETING": "hello"}


def test_each_connection_has_an_interpreter_of_its_own(classic):
    first, second = connect(classic), connect(classic)
    first.execute("x = 1")
    first.modules.sys.marker = "first"
    assert "x" not in second.namespace
    assert not second.builtins.hasattr(second.modules.sys, "marker")
    first.close()
    second.close()


@pytest.mark.parametrize("host, code", [
    ("classic", "while True: pass"),  # past its CPU budget
    ("hurried", "import time; time.sleep(600)"),  # past its deadline
])
def test_a_call_past_its_budget_times_out_and_the_connection_gets_a_fresh_interpreter(request, host, code):
    port = request.getfixturevalue(host)
    victim, bystander = connect(port), connect(port)
    victim.execute("kept = 1")
    bystander.execute("mine = 2")
    with pytest.raises(TimeoutError):
        victim.execute(code)
    assert victim.eval("1 + 1") == 2
    with pytest.raises(NameError):
        victim.eval("kept")
    assert bystander.eval("mine") == 2
    victim.close()
    bystander.close()


def test_a_memory_hog_gets_memory_error_and_the_interpreter_carries_on(conn):
    conn.execute("kept = 'still here'")
    with pytest.raises(MemoryError):
        conn.execute("hog = bytearray(2**29)")
    assert conn.eval("kept") == "still here"


def test_two_hundred_connections_at_once(classic):
    connections = [connect(classic) for _ in range(200)]
    for number, conn in enumerate(connections):
        conn.execute(f"n = {number}")
    assert [conn.eval("n") for conn in connections] == list(range(200))
    for conn in connections:
        conn.close()


def test_a_client_that_disconnects_mid_call_leaves_the_host_serving(classic):
    leaving = connect(classic)
    started = threading.Event()

    def run():
        started.set()
        try:
            leaving.execute("import time; time.sleep(30)")
        except Exception:  # noqa: BLE001 - the connection is closed under it
            pass

    threading.Thread(target=run, daemon=True).start()
    started.wait()
    time.sleep(0.5)
    leaving._channel.stream.sock.shutdown(socket.SHUT_RDWR)
    after = connect(classic)
    assert after.eval("6 * 7") == 42
    after.close()


def test_a_closed_port_is_a_connection_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConnectionRefusedError):
        rpyc.classic.connect("127.0.0.1", port)


def test_shared_mode_serves_one_interpreter_to_every_connection():
    served = Host(args=["--classic", "--shared"])
    try:
        first, second = connect(served.classic_port), connect(served.classic_port)
        first.modules.sys.marker = "set by the first"
        assert second.modules.sys.marker == "set by the first"
        # Each connection keeps a namespace of its own, as RPyC's do.
        first.execute("x = 1")
        assert "x" not in second.namespace
        first.close()
        second.close()
    finally:
        served.stop()


def test_the_classic_command_takes_rpyc_classics_options(pki, tmp_path):
    """`wasm-rpyc classic` with rpyc_classic's spellings: `-p`, `--logfile`,
    `--ssl-certfile`, `--ssl-keyfile`, `--ssl-cafile` (clients must present
    a certificate the CA signed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path / "classic.log"
    process = subprocess.Popen(
        [str(BINARY), "classic", "-p", str(port), "--logfile", str(log),
         "--ssl-certfile", str(pki / "server.pem"), "--ssl-keyfile", str(pki / "server.key"),
         "--ssl-cafile", str(pki / "ca.pem")],
        env={**os.environ, "NO_COLOR": "1", "RUST_LOG": "info"},
    )
    try:
        deadline = time.monotonic() + 300
        while f"service=SLAVE address=127.0.0.1:{port}" not in (log.read_text() if log.exists() else ""):
            assert process.poll() is None, "the host exited"
            assert time.monotonic() < deadline, "the host did not serve in time"
            time.sleep(0.1)
        conn = rpyc.classic.ssl_connect("localhost", port, keyfile=str(pki / "client.key"),
                                        certfile=str(pki / "client.pem"), ca_certs=str(pki / "ca.pem"))
        assert conn.eval("1 + 1") == 2
        conn.close()
        # A client without TLS, or without a certificate, gets nowhere; the
        # host goes on.
        with pytest.raises(Exception):
            rpyc.classic.connect("localhost", port)
        with pytest.raises(Exception):
            rpyc.classic.ssl_connect("localhost", port, ca_certs=str(pki / "ca.pem")).eval("1")
        conn = rpyc.classic.ssl_connect("localhost", port, keyfile=str(pki / "client.key"),
                                        certfile=str(pki / "client.pem"), ca_certs=str(pki / "ca.pem"))
        assert conn.eval("2 + 2") == 4
        conn.close()
    finally:
        process.terminate()
        process.wait(timeout=60)


def test_a_config_file_serves_classic_beside_a_component(scratch, tmp_path):
    config = tmp_path / "services.toml"
    config.write_text(f"""
[[service]]
classic = true
port = 0
dirs = ["{scratch / 'scratch'}::/data"]

[[service]]
component = "{GUESTS / 'calculator.wasm'}"
port = 0
""")
    process = subprocess.Popen([str(BINARY), "serve", "--config", str(config)], stderr=subprocess.PIPE,
                               text=True, env={**os.environ, "NO_COLOR": "1", "RUST_LOG": "info"})
    try:
        ports = {}
        for line in process.stderr:
            found = re.search(r"serving service=(\S+) address=\S+:(\d+)", line)
            if found:
                ports[found[1]] = int(found[2])
                if len(ports) == 2:
                    break
        conn = connect(ports["SLAVE"])
        assert conn.builtins.open("/data/given.txt", "w").write("x") == 1
        conn.close()
        assert rpyc.connect("127.0.0.1", ports["CALCULATOR"]).root.add(4, 7) == 11
    finally:
        process.terminate()
        process.wait(timeout=60)
