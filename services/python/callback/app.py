"""The seed's callback ServerService, in Python (world: services/wit/callback)."""

import wit_world
from wasm_rpyc_guest import service


@service
class WitWorld(wit_world.WitWorld):
    ALIASES = ["server"]

    def exposed_bar(self, func):
        return func() + "bar"
