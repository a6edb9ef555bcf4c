"""RPyC's service API inside a wasm-rpyc component.

A service module written for RPyC imports this package unchanged: `Service`
and `VoidService`, `exposed` and `service` behave as RPyC's do, and the
server and connection factories a module's `if __name__ == "__main__":`
block uses exist (the host serves the connections, so calling them says
so). `wasm-rpyc build module.py` bundles it in place of RPyC.
"""

import functools
import inspect

from rpyc.core.service import ClassicService, Service, SlaveService, VoidService

__all__ = [
    "Service", "VoidService", "SlaveService", "ClassicService", "exposed", "service", "async_", "connect",
]

EXPOSED_PREFIX = "exposed_"


def _mark(prefix, obj):
    obj.__exposed__ = prefix
    return obj


def exposed(arg):
    """Marks a method, class or descriptor for `@service` to expose;
    `@exposed("prefix_")` exposes it under another prefix."""
    if isinstance(arg, str):
        return functools.partial(_mark, arg)
    if callable(arg) or hasattr(arg, "__get__"):
        return _mark(EXPOSED_PREFIX, arg)
    raise TypeError("rpyc.exposed expects a callable object, descriptor, or string")


def service(cls):
    """Exposes the members of `cls` marked with `@exposed` under their
    prefixed names too (classes among them recursively)."""
    for name, member in inspect.getmembers(cls):
        prefix = getattr(member, "__exposed__", False)
        if prefix and not inspect.iscode(member):
            if inspect.isclass(member):
                member = service(member)
            setattr(cls, name, member)
            setattr(cls, prefix + name, member)
    return cls


def async_(proxy):
    """RPyC's `async_`: a function that calls `proxy`, one of the peer's
    objects (a callback), without waiting for it. It returns None at once:
    the answer, or the exception the peer raises, is dropped, so a broadcast
    to many peers waits for none of them."""
    import wasm_rpyc_guest  # only inside a component

    if not isinstance(proxy, wasm_rpyc_guest.Netref):
        raise TypeError(f"async_ expects one of the peer's objects, not a {type(proxy).__name__}")
    return functools.partial(wasm_rpyc_guest.call_async, proxy)


def _hosted(what):
    raise RuntimeError(
        f"{what} is not available inside a wasm-rpyc service: the host serves its connections"
    )


def connect(*args, **kwargs):
    """Not available in a service: the host makes the connections."""
    _hosted("rpyc.connect")
