"""The seed's CalculatorService, as the RPyC docs write it (built with
`wasm-rpyc build calculator.py`)."""

import rpyc


class CalculatorService(rpyc.Service):
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
