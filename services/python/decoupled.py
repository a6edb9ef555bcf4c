"""The seed's decoupled ServerService: it calls the client's own service
back (`self._conn.root`)."""

import rpyc


class ServerService(rpyc.Service):
    def exposed_bar(self):
        return self._conn.root.foo() + "bar"
