"""The seed's MyService: an exposed class, ALIASES and the connection hooks,
with three members the conformance table uses to observe them."""

import rpyc

# MyClass instances alive: the finaliser runs when the peer lets go of one.
live = 0


class MyService(rpyc.Service):
    ALIASES = ["foo", "bar", "spam"]
    # The seed: "this applies to methods, but in fact, it applies to any
    # attribute".
    exposed_the_answer = 43

    class exposed_MyClass(object):
        def __init__(self, a, b):
            global live
            self.a = a
            self.b = b
            live += 1
        def exposed_foo(self):
            return self.a + self.b
        def exposed_add(self, other):
            return type(self)(self.a + other.a, self.b + other.b)
        def secret(self):
            return 42
        def __del__(self):
            global live
            if hasattr(self, "b"):  # __init__ ran to its end
                live -= 1

    def on_connect(self, conn):
        self.connected = True

    def on_disconnect(self, conn):
        pass

    def exposed_connected(self):
        return self.connected

    def exposed_live_objects(self):
        return live

    def exposed_same(self, obj, other):
        for arg in (obj, other):
            if not isinstance(arg, self.exposed_MyClass):
                raise TypeError(f"same() takes MyClass objects, not {type(arg).__name__}")
        return obj is other
