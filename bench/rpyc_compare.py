"""The same Python rpyc client against the wasm-rpyc host and against RPyC's
own ThreadedServer serving the same calculator, in one run, on this machine.

Run after `cargo build --release -p wasm-rpyc` (tests/run.sh builds it too):
    .venv/bin/python bench/rpyc_compare.py

Both servers run as separate processes. Prints calls/s and median latency
for `conn.root.add(4, 7)` (GETATTR + CALL + async DEL per call) and for a
cached `add(4, 7)` (one CALL per call), and the ratios. Rounds alternate
between the two servers and each figure is the median of the rounds, so a
slow moment of the machine does not land on one side only.
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


def start_host():
    process = subprocess.Popen(
        [str(TARGET / "release" / "wasm-rpyc"), "serve", "--port", "0",
         str(TARGET / "guests" / "wasm32-wasip2" / "release" / "calculator.wasm")],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "NO_COLOR": "1", "RUST_LOG": "info"},
    )
    for line in process.stderr:
        match = re.search(r"address=127\.0\.0\.1:(\d+)", line)
        if match:
            return process, int(match[1])
    raise RuntimeError("the host did not start")


def start_threaded_server():
    script = ROOT / "tests" / "python" / "calculator_server.py"
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    return process, int(process.stdout.readline())


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
    return CALLS / elapsed, statistics.median(samples) * 1e6


def cases(port):
    conn = rpyc.connect("127.0.0.1", port)
    assert conn.root.add(4, 7) == 11
    uncached = measure(lambda: conn.root.add(4, 7))
    add = conn.root.add
    cached = measure(lambda: add(4, 7))
    conn.close()
    return {"conn.root.add(4, 7)": uncached, "cached add(4, 7)": cached}


def main():
    host, host_port = start_host()
    python, python_port = start_threaded_server()
    try:
        rounds = [(cases(host_port), cases(python_port)) for _ in range(ROUNDS)]
    finally:
        for process in (host, python):
            process.terminate()
            process.wait()
    def median_of(side, case):
        rates = [r[side][case][0] for r in rounds]
        medians = [r[side][case][1] for r in rounds]
        return statistics.median(rates), statistics.median(medians)

    names = rounds[0][0].keys()
    ours = {case: median_of(0, case) for case in names}
    theirs = {case: median_of(1, case) for case in names}
    print(f"rpyc {rpyc.__version__} client, {ROUNDS} alternating rounds of {CALLS} calls per case, one run on this machine")
    print(f"{'':24} {'wasm-rpyc host':>22} {'rpyc ThreadedServer':>22} {'ratio':>8}")
    for case in ours:
        (our_rate, our_median), (their_rate, their_median) = ours[case], theirs[case]
        print(f"{case:24} {our_rate:>9.0f}/s {our_median:>7.1f}µs {their_rate:>9.0f}/s {their_median:>7.1f}µs"
              f" {our_rate / their_rate:>7.2f}x")


if __name__ == "__main__":
    main()
