"""Serves a plain RPyC service class as a component of the `dynamic` world.

`wasm-rpyc build calculator.py` writes an app module that calls
`serve("calculator", None)` and exports the classes it returns: the module
is imported (at build time, so its mistakes are reported then), its
`rpyc.Service` subclass found, and every connection gets its own service
object, made at `on-connect`. Each attribute, call and question the peer
asks of one of the service's objects arrives through the `objects`
interface and is answered here under the connection's access policy (RPyC's
default, unless the service changes `conn._config`); values
brine cannot carry (lists, dicts, instances, functions, generators) go to
the peer by reference, and come back as themselves.
"""

import importlib
import importlib.util
import inspect
import itertools
import os
import sys
import traceback

import rpyc
import wasm_rpyc_guest as guest
import wasm_rpyc_policy as policy
import wit_world
from componentize_py_types import Err
from rpyc.core.protocol import DEFAULT_CONFIG
from wit_world.exports import Objects as _Objects
from wit_world.exports import objects
from wit_world.imports import types

__all__ = ["serve"]

# The members every `rpyc.Service` has: the host answers those itself.
_BASE_MEMBERS = frozenset(dir(rpyc.Service))
_PREFIX = DEFAULT_CONFIG["exposed_prefix"]


class Table:
    """The service's objects the peer holds, by handle: each time an object
    is sent it gets a new handle, and it lives while any of them does."""

    def __init__(self):
        self._objects = {}
        # Handle 0 is the running connection's service object; each
        # connection's (service, configuration), by its number.
        self._roots = {}
        # With one connection (always, in an instance of its own), its
        # root: no need to ask the host which connection is running.
        self._only_root = None
        self._next = 1

    def root(self, connection, service, config):
        self._roots[connection] = service, config
        self._note_only_root()

    def forget_root(self, connection):
        """The connection has ended; once none is left, nothing is lent."""
        self._roots.pop(connection, None)
        self._note_only_root()
        if not self._roots:
            self._objects.clear()

    def _note_only_root(self):
        self._only_root = next(iter(self._roots.values())) if len(self._roots) == 1 else None

    def lend(self, obj):
        """A new handle for `obj`, its class as Python names it (a class's
        own name, for a class), and whether it is a class."""
        handle = self._next
        self._next += 1
        self._objects[handle] = obj
        is_class = isinstance(obj, type)
        cls = obj if is_class else type(obj)
        # A class made by `type()` where no `__name__` is set has no module.
        module = getattr(cls, "__module__", None) or "builtins"
        return handle, f"{module}.{cls.__name__}", is_class

    def get(self, handle):
        if handle == 0 and self._only_root is not None:
            return self._only_root[0]
        try:
            if handle == 0:
                return self._roots[guest.connection()][0]
            return self._objects[handle]
        except KeyError:
            raise ReferenceError(f"the service holds no object {handle}") from None

    def config(self):
        """The running connection's configuration."""
        if self._only_root is not None:
            return self._only_root[1]
        return self._roots[guest.connection()][1]

    def release(self, handle):
        if handle:
            self._objects.pop(handle, None)


class Connection:
    """RPyC's connection as a service sees it in `on_connect(conn)`:
    `conn.root` is the peer's service. In a shared instance it is reached
    during the connection's own calls and hooks; to reach a peer at any
    time, keep the objects it passes (its callbacks)."""

    def __init__(self, number):
        self._number = number
        # RPyC's `conn._config`: what the peer may reach, by RPyC's keys.
        self._config = policy.Config()

    @property
    def root(self):
        if guest.connection() != self._number:
            raise RuntimeError(
                "conn.root reaches its peer only during its own connection's calls; "
                "keep the peer's callbacks to reach it from another connection's"
            )
        return guest.root


def _error(error):
    """The `error` record of an exception the service raised."""
    if isinstance(error, Err):
        return error.value
    return guest.error_record(error)


def _answering(method):
    """`method` of the `objects` export, its exceptions sent as `error`s."""

    def export(self, *args):
        try:
            return method(self, *args)
        except Exception as error:
            failure = _error(error)
        # Raised outside the handler: the traceback does not keep the frame
        # (and the peer's objects it holds) alive.
        raise Err(failure)

    export.__name__ = method.__name__
    return export


def _exposed_callables(obj, config):
    """The names the peer calls the object's routines and classes by: its
    `exposed_` ones without the prefix, and, where the configuration lets
    the peer reach public names as themselves (classic mode's
    `allow_all_attrs`, `allow_public_attrs`), its public ones."""
    public = config["allow_all_attrs"] or config["allow_public_attrs"]
    names = {}
    for name in dir(obj):
        if name in _BASE_MEMBERS:
            continue
        if name.startswith(_PREFIX) and config["allow_exposed_attrs"]:
            called = name[len(_PREFIX):]
        elif public and not name.startswith("_"):
            called = name
        else:
            continue
        try:
            member = inspect.getattr_static(obj, name)
        except AttributeError:
            continue
        if isinstance(member, (staticmethod, classmethod)) or inspect.isroutine(member) or inspect.isclass(member):
            names[called] = None
    return tuple(names)


def _methods(obj):
    """RPyC's `get_methods`: every routine along the type's MRO, with its doc."""
    mros = list(reversed(type(obj).__mro__))
    if isinstance(obj, type):
        mros += list(reversed(obj.__mro__))
    attrs = {}
    for cls in mros:
        attrs.update(cls.__dict__)
    return tuple(
        (name, inspect.getdoc(attr)) for name, attr in attrs.items() if inspect.isroutine(attr)
    )


def _describe(obj, what, config):
    if what == objects.Description.REPR:
        return repr(obj)
    if what == objects.Description.STR:
        return str(obj)
    if what == objects.Description.HASH:
        return hash(obj)
    if what == objects.Description.DIR:
        return tuple(dir(obj))
    if what == objects.Description.METHODS:
        return _methods(obj)
    return _exposed_callables(obj, config)


_from_value, _to_value = guest.from_value, guest.to_value


def _make_objects(table):
    class Objects(_Objects):
        @_answering
        def get_attr(self, handle, name):
            return guest.to_value(policy.get_attr(table.get(handle), name, table.config()))

        def call(self, handle, method, args, kwargs):
            # `_answering` inlined: this is every call's path.
            try:
                target = table.get(handle)
                if method is not None:
                    target = policy.get_attr(target, method, table.config())
                args = _from_value(args)
                if kwargs:
                    result = target(*args, **{name: _from_value(value) for name, value in kwargs})
                else:
                    result = target(*args)
                return _to_value(result)
            except Exception as error:
                failure = _error(error)
            raise Err(failure)

        @_answering
        def describe(self, handle, what):
            return guest.to_value(_describe(table.get(handle), what, table.config()))

        @_answering
        def set_attr(self, handle, name, value):
            policy.set_attr(table.get(handle), name, guest.from_value(value), table.config())

        @_answering
        def del_attr(self, handle, name):
            policy.del_attr(table.get(handle), name, table.config())

        @_answering
        def pickle(self, handle, protocol):
            return guest.to_value(policy.dumps(table.get(handle), protocol, table.config()))

        @_answering
        def buff_iter(self, handle, count):
            return guest.to_value(tuple(itertools.islice(table.get(handle), count)))

        @_answering
        def instance_check(self, handle, instance):
            return guest.to_value(isinstance(guest.from_value(instance), table.get(handle)))

        @_answering
        def exit_context(self, handle, exception):
            exit = policy.get_attr(table.get(handle), "__exit__", table.config())
            return guest.to_value(_exit(exit, guest.from_value(exception)))

        def release(self, handle):
            table.release(handle)

    return Objects


def _exit(exit, exception):
    """Calls a context manager's `exit` as RPyC's server does: an exception
    the block raised (the class, as RPyC's client sends it) is raised here
    first, and `exit` told of what that raised."""
    if exception is None:
        return exit(None, None, None)
    try:
        raise exception
    except BaseException as raised:
        return exit(type(raised), raised, raised.__traceback__)


def _hook(hook, conn):
    """Runs a connection hook: RPyC passes the connection; the seed's
    `on_connect(self)` takes none."""
    try:
        takes_conn = len(inspect.signature(hook).parameters) > 0
    except (TypeError, ValueError):
        takes_conn = True
    if takes_conn:
        hook(conn)
    else:
        hook()


def _make_world(cls, table):
    # Each connection's service object and connection, by its number.
    state = {}

    class WitWorld(wit_world.WitWorld):
        def service_aliases(self):
            return list(cls.get_service_aliases())

        @_answering
        def on_connect(self):
            number = guest.connection()
            service = cls()
            conn = Connection(number)
            table.root(number, service, conn._config)
            state[number] = service, conn
            # The seed's services reach the peer as `self._conn.root`.
            try:
                service._conn = conn
            except AttributeError:
                pass
            try:
                _hook(service.on_connect, conn)
            except BaseException:
                # The connection closes: it leaves nothing behind.
                del state[number]
                table.forget_root(number)
                raise

        def on_disconnect(self):
            number = guest.connection()
            try:
                if number in state:
                    service, conn = state.pop(number)
                    _hook(service.on_disconnect, conn)
            except Exception:
                # Nobody is left to tell: the log is (and the instance,
                # which other connections may share, lives on).
                traceback.print_exc()
            finally:
                table.forget_root(number)

    return WitWorld


class BuildError(Exception):
    """The module cannot be served; the message names the file and line."""


def _where(error, path):
    """`file:line` of the deepest frame of `error` in the service's file,
    named by its file name (the builder knows where it lies)."""
    name = os.path.basename(path)
    if isinstance(error, SyntaxError) and error.filename:
        return f"{os.path.basename(error.filename)}:{error.lineno}"
    line = None
    for frame in traceback.extract_tb(error.__traceback__):
        if frame.filename == path:
            line = frame.lineno
    return f"{name}:{line}" if line else name


def _service_class(module, name):
    found = [
        value
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, rpyc.Service) and value.__module__ == module.__name__
    ]
    path = os.path.basename(module.__file__)
    if name is not None:
        chosen = [cls for cls in found if cls.__name__ == name]
        if not chosen:
            raise BuildError(f"{path}: no rpyc.Service subclass named {name}")
        return chosen[0]
    if not found:
        raise BuildError(f"{path}: defines no rpyc.Service subclass (class MyService(rpyc.Service): ...)")
    if len(found) > 1:
        names = ", ".join(cls.__name__ for cls in found)
        raise BuildError(f"{path}: defines several rpyc.Service subclasses ({names}); choose one with --service NAME")
    return found[0]


def serve(module_name, service_name):
    """The `WitWorld` and `Objects` classes that serve the `rpyc.Service`
    subclass of `module_name` (the one named `service_name`, if given).
    A module that cannot be served prints one line saying where and why,
    prefixed `wasm-rpyc build:`, and raises."""
    try:
        try:
            module = importlib.import_module(module_name)
        except Exception as error:
            spec = importlib.util.find_spec(module_name)
            path = spec.origin if spec else module_name
            kind = type(error).__name__
            message = error.msg if isinstance(error, SyntaxError) else str(error)
            raise BuildError(f"{_where(error, path)}: {kind}: {message}") from error
        cls = _service_class(module, service_name)
    except BuildError as error:
        print(f"wasm-rpyc build: {error}", file=sys.stderr, flush=True)
        raise
    table = Table()
    guest.lend_objects(table)
    return _make_world(cls, table), _make_objects(table)
