"""The whole pure-Python standard library, importable at run time.

componentize-py keeps in a component only the modules imported while it is
built: the interpreter finds no standard library at run time. `bundle()`,
called while the component is built, reads every module of the standard
library the build sees, compressed, into the component, and appends a
finder to `sys.meta_path` that imports any of them on demand (from source:
`import json` compiles json, once per interpreter). A standard library the
host grants at `/python` is found first.
"""

import importlib.abc
import importlib.util
import os
import sys
import zlib

__all__ = ["bundle"]

# Packages left out: tests, GUIs and tools a sandboxed interpreter cannot use.
_LEFT_OUT = frozenset(
    "test idlelib tkinter turtledemo ensurepip lib2to3 pydoc_data venv __pycache__ site-packages".split()
)


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds and loads the bundled modules: `name` -> (is a package,
    the path it had, its source compressed)."""

    def __init__(self, modules):
        self._modules = modules

    def find_spec(self, name, path=None, target=None):
        found = self._modules.get(name)
        if found is None:
            return None
        package, origin, _ = found
        spec = importlib.util.spec_from_loader(name, self, origin=origin, is_package=package)
        spec.has_location = True
        return spec

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        package, origin, compressed = self._modules[module.__name__]
        module.__file__ = origin
        if package:
            module.__path__ = [os.path.dirname(origin)]
        code = compile(zlib.decompress(compressed), origin, "exec", dont_inherit=True)
        exec(code, module.__dict__)

    def get_source(self, name):
        found = self._modules.get(name)
        return zlib.decompress(found[2]).decode() if found else None


def _modules(root):
    """Every module under `root`, by its dotted name."""
    modules = {}
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = sorted(d for d in subdirectories if d not in _LEFT_OUT)
        relative = os.path.relpath(directory, root)
        parts = [] if relative == "." else relative.split(os.sep)
        for file in sorted(files):
            if not file.endswith(".py"):
                continue
            stem = file[:-3]
            package = stem == "__init__"
            name = ".".join(parts if package else parts + [stem])
            if not name:
                continue
            path = os.path.join(directory, file)
            with open(path, "rb") as source:
                modules[name] = (package, path, zlib.compress(source.read(), 9))
    return modules


def _root():
    """Where the build sees the standard library: the entry of `sys.path`
    that holds `os.py` (`os.__file__` names where it lies at run time)."""
    for entry in sys.path:
        if os.path.isfile(os.path.join(entry, "os.py")):
            return entry
    raise ImportError("no standard library on sys.path to bundle")


def bundle():
    """Bundles the standard library the build sees."""
    if any(isinstance(finder, _Finder) for finder in sys.meta_path):
        return
    sys.meta_path.append(_Finder(_modules(_root())))
