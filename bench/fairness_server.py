"""RPyC's own ThreadedServer, for `wasm-rpyc-bench fairness`: the seed's
calculator and a service whose `work(ms)` keeps a CPU busy, served by two
ThreadedServers in one process (as our host serves both), on free ports of
127.0.0.1. Prints both ports once they accept connections."""
import threading
import time

import rpyc
from rpyc.utils.server import ThreadedServer


class CalculatorService(rpyc.Service):
    def exposed_add(self, a, b):
        return a + b


class BurnerService(rpyc.Service):
    def exposed_work(self, ms):
        end = time.perf_counter() + ms / 1000
        while time.perf_counter() < end:
            pass
        return ms


if __name__ == "__main__":
    servers = [ThreadedServer(service, hostname="127.0.0.1", port=0)
               for service in (CalculatorService, BurnerService)]
    for server in servers:
        # ThreadedServer listens only in start(); listen first so that the
        # ports printed accept connections at once.
        server._listen()
    print(*(server.port for server in servers), flush=True)
    threading.Thread(target=servers[1].start, daemon=True).start()
    servers[0].start()
