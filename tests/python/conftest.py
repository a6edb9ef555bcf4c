"""Starts `wasm-rpyc serve` as a separate process serving the calculator and
the test guest, both built by `cargo test --release --workspace`."""
import atexit
import os
import pathlib
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
BINARY = TARGET / "release" / "wasm-rpyc"
GUESTS = TARGET / "guests" / "wasm32-wasip2" / "release"
# The Python and JavaScript example services, built by `services/build.sh`.
POLYGLOT = TARGET / "polyglot"
# Every host the tests start keeps its compile cache here, not in the
# user's cache directory (mkdtemp makes it private, as the host requires).
# pytest-xdist's workers inherit it from the process that made it, so each
# component is compiled once for all of them; that process removes it.
if "WASM_RPYC_CACHE_DIR" not in os.environ:
    os.environ["WASM_RPYC_CACHE_DIR"] = tempfile.mkdtemp(prefix="wasm-rpyc-test-cache-")
    atexit.register(shutil.rmtree, os.environ["WASM_RPYC_CACHE_DIR"], ignore_errors=True)
    # `serve module.py` keeps what it builds beside it.
    atexit.register(shutil.rmtree, os.environ["WASM_RPYC_CACHE_DIR"] + "-builds", ignore_errors=True)


class Host:
    """A running `wasm-rpyc serve`: the port of each component, by file stem
    (it serves them in the order given and logs each as it starts), classic
    mode's with `--classic` (before the components), and the DEPLOY
    service's with `--allow-deploy`."""

    def __init__(self, *components, args=()):
        for component in components:
            assert component.exists(), f"{component} is missing: run `cargo test --release --workspace` first"
        self.process = subprocess.Popen(
            [str(BINARY), "serve", "--port", "0", *map(str, components), *args],
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "NO_COLOR": "1", "RUST_LOG": "info"},
        )
        self.log = queue.Queue()
        threading.Thread(target=self._read_log, daemon=True).start()
        ports = []
        # With --allow-deploy, the DEPLOY service starts after the components.
        classic = "--classic" in args
        expected = len(components) + classic + ("--allow-deploy" in args)
        # Compiling a Python or JavaScript service (12-18 MB) takes seconds,
        # and minutes on a loaded machine (`serve module.py` builds the
        # module first): minutes for each. A host that exits meanwhile is
        # reported at once, not at the deadline.
        deadline = time.monotonic() + 300 * max(len(components) + classic, 1)
        while len(ports) < expected:
            try:
                line = self.log.get(timeout=1)
            except queue.Empty:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the host exited with {self.process.returncode} "
                                       f"after serving {len(ports)} of {expected}") from None
                if time.monotonic() > deadline:
                    self.process.kill()
                    raise TimeoutError(f"the host served {len(ports)} of {expected} before the deadline") from None
                continue
            match = re.search(r"serving service=\S+ address=[\d.]+:(\d+)", line)
            if match:
                ports.append(int(match[1]))
        self.classic_port = ports.pop(0) if classic else None
        self.ports = {component.stem: port for component, port in zip(components, ports)}
        self.ports_in_order = ports
        self.deploy_port = ports[-1] if len(ports) > len(components) else None

    def _read_log(self):
        for line in self.process.stderr:
            self.log.put(line)

    def alive(self):
        return self.process.poll() is None

    def stop(self):
        # Its connections get a grace of 5 s to finish their calls; a loaded
        # machine takes longer to wind up and exit.
        self.process.terminate()
        self.process.wait(timeout=60)


@pytest.fixture(scope="session")
def host():
    served = Host(*(GUESTS / f"{name}.wasm" for name in ("calculator", "testbed", "decoupled", "callback", "my_service")))
    yield served
    assert served.alive(), "the host died during the tests"
    served.stop()


@pytest.fixture
def calculator_port(host):
    return host.ports["calculator"]


@pytest.fixture
def testbed_port(host):
    return host.ports["testbed"]


@pytest.fixture
def decoupled_port(host):
    return host.ports["decoupled"]


@pytest.fixture
def callback_port(host):
    return host.ports["callback"]


@pytest.fixture
def my_service_port(host):
    return host.ports["my_service"]


# The config of an rpyc connection whose calls wait for a reply that takes a
# compile of a large component (deploying a Python or JavaScript service:
# seconds of a core, minutes on a loaded machine) or a guest computing at the
# lowest priority until its CPU budget is spent (CPU time, which a loaded
# machine hands out slowly): rpyc's own default is 30 s. Past the host's
# deadline of a call (60 s), so that the host's answer comes first.
PATIENT = {"sync_request_timeout": 600}


# A test CA, and a server's and a client's certificate it signed (openssl).
def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def issue(directory, name, subject_alt_name):
    """A key and a certificate signed by the test CA, valid for the names given."""
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=directory)
    (directory / f"{name}.ext").write_text(f"subjectAltName={subject_alt_name}\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "1", "-out", f"{name}.pem", "-extfile", f"{name}.ext",
            cwd=directory)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pki")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=wasm-rpyc test CA",
            cwd=directory)
    issue(directory, "server", "DNS:localhost,IP:127.0.0.1")
    issue(directory, "client", "DNS:client")
    return directory

