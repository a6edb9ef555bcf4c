"""The seed's CalculatorService, served by RPyC's own ThreadedServer on
127.0.0.1 (on the port given, or a free one); prints the port first."""
import rpyc

import threaded


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


if __name__ == "__main__":
    threaded.serve(CalculatorService)
