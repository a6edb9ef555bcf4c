"""The seed's callback ServerService, served by RPyC's own ThreadedServer on
127.0.0.1 (on the port given, or a free one); prints the port first."""
import rpyc

import threaded


class ServerService(rpyc.Service):
    def exposed_bar(self, func):
        return func() + "bar"


if __name__ == "__main__":
    threaded.serve(ServerService)
