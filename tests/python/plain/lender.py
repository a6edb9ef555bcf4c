"""A service for one shared instance that lends objects and counts what
happens to them: boxes finalised, connections made (module-level state,
so a fresh instance starts it again)."""

import rpyc

finalised = []
connects = []


class Box:
    def __init__(self, n):
        self.n = n

    def exposed_value(self):
        return self.n

    def __del__(self):
        finalised.append(self.n)


class LenderService(rpyc.Service):
    def on_connect(self, conn):
        connects.append(1)

    def exposed_box(self, n):
        return Box(n)

    def exposed_finalised(self):
        return tuple(finalised)

    def exposed_connects(self):
        return len(connects)

    def exposed_spin(self):
        while True:
            pass
