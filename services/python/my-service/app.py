"""The seed's MyService, in Python (world: services/wit/my-service); the
exposed class is in `classes.py`, the module componentize-py looks it up in."""

import classes
import wit_world
from wit_world import exports
from wasm_rpyc_guest import service


class Classes(exports.Classes):
    def exposed_live_objects(self):
        return classes.live

    def exposed_same(self, obj, other):
        return obj is other


@service
class WitWorld(wit_world.WitWorld):
    ALIASES = ["foo", "bar", "spam"]
    connected = False

    def on_connect(self):
        self.connected = True

    def exposed_connected(self):
        return self.connected
