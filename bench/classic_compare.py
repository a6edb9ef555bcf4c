"""The unmodified `rpyc.classic` client against `wasm-rpyc classic` (a
sandboxed CPython per connection) and against RPyC's own `rpyc_classic`
server, in one run, on this machine.

Run after `cargo build --release -p wasm-rpyc` (tests/run.sh builds it too;
the first start of `classic` builds its component with componentize-py, about
a minute):
    .venv/bin/python bench/classic_compare.py
WASM_RPYC_BIN names another wasm-rpyc binary (WASM_RPYC_CACHE_DIR, its
compile cache).

Both servers run as separate processes. Prints, for each, the median time of
a fresh connection and its first `conn.eval("1+1")`, of a warm
`conn.eval("1+1")`, of `conn.modules.math.sqrt(2)` (the client caches the
module, so GETATTR + CALL), and of `rpyc.classic.upload` of 1 MB into a
scratch directory (granted to wasm-rpyc with `--dir`, at the same path), and
the ratios, beside the targets the project's issue sets. Rounds alternate
between the two servers and each figure is the median of the rounds, so a
slow moment of the machine does not land on one side only. (RPyC's server
waits about 40 ms in `recv`, a delayed ACK, for most 64 KB chunks of an
upload: a TCP stall, not work.) Before the rounds, the host memory per open
connection: how much the server process's memory grows from one open
connection to 51 that each did one eval, divided by 50, as its proportional
set size (PSS, /proc/PID/smaps_rollup), the memory it takes, and as its
resident set (RSS), which counts wasm-rpyc's memory image of the guest once
per instance mapping it, though its pages are in memory once (each instance
copies only the pages it writes).
"""
import os
import pathlib
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import rpyc

ROOT = pathlib.Path(__file__).resolve().parents[1]
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
HOST = pathlib.Path(os.environ.get("WASM_RPYC_BIN", TARGET / "release" / "wasm-rpyc"))
FRESH = 50
CALLS = 2000
WARMUP = 200
UPLOADS = 5
UPLOAD_BYTES = 1 << 20
HELD = 50
ROUNDS = 5


def start_host(scratch):
    """`wasm-rpyc classic` on a free port, allowed to write `scratch`."""
    process = subprocess.Popen(
        [str(HOST), "classic", "--host", "127.0.0.1", "--port", "0", "--dir", str(scratch)],
        cwd=ROOT, stderr=subprocess.PIPE, text=True, env={**os.environ, "NO_COLOR": "1", "RUST_LOG": "info"},
    )
    for line in process.stderr:
        match = re.search(r"service=SLAVE address=127\.0\.0\.1:(\d+)", line)
        if match:
            # Keep reading its log, so that a full pipe never blocks it.
            threading.Thread(target=process.stderr.read, daemon=True).start()
            return process, int(match[1])
    raise RuntimeError(f"{HOST} classic did not start")


def start_rpyc_classic():
    """RPyC's own classic server (threaded, as by default) on a free port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = pathlib.Path(sys.executable).with_name("rpyc_classic")
    process = subprocess.Popen([str(server), "--host", "127.0.0.1", "-p", str(port), "-q"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port)).close()
            return process, port
        except ConnectionRefusedError:
            time.sleep(0.05)
    raise RuntimeError("rpyc_classic did not start")


def median_time(call):
    for _ in range(WARMUP):
        call()
    samples = []
    for _ in range(CALLS):
        t = time.perf_counter()
        call()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def fresh_connection(port):
    """Seconds to connect and answer the first eval."""
    start = time.perf_counter()
    conn = rpyc.classic.connect("127.0.0.1", port)
    assert conn.eval("1+1") == 2
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def memory_mib(pid):
    """The process's PSS and RSS, in MiB."""
    rollup = pathlib.Path(f"/proc/{pid}/smaps_rollup").read_text()
    return [int(re.search(rf"^{field}:\s+(\d+) kB", rollup, re.M)[1]) / 1024 for field in ("Pss", "Rss")]


def memory_per_connection(process, port):
    """MiB of the server's PSS and RSS per open connection that did one eval."""
    first = rpyc.classic.connect("127.0.0.1", port)
    assert first.eval("1+1") == 2
    before = memory_mib(process.pid)
    held = [rpyc.classic.connect("127.0.0.1", port) for _ in range(HELD)]
    for conn in held:
        assert conn.eval("1+1") == 2
    after = memory_mib(process.pid)
    for conn in [first, *held]:
        conn.close()
    return [(a - b) / HELD for a, b in zip(after, before)]


def cases(port, local, remote):
    connect = statistics.median(fresh_connection(port) for _ in range(FRESH))
    conn = rpyc.classic.connect("127.0.0.1", port)
    warm = median_time(lambda: conn.eval("1+1"))
    assert conn.modules.math.sqrt(2) == 2 ** 0.5
    sqrt = median_time(lambda: conn.modules.math.sqrt(2))
    uploads = []
    for _ in range(UPLOADS):
        t = time.perf_counter()
        rpyc.classic.upload(conn, str(local), str(remote))
        uploads.append(time.perf_counter() - t)
    assert remote.read_bytes() == local.read_bytes()
    remote.unlink()
    conn.close()
    return {
        "connect + first eval": connect * 1e3,
        "warm eval('1+1')": warm * 1e6,
        "modules.math.sqrt(2)": sqrt * 1e6,
        "upload 1 MB": statistics.median(uploads) * 1e3,
    }


def machine():
    cpuinfo = pathlib.Path("/proc/cpuinfo").read_text()
    model = re.search(r"model name\s*:\s*(.*)", cpuinfo)[1]
    return f"{model}, {os.cpu_count()} cores, Linux {platform.release()}"


def main():
    with tempfile.TemporaryDirectory() as scratch:
        scratch = pathlib.Path(scratch)
        local, remote = scratch / "local.bin", scratch / "remote.bin"
        local.write_bytes(os.urandom(UPLOAD_BYTES))
        host, host_port = start_host(scratch)
        python, python_port = start_rpyc_classic()
        try:
            our_memory, their_memory = memory_per_connection(host, host_port), memory_per_connection(python, python_port)
            rounds = [(cases(host_port, local, remote), cases(python_port, local, remote)) for _ in range(ROUNDS)]
        finally:
            for process in (host, python):
                process.terminate()
                process.wait()
    figures = [
        (case, unit, statistics.median(r[0][case] for r in rounds), statistics.median(r[1][case] for r in rounds))
        for case, unit in zip(rounds[0][0], ("ms", "µs", "µs", "ms"))
    ]
    figures += [("memory / connection, PSS", "MiB", our_memory[0], their_memory[0]),
                ("memory / connection, RSS", "MiB", our_memory[1], their_memory[1])]
    targets = {
        "connect + first eval": ("< 5 ms", lambda ours, theirs: ours < 5),
        "warm eval('1+1')": ("<= rpyc_classic", lambda ours, theirs: ours <= theirs),
        "modules.math.sqrt(2)": ("<= rpyc_classic", lambda ours, theirs: ours <= theirs),
        "memory / connection, PSS": ("< 6 MiB", lambda ours, theirs: ours < 6),
    }
    print(f"machine: {machine()}")
    print(f"rpyc {rpyc.__version__} client; medians of {ROUNDS} alternating rounds, each of {FRESH} fresh"
          f" connections, {CALLS} calls per case, {UPLOADS} uploads; memory: {HELD} connections held")
    print("ratio: wasm-rpyc / rpyc_classic; targets: the project's issue's")
    print(f"{'':26} {'wasm-rpyc':>13} {'rpyc_classic':>13} {'ratio':>7}   target")
    for case, unit, ours, theirs in figures:
        target, met = targets.get(case, ("", None))
        verdict = f"{target}: {'met' if met(ours, theirs) else 'MISSED'}" if met else ""
        print(f"{case:26} {ours:>9.2f} {unit:<3} {theirs:>9.2f} {unit:<3} {ours / theirs:>6.2f}x   {verdict}")


if __name__ == "__main__":
    main()
