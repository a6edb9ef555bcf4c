"""RPyC's classic mode (`rpyc_classic`'s server), as `wasm-rpyc classic`
serves it: the peer runs any Python in this interpreter, which reaches only
what the sandbox grants. Classic goes both ways: the peer's modules are
`conn.modules` here.

Imported while the component is built: what it imports is in the
interpreter's image, ready in every instance; the rest of the standard
library is bundled and imported on demand.
"""

# What classic clients reach first (every connect: builtins and
# importlib.util; obtain and deliver: pickle; upload and download: os) and
# what code sent to a server uses most.
import collections  # noqa: F401
import functools  # noqa: F401
import importlib.util  # noqa: F401
import io  # noqa: F401
import itertools  # noqa: F401
import json  # noqa: F401
import math  # noqa: F401
import os  # noqa: F401
import pickle  # noqa: F401
import re  # noqa: F401
import time  # noqa: F401
import traceback  # noqa: F401

import rpyc
import rpyc.lib.compat  # noqa: F401
import rpyc.utils.teleportation  # noqa: F401
import wasm_rpyc_sandbox
import wasm_rpyc_stdlib

wasm_rpyc_stdlib.bundle()
wasm_rpyc_sandbox.refuse_processes()
wasm_rpyc_sandbox.explain_network()


class SlaveService(rpyc.ClassicService):
    """RPyC's SlaveService, under the registry name RPyC's has."""

    ALIASES = ["SLAVE"]
