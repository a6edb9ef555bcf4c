"""The seed's MyService with its exposed class, served by RPyC's own
ThreadedServer on 127.0.0.1 (on the port given, or a free one); prints the
port first."""
import rpyc

import threaded


class MyService(rpyc.Service):
    ALIASES = ["foo", "bar", "spam"]

    class exposed_MyClass(object):
        def __init__(self, a, b):
            self.a = a
            self.b = b

        def exposed_foo(self):
            return self.a + self.b


if __name__ == "__main__":
    threaded.serve(MyService)
