"""The host's budgets with the unmodified Python client, with small limits
set by flags: guest memory, a call's wall-clock deadline, connection slots,
guest output and byte strings up to the frame limit. The attacker's call
fails with a clear exception; the host and everyone else carry on."""
import time

import pytest
import rpyc

from conftest import GUESTS, Host


@pytest.fixture(scope="module")
def small():
    """A host with small budgets serving the test guest and the calculator."""
    served = Host(GUESTS / "testbed.wasm", GUESTS / "calculator.wasm", args=[
        "--max-memory", "32", "--max-total-memory", "48", "--call-deadline", "5",
        "--max-connections", "3", "--evict-idle-after", "3600",
    ])
    yield served
    assert served.alive(), "the host died"
    served.stop()


def connect(host, name):
    # rpyc's default: the host's deadline of a call (5 s) comes well before.
    return rpyc.connect("localhost", host.ports[name], config={"sync_request_timeout": 30})


def attempt(call, *args):
    """What `call` returns, or None if it raises."""
    try:
        return call(*args)
    except Exception:  # noqa: BLE001 - any failure means not yet
        return None


def eventually(probe, timeout=60):
    """What `probe` returns once it is truthy, asking until `timeout` (what
    it waits for happens at once, but a loaded machine may take seconds)."""
    deadline = time.monotonic() + timeout
    while not (found := probe()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def served(conn):
    """`conn` once it has been answered."""
    assert conn.root.add(0, 0) == 0
    return conn


def test_memory_past_the_budget_is_a_memory_error(small):
    first, second = connect(small, "testbed"), connect(small, "testbed")
    with pytest.raises(MemoryError, match="an instance may use 32 MiB"):
        first.root.allocate(40)
    assert first.root.allocate(20) == 20
    with pytest.raises(MemoryError, match="48 MiB in all"):
        second.root.allocate(30)
    first.close()
    # The first connection's instance goes as its connection ends.
    assert eventually(lambda: attempt(second.root.allocate, 30)) == 30
    second.close()


def test_a_sleeping_call_is_cut_at_its_deadline(small):
    conn = connect(small, "testbed")
    assert conn.root.counter() == 1
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="deadline"):
        conn.root.sleep(60_000)
    # At the 5 s deadline, not after the minute of the sleep (nor rpyc's
    # 30 s): the bound leaves a loaded machine seconds to act on it.
    assert time.monotonic() - started < 20
    assert conn.root.counter() == 1, "a fresh instance"
    conn.close()


def test_a_full_service_says_so_and_others_serve(small):
    held = [connect(small, "calculator") for _ in range(3)]
    for conn in held:
        assert conn.root.add(4, 7) == 11
    refused = connect(small, "calculator")
    with pytest.raises(RuntimeError, match="CALCULATOR is at capacity"):
        refused.root.add(4, 7)
    other = connect(small, "testbed")
    assert other.root.echo_s32(5) == 5
    other.close()
    held.pop().close()
    conn = eventually(lambda: attempt(lambda: served(connect(small, "calculator"))))
    assert conn.root.add(1, 2) == 3
    for conn in held + [conn]:
        conn.close()


def test_arguments_past_the_memory_budget_are_a_memory_error(small):
    conn = connect(small, "testbed")
    with pytest.raises(MemoryError, match="arguments would take"):
        conn.root.echo_bytes(b"x" * (4 << 20))
    assert conn.root.echo_bytes(b"x" * 1000) == b"x" * 1000
    conn.close()


def test_a_twelve_mib_byte_string_round_trips(testbed_port):
    # 12 MiB each way through rpyc's encoding and the guest: seconds, and
    # more on a loaded machine.
    conn = rpyc.connect("localhost", testbed_port, config={"sync_request_timeout": 120})
    data = bytes(range(256)) * (12 * 4096)
    assert conn.root.echo_bytes(data) == data
    assert len(conn.root.bytes_of(12 << 20)) == 12 << 20
    conn.close()


def test_a_flood_of_output_is_cut(small):
    conn = connect(small, "testbed")
    # 200 KB, three times a call's 64 KiB: enough to be cut, and little
    # enough computing to end well inside this host's 5 s deadline even on
    # a loaded machine, where the guest threads get little of a core.
    conn.root.shout(200, 1000)
    deadline = time.monotonic() + 60
    lines = []
    while time.monotonic() < deadline:
        line = small.log.get(timeout=60)
        lines.append(line)
        if "output dropped" in line:
            break
    shouted = sum("!" * 1000 in line for line in lines)
    assert any("output dropped" in line for line in lines)
    assert shouted <= 66, shouted
    conn.close()
