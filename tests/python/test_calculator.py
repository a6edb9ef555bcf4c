"""The seed's client snippets, verbatim, and the rest of what a Python user
does with the calculator: the unmodified rpyc package against the host."""
import threading

import pytest
import rpyc
from rpyc.core import consts


def test_the_seed_snippets(calculator_port):
    conn = rpyc.connect("localhost", calculator_port)
    x = conn.root.add(4,7)
    assert x == 11

    try:
        conn.root.div(4,0)
    except ZeroDivisionError:
        pass
    else:
        pytest.fail("div(4, 0) did not raise ZeroDivisionError")

    with pytest.raises(AttributeError):
        conn.root.foo()
    conn.close()


def test_every_method_and_both_spellings(calculator_port):
    conn = rpyc.connect("localhost", calculator_port)
    root = conn.root
    assert (root.add(4, 7), root.sub(4, 7), root.mul(4, 7), root.div(7, 2)) == (11, -3, 28, 3.5)
    assert root.exposed_add(1, 2) == 3
    assert root.get_service_name() == "CALCULATOR"
    assert root.get_service_aliases() == ("CALCULATOR",)
    assert root.sub(b=1, a=10) == 9
    assert root.add(2, b=5) == 7
    add = root.add
    assert [add(i, i) for i in range(5)] == [0, 2, 4, 6, 8]
    conn.close()


def test_errors_are_the_builtin_exceptions_with_the_remote_text(calculator_port):
    conn = rpyc.connect("localhost", calculator_port)
    with pytest.raises(ZeroDivisionError) as info:
        conn.root.div(4, 0)
    assert "division by zero" in str(info.value)
    assert "Remote Traceback" in str(info.value)
    with pytest.raises(AttributeError, match="cannot access 'foo'"):
        conn.root.foo()
    with pytest.raises(AttributeError, match="cannot access 'nope'"):
        conn.root.nope
    with pytest.raises(TypeError, match="missing 1 required argument"):
        conn.root.add(1)
    with pytest.raises(TypeError, match="expected int"):
        conn.root.add("4", 7)
    with pytest.raises(TypeError, match="unexpected keyword argument 'c'"):
        conn.root.add(1, c=2)
    with pytest.raises(OverflowError):
        conn.root.add(2**70, 1)
    with pytest.raises(AttributeError):
        conn.root.anything = 1
    with pytest.raises(ValueError, match="pickling is disabled"):
        import pickle
        pickle.dumps(conn.root.add)
    assert conn.root.add(4, 7) == 11, "the connection survives every error"
    conn.close()


def test_ping_repr_dir_and_identity(calculator_port):
    conn = rpyc.connect("localhost", calculator_port)
    conn.ping()
    root = conn.root
    assert repr(root) == "<wasm-rpyc service CALCULATOR>"
    assert {"add", "sub", "mul", "div", "get_service_name"} <= set(dir(root))
    assert "foo" not in dir(root)
    assert root == root
    assert hash(root) == hash(root)
    assert repr(root.add) == "<bound method CALCULATOR.add>"
    conn.close()


def test_close_ends_the_connection(calculator_port):
    conn = rpyc.connect("localhost", calculator_port)
    assert conn.root.add(1, 1) == 2
    conn.close()
    assert conn.closed
    with pytest.raises(EOFError):
        conn.root.add(1, 1)


def test_32_clients_on_32_threads_at_once(calculator_port):
    errors = []
    start = threading.Barrier(32)

    def client(n):
        try:
            conn = rpyc.connect("localhost", calculator_port)
            # 32 threads connecting: seconds on a loaded machine.
            start.wait(timeout=120)
            for i in range(50):
                assert conn.root.mul(n, i) == n * i
            conn.close()
        except Exception as e:  # collected and reported below
            errors.append(e)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads), "a client never finished"


def test_the_client_spends_one_inspect_per_connection_and_none_on_methods(calculator_port):
    conn = rpyc.connect("localhost", calculator_port)
    handlers = []
    send = conn._send

    def counting_send(msg, seq, args):
        if msg == consts.MSG_REQUEST:
            handlers.append(args[0])
        return send(msg, seq, args)

    conn._send = counting_send
    for _ in range(3):
        assert conn.root.add(4, 7) == 11
    add = conn.root.add
    assert add(1, 2) == 3
    assert handlers.count(consts.HANDLE_INSPECT) == 1, handlers
    assert handlers.count(consts.HANDLE_GETROOT) == 1, handlers
    assert handlers.count(consts.HANDLE_CALL) == 4, handlers
    conn.close()


def test_twelve_thousand_lent_methods_are_all_released(calculator_port):
    # The host lends a method object for each `conn.root.add` and holds at
    # most 10,000 at once: 12,000 calls only succeed if each DEL frees one.
    conn = rpyc.connect("localhost", calculator_port)
    for i in range(12_000):
        assert conn.root.add(i, 1) == i + 1
    conn.close()
