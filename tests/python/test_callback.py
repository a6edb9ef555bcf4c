"""The seed's callbacks: a function passed as an argument reaches the wasm
service as a netref it calls back; the host releases it when the service
drops it."""
import pytest
import rpyc


def test_the_seed_snippet(callback_port):
    def foofunc():
        return "foo"

    conn = rpyc.connect("localhost", callback_port)
    assert conn.root.bar(foofunc) == "foobar"
    conn.close()


def test_any_callable_and_by_keyword(callback_port):
    conn = rpyc.connect("localhost", callback_port)
    assert conn.root.bar(lambda: "baz") == "bazbar"
    assert conn.root.bar(func=str.upper.__get__("qux")) == "QUXbar"

    class Callable:
        def __call__(self):
            return "obj"

    assert conn.root.bar(Callable()) == "objbar"
    conn.close()


def test_callbacks_are_released_when_the_service_drops_them(callback_port):
    conn = rpyc.connect("localhost", callback_port)
    for i in range(200):
        assert conn.root.bar(lambda: str(i)) == f"{i}bar"
    conn.ping()  # the releases follow the replies; let the client read them
    assert len(conn._local_objects._dict) == 0, "the host released every callback"
    conn.close()


def test_errors_in_and_around_the_callback(callback_port):
    conn = rpyc.connect("localhost", callback_port)
    with pytest.raises(TypeError, match="did not return a str"):
        conn.root.bar(lambda: 1)
    with pytest.raises(TypeError, match="expected a netref"):
        conn.root.bar(5)

    def failing():
        raise KeyError("inside the callback")

    with pytest.raises(KeyError, match="inside the callback"):
        conn.root.bar(failing)
    conn.ping()  # the releases follow the replies; let the client read them
    assert len(conn._local_objects._dict) == 0
    conn.close()


def test_a_callback_that_calls_the_service_again_gets_a_clear_error(callback_port):
    conn = rpyc.connect("localhost", callback_port)

    def reentrant():
        return conn.root.bar(lambda: "inner")

    with pytest.raises(RuntimeError, match="the service is busy"):
        conn.root.bar(reentrant)
    assert conn.root.bar(lambda: "after") == "afterbar", "the connection goes on"
    conn.close()


def test_a_callback_may_ask_the_busy_service_what_does_not_enter_it(callback_port):
    conn = rpyc.connect("localhost", callback_port)
    # Names, attributes and inspection are answered while the service waits
    # on the callback; only a call into the service itself is refused.
    assert conn.root.bar(lambda: conn.root.get_service_name()) == "SERVERbar"
    assert conn.root.bar(lambda: conn.root.bar.__name__) == "barbar"
    assert conn.root.bar(lambda: ",".join(dir(conn.root))) == "bar,get_service_aliases,get_service_namebar"
    conn.close()


def test_twelve_thousand_callbacks_leave_no_table_behind(callback_port):
    # Each table on the way (the codec's table of the client's objects, the
    # guest's netref handles) holds at most 10,000 entries: 12,000 callbacks
    # only all succeed if every one is released.
    conn = rpyc.connect("localhost", callback_port)
    bar = conn.root.bar
    for i in range(12_000):
        assert bar(lambda: "x") == "xbar"
    conn.ping()
    assert len(conn._local_objects._dict) == 0
    conn.close()
