"""The seed's CalculatorService, in Python (world: services/wit/calculator)."""

import wit_world
from wasm_rpyc_guest import service


@service
class WitWorld(wit_world.WitWorld):
    def exposed_add(self, a, b):
        return a + b

    def exposed_sub(self, a, b):
        return a - b

    def exposed_mul(self, a, b):
        return a * b

    def exposed_div(self, a, b):
        return a / b

    def foo(self):
        print("foo")
