"""The same Python rpyc client against the wasm-rpyc host and against RPyC's
own ThreadedServer serving the same calculator, in one run, on this machine.

Run after `cargo build --release -p wasm-rpyc` (tests/run.sh builds it too):
    .venv/bin/python bench/rpyc_compare.py

Both servers run as separate processes. Prints calls/s and median latency
for `conn.root.add(4, 7)` (GETATTR + CALL + async DEL per call), a cached
`add(4, 7)` (one CALL per call), the seed's callback `bar(func)` (the
server calls the client back, then releases the function), `MyClass(1, 2)`
returning an object that is dropped at once (CALL, INSPECT of the new
object, DEL), and `obj.foo()` on a held object (GETATTR + CALL + DEL of the
bound method), and the ratios. Rounds alternate
between the two servers and each figure is the median of the rounds, so a
slow moment of the machine does not land on one side only; the slowest
single call of all rounds shows any stall (such as a 40 ms delayed ACK).
"""
import os
import pathlib
import re
import statistics
import subprocess
import sys
import time

import rpyc

ROOT = pathlib.Path(__file__).resolve().parents[1]
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
CALLS = 3000
WARMUP = 300
ROUNDS = 5


SERVICES = ("calculator", "callback", "my_service")


def start_host():
    """Our host serving the calculator, the callback service and MyService."""
    guests = TARGET / "guests" / "wasm32-wasip2" / "release"
    process = subprocess.Popen(
        [str(TARGET / "release" / "wasm-rpyc"), "serve", "--port", "0",
         *(str(guests / f"{name}.wasm") for name in SERVICES)],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "NO_COLOR": "1", "RUST_LOG": "info"},
    )
    ports = []
    for line in process.stderr:
        match = re.search(r"address=127\.0\.0\.1:(\d+)", line)
        if match:
            ports.append(int(match[1]))
            if len(ports) == len(SERVICES):
                return [process], ports
    raise RuntimeError("the host did not start")


def start_threaded_servers():
    """RPyC's ThreadedServer serving the same services in Python."""
    processes, ports = [], []
    for name in SERVICES:
        path = ROOT / "tests" / "python" / f"{name}_server.py"
        process = subprocess.Popen([sys.executable, str(path)], stdout=subprocess.PIPE, text=True)
        processes.append(process)
        ports.append(int(process.stdout.readline()))
    return processes, ports


def measure(call):
    for _ in range(WARMUP):
        call()
    samples = []
    start = time.perf_counter()
    for _ in range(CALLS):
        t = time.perf_counter()
        call()
        samples.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - start
    return CALLS / elapsed, statistics.median(samples) * 1e6, max(samples) * 1e6


def foofunc():
    return "foo"


def cases(ports):
    calculator, callback, my_service = ports
    conn = rpyc.connect("127.0.0.1", calculator)
    assert conn.root.add(4, 7) == 11
    uncached = measure(lambda: conn.root.add(4, 7))
    add = conn.root.add
    cached = measure(lambda: add(4, 7))
    conn.close()
    conn = rpyc.connect("127.0.0.1", callback)
    bar = conn.root.bar
    assert bar(foofunc) == "foobar"
    called_back = measure(lambda: bar(foofunc))
    conn.close()
    conn = rpyc.connect("127.0.0.1", my_service)
    make = conn.root.MyClass
    assert make(1, 2).foo() == 3
    dropped = measure(lambda: make(1, 2))
    held = make(1, 2)
    method = measure(lambda: held.foo())
    conn.close()
    return {
        "conn.root.add(4, 7)": uncached,
        "cached add(4, 7)": cached,
        "cached bar(foofunc)": called_back,
        "MyClass(1, 2), dropped": dropped,
        "held obj.foo()": method,
    }


def main():
    host, host_ports = start_host()
    python, python_ports = start_threaded_servers()
    try:
        rounds = [(cases(host_ports), cases(python_ports)) for _ in range(ROUNDS)]
    finally:
        for process in host + python:
            process.terminate()
            process.wait()
    def median_of(side, case):
        rates = [r[side][case][0] for r in rounds]
        medians = [r[side][case][1] for r in rounds]
        slowest = max(r[side][case][2] for r in rounds)
        return statistics.median(rates), statistics.median(medians), slowest

    names = rounds[0][0].keys()
    ours = {case: median_of(0, case) for case in names}
    theirs = {case: median_of(1, case) for case in names}
    print(f"rpyc {rpyc.__version__} client, {ROUNDS} alternating rounds of {CALLS} calls per case, one run on this machine")
    print("per side: calls/s, median latency, slowest call of all rounds")
    print(f"{'':24} {'wasm-rpyc host':>32} {'rpyc ThreadedServer':>32} {'ratio':>8}")
    for case in ours:
        (our_rate, our_median, our_max), (their_rate, their_median, their_max) = ours[case], theirs[case]
        print(f"{case:24} {our_rate:>9.0f}/s {our_median:>7.1f}µs {our_max / 1000:>6.1f}ms"
              f" {their_rate:>9.0f}/s {their_median:>7.1f}µs {their_max / 1000:>6.1f}ms"
              f" {our_rate / their_rate:>7.2f}x")


if __name__ == "__main__":
    main()
