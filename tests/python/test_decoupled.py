"""The seed's decoupled services: both ends expose a service, and the wasm
service calls the client's (`self._conn.root.foo()`)."""
import time

import pytest
import rpyc


def test_the_seed_snippet(decoupled_port):
    class ClientService(rpyc.Service):
        def exposed_foo(self):
            return "foo"

    conn = rpyc.connect("localhost", decoupled_port, service = ClientService)
    assert conn.root.bar() == "foobar"
    assert conn.root.get_service_name() == "SERVER"
    conn.close()


def test_what_the_client_raises_reaches_it_back_through_the_service(decoupled_port):
    class Failing(rpyc.Service):
        def exposed_foo(self):
            raise KeyError("no foo today")

    conn = rpyc.connect("localhost", decoupled_port, service=Failing)
    with pytest.raises(KeyError, match="no foo today"):
        conn.root.bar()
    conn.close()


def test_a_client_without_foo_gets_attribute_error(decoupled_port):
    conn = rpyc.connect("localhost", decoupled_port)
    with pytest.raises(AttributeError, match="cannot access 'foo'"):
        conn.root.bar()
    conn.close()


def test_foo_must_return_a_str(decoupled_port):
    class Numeric(rpyc.Service):
        def exposed_foo(self):
            return 42

    conn = rpyc.connect("localhost", decoupled_port, service=Numeric)
    with pytest.raises(TypeError, match="did not return a str"):
        conn.root.bar()
    conn.close()


def test_a_call_back_into_the_waiting_service_fails_at_once_and_pings_are_served(decoupled_port):
    class Reentrant(rpyc.Service):
        def on_connect(self, conn):
            self.conn = conn

        def exposed_foo(self):
            self.conn.ping()  # answered while the service waits on this client
            return self.conn.root.bar()  # the service cannot be entered again

    conn = rpyc.connect("localhost", decoupled_port, service=Reentrant)
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="the service is busy"):
        conn.root.bar()
    # At once, not after the 30 s a call waits for its peer (the bound
    # leaves a loaded machine seconds).
    assert time.monotonic() - started < 15, "no deadlock waiting for a timeout"
    assert conn.root.get_service_name() == "SERVER", "the connection goes on"
    conn.close()


def test_a_client_that_disconnects_while_the_service_waits_on_it_harms_no_one(decoupled_port):
    class Vanishing(rpyc.Service):
        def on_connect(self, conn):
            self.conn = conn

        def exposed_foo(self):
            self.conn.close()
            return "foo"

    conn = rpyc.connect("localhost", decoupled_port, service=Vanishing)
    with pytest.raises(EOFError):
        conn.root.bar()

    class ClientService(rpyc.Service):
        def exposed_foo(self):
            return "foo"

    other = rpyc.connect("localhost", decoupled_port, service=ClientService)
    assert other.root.bar() == "foobar"
    other.close()
