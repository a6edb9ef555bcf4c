"""RPyC's `rpyc.lib.compat`: `rpyc.classic.deliver` unpickles through
`conn.modules["rpyc.lib.compat"].pickle`."""

import pickle

__all__ = ["pickle", "execute"]


def execute(code, globals=None, locals=None):
    """`exec`, as RPyC names it."""
    exec(code, globals, locals)
