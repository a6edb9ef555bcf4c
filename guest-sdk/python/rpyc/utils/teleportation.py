"""The receiving end of `rpyc.classic.teleport_function`: a function's code,
sent as a tuple of its code object's fields, made a function here.

Bytecode is particular to a Python version, and a code tuple does not say
which one made it, so the peer is asked (classic mode serves both ways): a
function from another minor version is refused with a `ValueError` naming
both, instead of running bytecode this interpreter would misread.
"""

import sys
import types

__all__ = ["import_function"]

# How `rpyc.utils.teleportation` marks a nested code object among constants.
_CODE_MARK = "MAg1c J0hNNzo0hn ZqhuBP17LQk8"

# The fields `export_function` sends of a code object, Python 3.11 on.
_FIELDS = 18


def _peer_version():
    import wasm_rpyc_guest as guest

    try:
        version = guest.root.eval("__import__('sys').version_info[:2]")
    except Exception as error:
        raise ValueError(
            "teleport_function needs a classic client (rpyc.classic.connect) to tell its Python "
            f"version: {error}"
        ) from None
    return tuple(version)


def _code(fields):
    if len(fields) != _FIELDS:
        raise ValueError(f"a code object of {len(fields)} fields; Python {_here()} has {_FIELDS}")
    fields = list(fields)
    fields[7] = tuple(
        _code(const[1]) if type(const) is tuple and len(const) == 2 and const[0] == _CODE_MARK else const
        for const in fields[7]
    )
    return types.CodeType(*fields)


def _here():
    return "{}.{}".format(*sys.version_info[:2])


def import_function(functup, globals=None, def_=True):
    """The function `functup` describes (name, module, defaults,
    keyword-only defaults, code), with `globals` as its globals (and
    defined there under its name when `def_`)."""
    peer = _peer_version()
    if peer != tuple(sys.version_info[:2]):
        raise ValueError(
            "teleport_function sends bytecode, which only the same Python version runs: the client runs "
            "Python {}.{}, this sandboxed interpreter Python {}".format(*peer, _here())
        )
    name, _module, defaults, kwdefaults, codetup = functup
    if globals is None:
        globals = {}
    elif type(globals) is not dict:
        globals = {key: globals[key] for key in globals.keys()}
    globals.setdefault("__builtins__", __builtins__)
    function = types.FunctionType(_code(codetup), globals, name, defaults)
    function.__kwdefaults__ = dict(kwdefaults) if kwdefaults else None
    if def_:
        globals[name] = function
    return function
