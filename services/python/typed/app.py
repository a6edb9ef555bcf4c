"""The seed's CalculatorService (`services/python/calculator.py`, the very
class) with a typed WIT world (services/wit/calculator): its arguments are
converted by the exports' types, which refuse what they do not take
(`add("4", 7)` is a TypeError)."""

import wit_world
from calculator import CalculatorService
from wasm_rpyc_guest import service


@service
class WitWorld(wit_world.WitWorld):
    exposed_add = CalculatorService.exposed_add
    exposed_sub = CalculatorService.exposed_sub
    exposed_mul = CalculatorService.exposed_mul
    exposed_div = CalculatorService.exposed_div
    foo = CalculatorService.foo
