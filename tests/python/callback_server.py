"""The seed's callback ServerService, served by RPyC's own ThreadedServer on
127.0.0.1 (on the port given, or a free one); prints the port first."""
import sys

import rpyc
from rpyc.utils.server import ThreadedServer


class ServerService(rpyc.Service):
    def exposed_bar(self, func):
        return func() + "bar"


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = ThreadedServer(ServerService, hostname="127.0.0.1", port=port)
    print(server.port, flush=True)
    server.start()
