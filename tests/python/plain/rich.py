"""A service written as RPyC's users write them, with what a plain Python
class does that a WIT world cannot say: dynamic values, objects by
reference both ways, exposed attributes, hooks, custom exceptions. Built by
`wasm-rpyc build` (the tests serve it with `wasm-rpyc serve rich.py`)."""

import gc

import rpyc
from rpyc.utils.server import ThreadedServer

# How many Tracked objects were finalised (the peer let go of them).
finalised = 0


class Tracked:
    def __init__(self, n):
        self.n = n

    def exposed_value(self):
        return self.n

    def hidden(self):
        return "hidden"

    def __del__(self):
        global finalised
        finalised += 1


class Fault(Exception):
    """An exception class of the service's own."""


class BadRepr:
    def __repr__(self):
        raise ValueError("no repr for you")


class BadFinaliser:
    def __del__(self):
        raise RuntimeError("the finaliser fails")


class RichService(rpyc.Service):
    ALIASES = ["rich", "plain"]
    exposed_the_answer = 43
    _private = "secret"

    def on_connect(self, conn):
        self.conn = conn
        self.calls = 0
        self.exposed_connected = True

    def exposed_add(self, a, b):
        return a + b

    def exposed_greet(self, name, greeting="hello", *rest, **extra):
        return greeting, name, rest, tuple(sorted(extra.items()))

    def exposed_items(self):
        return {"a": 1, "b": [1, 2, 3]}

    def exposed_numbers(self, n=3):
        return list(range(n))

    def exposed_count(self, n):
        yield from range(n)

    def exposed_tracked(self, n):
        return Tracked(n)

    def exposed_tracked_tuple(self, n):
        return tuple(Tracked(i) for i in range(n))

    def exposed_finalised(self):
        gc.collect()
        return finalised

    def exposed_same(self, a, b):
        return a is b

    def exposed_fail(self):
        raise Fault("it failed")

    def exposed_bad_repr(self):
        return BadRepr()

    def exposed_bad_finaliser(self):
        return BadFinaliser()

    def exposed_is_list(self, x):
        return isinstance(x, list)

    def exposed_call(self, func, *args):
        return func(*args)

    def exposed_total(self, items):
        return sum(items)

    def exposed_peer_name(self):
        return self.conn.root.get_service_name()

    def exposed_count_calls(self):
        self.calls += 1
        return self.calls

    @property
    def exposed_prop(self):
        return "property"

    def exposed_function(self):
        def double(x):
            return 2 * x

        return double

    class exposed_Point:
        exposed_kind = "point"

        def __init__(self, x, y):
            self.x, self.y = x, y

        def exposed_norm2(self):
            return self.x**2 + self.y**2


if __name__ == "__main__":
    ThreadedServer(RichService, port=18861).start()
