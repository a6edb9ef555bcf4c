"""RPyC's decorators: `@rpyc.service` exposes what `@rpyc.exposed` marks."""

import rpyc


@rpyc.service
class DecoratedService(rpyc.Service):
    @rpyc.exposed
    def ping(self):
        return "pong"

    @rpyc.exposed
    class Box:
        @rpyc.exposed
        def open(self):
            return "opened"
