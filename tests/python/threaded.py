"""Serves an RPyC service with RPyC's own ThreadedServer on 127.0.0.1, on the
port given as the first argument or a free one, and prints the port once the
server accepts connections."""
import sys

from rpyc.utils.server import ThreadedServer


def serve(service):
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = ThreadedServer(service, hostname="127.0.0.1", port=port)
    # ThreadedServer listens only in start(); listen first so that whoever
    # reads the port can connect at once (listening twice is a no-op).
    server._listen()
    print(server.port, flush=True)
    server.start()
