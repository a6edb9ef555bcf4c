"""Services one instance serves to every connection (`serve --shared`),
with the unmodified rpyc client: the chat room in Python
(`services/python/chat.py`) and the counter in Rust and JavaScript, as
`services/build.sh` builds them, and a JavaScript room that keeps its
members' callbacks."""

import concurrent.futures
import pathlib
import threading
import time

import pytest
import rpyc

from conftest import PATIENT, POLYGLOT, Host

PLAIN = pathlib.Path(__file__).parent / "plain"


@pytest.fixture(scope="module")
def shared_host():
    served = Host(
        POLYGLOT / "python" / "chat.wasm",
        POLYGLOT / "rust" / "counter.wasm",
        POLYGLOT / "js" / "counter.wasm",
        args=("--shared",),
    )
    yield served
    assert served.alive(), "the host died during the tests"
    served.stop()


class Client:
    """A chat client: its connection, served in the background so the room
    can call it back, and the lines it received."""

    def __init__(self, port):
        self.conn = rpyc.connect("127.0.0.1", port)
        self.thread = rpyc.BgServingThread(self.conn)
        self.lines = []
        self.received = threading.Condition()

    def hear(self, line):
        with self.received:
            self.lines.append(line)
            self.received.notify_all()

    def login(self, name, password):
        return self.conn.root.login(name, password, self.hear)

    def wait_for(self, line, timeout=60):
        with self.received:
            assert self.received.wait_for(lambda: line in self.lines, timeout), (line, self.lines)

    def close(self):
        self.thread.stop()
        self.conn.close()


@pytest.fixture
def clients(shared_host):
    made = []

    def client():
        made.append(Client(shared_host.ports_in_order[0]))
        return made[-1]

    yield client
    for client in made:
        try:
            client.close()
        except Exception:
            pass


def test_three_clients_chat_and_everyone_hears_every_line(clients):
    alice, bob, carol = clients(), clients(), clients()
    tokens = {
        "alice": alice.login("alice", "wonderland"),
        "bob": bob.login("bob", "builder"),
        "carol": carol.login("carol", "christmas"),
    }
    everyone = (alice, bob, carol)
    for client in everyone:
        client.wait_for("* carol has joined")
    assert alice.conn.root.who() == ("alice", "bob", "carol")
    for name, token in tokens.items():
        token.say(f"hello from {name}")
    for client in everyone:
        for name in tokens:
            client.wait_for(f"[{name}] hello from {name}")
    # Each client heard the lines in the order they were said.
    said = [line for line in alice.lines if line.startswith("[")]
    assert said == [f"[{name}] hello from {name}" for name in tokens]
    tokens["bob"].logout()
    alice.wait_for("* bob has left")
    with pytest.raises(ValueError, match="User token is stale"):
        tokens["bob"].say("still here?")
    assert carol.conn.root.who() == ("alice", "carol")


def test_a_wrong_password_is_a_value_error(clients):
    client = clients()
    with pytest.raises(ValueError, match="wrong username or password"):
        client.login("alice", "rabbit")


def test_a_disconnect_logs_the_user_out(clients):
    alice, bob = clients(), clients()
    alice.login("alice", "wonderland")
    bob.login("bob", "builder")
    bob.close()
    alice.wait_for("* bob has left")
    assert alice.conn.root.who() == ("alice",)


def test_a_client_that_vanishes_mid_broadcast_holds_nobody_up(clients, shared_host):
    alice, bob = clients(), clients()
    alice_token = alice.login("alice", "wonderland")
    # Carol logs in, then stops reading: her connection is left open, but
    # nobody serves it, and then it vanishes without a word.
    carol = rpyc.connect("127.0.0.1", shared_host.ports_in_order[0])
    carol.root.login("carol", "christmas", lambda line: None)
    bob.login("bob", "builder")
    started = time.monotonic()
    for n in range(20):
        alice_token.say(f"line {n}")
    carol._channel.stream.sock.close()
    alice_token.say("the end")
    for client in (alice, bob):
        client.wait_for("[alice] the end")
    # Not held up by Carol until the 30 s the host waits for a peer's answer
    # (the bound leaves a loaded machine seconds).
    assert time.monotonic() - started < 20
    alice.wait_for("* carol has left")


def test_calls_queue_one_at_a_time_and_lose_no_update(shared_host):
    for port in shared_host.ports_in_order[1:]:
        start = rpyc.connect("127.0.0.1", port).root.value()

        def increment(_):
            conn = rpyc.connect("127.0.0.1", port)
            try:
                counts = [conn.root.increment(1) for _ in range(25)]
                return counts, conn.root.mine()
            finally:
                conn.close()

        with concurrent.futures.ThreadPoolExecutor(32) as pool:
            results = list(pool.map(increment, range(32)))
        counts = [count for seen, _ in results for count in seen]
        # Every increment got a count of its own: none was lost.
        assert sorted(counts) == list(range(start + 1, start + 32 * 25 + 1))
        assert all(mine == 25 for _, mine in results)
        assert rpyc.connect("127.0.0.1", port).root.value() == start + 32 * 25


def test_a_javascript_service_keeps_callbacks_and_calls_them_without_waiting():
    room = Host(PLAIN / "room.js", args=("--shared",))
    try:
        port = room.ports_in_order[0]
        members = [Client(port), Client(port)]
        for n, member in enumerate(members, 1):
            assert member.conn.root.join(member.hear) == n
        assert members[0].conn.root.post("hello") == 2
        for member in members:
            member.wait_for("hello")
        for member in members:
            member.close()
    finally:
        room.stop()


def test_a_connections_objects_go_when_it_ends_and_a_fault_makes_them_stale():
    lender = Host(PLAIN / "lender.py", args=("--shared", "--cpu-budget", "0.5"))
    try:
        port = lender.ports_in_order[0]
        a, b = rpyc.connect("127.0.0.1", port), rpyc.connect("127.0.0.1", port)
        kept_by_a = a.root.box(1)
        kept_by_b = b.root.box(2)
        assert kept_by_a.value() == 1 and kept_by_b.value() == 2
        assert b.root.finalised() == ()
        # A ends: the box it held is released, and finalised in the guest.
        a.close()
        deadline = time.monotonic() + 60
        while b.root.finalised() != (1,):
            assert time.monotonic() < deadline, b.root.finalised()
            time.sleep(0.05)
        # A fault discards the instance: B's box is stale, and the fresh
        # instance ran B's on_connect again.
        # (c's own call comes after its on_connect; b's might not.)
        # Its spin lasts until its budget of CPU time, which a loaded machine
        # hands the guests (at the lowest priority) slowly.
        c = rpyc.connect("127.0.0.1", port, config=PATIENT)
        assert c.root.connects() == 3
        with pytest.raises(TimeoutError):
            c.root.spin()
        with pytest.raises(ReferenceError):
            kept_by_b.value()
        assert b.root.connects() == 2
        assert c.root.box(3).value() == 3
        b.close()
        c.close()
    finally:
        lender.stop()
