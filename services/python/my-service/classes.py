"""The seed's exposed_MyClass (the `classes` interface's resource)."""

from wit_world.exports import classes

# Instances alive: componentize-py 0.25.1 runs no finaliser when the host
# drops an instance, so this only grows (see the conformance table).
live = 0


class ExposedMyClass(classes.ExposedMyClass):
    def __init__(self, a, b):
        global live
        live += 1
        self.a, self.b = a, b

    def exposed_foo(self):
        return self.a + self.b

    def exposed_add(self, other):
        return ExposedMyClass(self.a + other.a, self.b + other.b)

    def secret(self):
        return 42
