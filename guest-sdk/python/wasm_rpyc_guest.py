"""Write wasm-rpyc services in Python (componentize-py).

A service is a component whose `exposed-*` exports are remote methods. Its
WIT world includes `wasm-rpyc:service/service`; componentize-py generates the
`wit_world` module for it, and the app's `WitWorld` class implements the
exports. With `@service` that class reads like an RPyC service:

    import wit_world
    from wasm_rpyc_guest import service

    @service
    class WitWorld(wit_world.WitWorld):
        def exposed_add(self, a, b):
            return a + b

        def exposed_div(self, a, b):
            return a / b          # ZeroDivisionError reaches the caller as itself

`@service` wraps every export the world declares:

- an exception the method raises becomes the export's `error` (the world
  declares the export `-> result<T, error>`), keeping its Python class name;
- a `netref` argument arrives as a `Netref`: call it (`func(1, x=2)`), read
  its attributes (`obj.name`, `obj.method(...)`), pass it back;
- a dynamic `value` argument arrives as the Python value it holds (netrefs
  inside it as `Netref`s), and a method whose export returns a `value`
  returns any Python value;
- hooks the world declares (`on-connect`, `on-disconnect`) default to doing
  nothing, and `service-aliases` to the class's `ALIASES`.

`root` is the peer's service (RPyC's `self._conn.root`): `root.foo()` calls
the peer's `foo`. The class is instantiated once per connection, so its
attributes are that connection's state.
"""

import builtins
import functools
import inspect
import struct
import traceback
import typing
import weakref

import wit_world
from componentize_py_types import Err
from wit_world.imports import peer, types

__all__ = [
    "service", "Netref", "RemoteError", "root", "connection", "call_async", "to_value", "from_value",
    "lend_objects", "error_record",
]


class RemoteError(Exception):
    """An exception the peer raised whose class is not a Python builtin."""

    def __init__(self, type_name, message):
        super().__init__(message)
        self.type_name = type_name


def _raised(error):
    """The Python exception for an `error` the peer or the host sent."""
    cls = getattr(builtins, error.type_name, None)
    if isinstance(cls, type) and issubclass(cls, Exception):
        return cls(error.message)
    return RemoteError(error.type_name, error.message)


def _answer(call, *args):
    """Calls a `peer` function and unpacks its value, or raises its error."""
    try:
        value = call(*args)
    except Err as err:
        error = err.value
        # The bindings' frame that raised `err` holds it: a cycle through the
        # traceback, which reaches our callers' frames and the netrefs they
        # hold. Cut it so they go when unused, not at the next collection.
        err.with_traceback(None)
    else:
        return from_value(value)
    raise _raised(error)


def _arguments(args, kwargs):
    return [to_value(a) for a in args], [(k, to_value(v)) for k, v in kwargs.items()]


def _drop(handle):
    handle.__exit__(None, None, None)


class Netref:
    """One of the peer's objects (a callback, an instance, a list), held by
    this service. The peer's object is released when this goes away, as
    RPyC's netrefs are; passing it to the peer (as an argument, in a
    result) passes the same object, and this one stays usable."""

    def __init__(self, handle):
        self._handle = handle
        self._release = weakref.finalize(self, _drop, handle)

    def _duplicate(self):
        """A handle of its own to hand to the peer: this one stays usable
        (even as the target of the call that passes it)."""
        handle = self._handle.duplicate()
        if handle is None:
            raise RuntimeError("the service holds as many of the peer's objects as it may")
        return handle

    def __call__(self, *args, **kwargs):
        return _answer(peer.call, self._handle, *_arguments(args, kwargs))

    def __repr__(self):
        return f"<netref {self._handle.class_name()}>"

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _answer(peer.get_attr, self._handle, name)

    @property
    def __class__(self):
        # A netref of the peer's builtin type passes `isinstance` as that
        # type, as RPyC's netrefs do.
        module, _, name = self._handle.class_name().rpartition(".")
        cls = getattr(builtins, name, None) if module == "builtins" else None
        return cls if isinstance(cls, type) else Netref

    def call_method(self, name, *args, **kwargs):
        """`obj.name(*args, **kwargs)` in one round trip."""
        return _answer(peer.call_method, self._handle, name, *_arguments(args, kwargs))


def _forwarded(name):
    def method(self, *args):
        try:
            return self.call_method(name, *args)
        except AttributeError:
            # The peer's object has no such method: to Python (`len`,
            # `iter`, `dict(obj)`'s length hint), a type that lacks it.
            pass
        raise TypeError(f"the peer's {self._handle.class_name()} object has no {name}")

    method.__name__ = name
    return method


# What Python looks up on the type (`len(x)`, `x[0]`, `for y in x`) reaches
# the peer's object as the same method.
for _name in (
    "__len__", "__getitem__", "__setitem__", "__delitem__", "__contains__", "__iter__",
    "__next__", "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__hash__",
    "__add__", "__sub__", "__mul__", "__truediv__", "__floordiv__", "__mod__", "__neg__",
    "__str__", "__enter__", "__exit__",
):
    setattr(Netref, _name, _forwarded(_name))


def _truth(self):
    """`bool(obj)` as Python decides it: `__bool__`, else `__len__`, else true."""
    for name, truth in (("__bool__", bool), ("__len__", lambda n: n != 0)):
        try:
            return truth(self.call_method(name))
        except AttributeError:
            pass
    return True


Netref.__bool__ = _truth


class _Root:
    """The peer's service: `root.foo(*args, **kwargs)`."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return functools.partial(self._call, name)

    @staticmethod
    def _call(name, *args, **kwargs):
        return _answer(peer.call_root, name, *_arguments(args, kwargs))


root = _Root()


def connection():
    """The connection the running call, hook or release comes from: 0 in an
    instance of its own, a number of its own per connection in a shared
    instance (`serve --shared`)."""
    return peer.connection()


def call_async(target, *args, **kwargs):
    """Calls the peer's `target` without waiting (RPyC's `async_`): the
    call is sent and this returns None at once; its answer, or the
    exception it raises, is dropped."""
    if not isinstance(target, Netref):
        raise TypeError(f"async_ calls one of the peer's objects, not a {type(target).__name__}")
    try:
        peer.call_async(target._handle, *_arguments(args, kwargs))
    except Err as err:
        error = err.value
        err.with_traceback(None)
    else:
        return None
    raise _raised(error)

_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1

# The types brine carries by value (exactly these: a subclass travels by
# reference), when the service lends its other objects.
_BY_VALUE = (
    type(None), bool, int, float, complex, str, bytes, tuple, frozenset, slice, type(NotImplemented), type(...),
)

# The packed format of a `value` (documented on the record in the WIT): a
# tag byte, then what the tag says, little-endian.
(
    _NONE, _FALSE, _TRUE, _INT, _BIG_INT, _FLOAT, _COMPLEX, _STR, _BYTES, _TUPLE, _FROZENSET, _NETREF, _OBJECT,
    _SLICE, _NOT_IMPLEMENTED, _ELLIPSIS, _CLASS,
) = range(17)
_TAGGED_INT = struct.Struct("<Bq")
_TAGGED_FLOAT = struct.Struct("<Bd")
_TAGGED_COMPLEX = struct.Struct("<Bdd")
_TAGGED_U32 = struct.Struct("<BI")
_TAGGED_OBJECT = struct.Struct("<BQI")
_S64, _F64, _U32, _U64 = (struct.Struct(f"<{code}") for code in "qdIQ")
_TWO_F64 = struct.Struct("<dd")
# A tuple of up to 8 ints (the common arguments), read at once: by its
# packed size, its layout and what its tag bytes then read.
_INT_TUPLES = {
    5 + 9 * count: (struct.Struct("<BI" + "Bq" * count), (_TUPLE, count) + (_INT,) * count)
    for count in range(9)
}

# The service's own objects the peer holds, when it lends them (see
# `lend_objects`).
_lent = None


def lend_objects(table):
    """Makes `to_value` lend every value brine cannot carry (a list, a dict,
    an instance, a function, a class) as `table.lend(obj)` names it (its
    handle, class name and whether it is a class), and `from_value` give back
    `table.get(handle)` for an object the peer passes back."""
    global _lent
    _lent = table


def to_value(obj):
    """A Python value as the dynamic `value` record."""
    # The common case, a lone int, skips the walk.
    if type(obj) is int and _LONG_MIN <= obj <= _LONG_MAX:
        return types.Value(_TAGGED_INT.pack(_INT, obj), [])
    packed, netrefs = bytearray(), []
    _pack(obj, packed, netrefs)
    return types.Value(bytes(packed), netrefs)


# Module functions, not closures: a recursive closure is a reference cycle,
# which would keep the peer's objects alive until the next collection.
def _pack(item, packed, netrefs):
    """Appends `item` (then its children) to `packed`."""
    if type(item) is Netref:
        # Before the containers: a netref of the peer's list passes
        # `isinstance(item, list)`, and goes back as itself.
        netrefs.append(item._duplicate())
        packed += _TAGGED_U32.pack(_NETREF, len(netrefs) - 1)
    elif _lent is not None and type(item) not in _BY_VALUE:
        handle, class_name, is_class = _lent.lend(item)
        name = class_name.encode()
        packed += _TAGGED_OBJECT.pack(_CLASS if is_class else _OBJECT, handle, len(name))
        packed += name
    elif item is None:
        packed.append(_NONE)
    elif isinstance(item, bool):
        packed.append(_TRUE if item else _FALSE)
    elif isinstance(item, int):
        if _LONG_MIN <= item <= _LONG_MAX:
            packed += _TAGGED_INT.pack(_INT, item)
        else:
            _sized(packed, _BIG_INT, str(item).encode())
    elif isinstance(item, float):
        packed += _TAGGED_FLOAT.pack(_FLOAT, item)
    elif isinstance(item, complex):
        packed += _TAGGED_COMPLEX.pack(_COMPLEX, item.real, item.imag)
    elif isinstance(item, str):
        _sized(packed, _STR, item.encode())
    elif isinstance(item, (bytes, bytearray)):
        _sized(packed, _BYTES, item)
    elif isinstance(item, (tuple, list, frozenset, set)):
        packed += _TAGGED_U32.pack(_TUPLE if isinstance(item, (tuple, list)) else _FROZENSET, len(item))
        for child in item:
            _pack(child, packed, netrefs)
    elif isinstance(item, slice):
        packed.append(_SLICE)
        for part in (item.start, item.stop, item.step):
            _pack(part, packed, netrefs)
    elif item is NotImplemented:
        packed.append(_NOT_IMPLEMENTED)
    elif item is Ellipsis:
        packed.append(_ELLIPSIS)
    else:
        raise TypeError(f"a {type(item).__name__} cannot be sent to the peer")


def _sized(packed, tag, data):
    packed += _TAGGED_U32.pack(tag, len(data))
    packed += data


def from_value(value):
    """The Python value a dynamic `value` record holds."""
    packed = value.packed
    size = len(packed)
    # The common cases skip the walk: a lone int, a tuple of a few ints.
    if size == 9 and packed[0] == _INT:
        return _TAGGED_INT.unpack(packed)[1]
    ints = _INT_TUPLES.get(size)
    if ints is not None:
        layout, tags = ints
        fields = layout.unpack(packed)
        if fields[:2] + fields[2::2] == tags:
            return fields[3::2]
    try:
        item, end = _unpack(packed, 0, value.netrefs, {})
    except (IndexError, struct.error, UnicodeDecodeError) as error:
        raise ValueError(f"a malformed packed value: {error}") from None
    if end != size:
        raise ValueError(f"a malformed packed value: {size - end} bytes follow it")
    return item


def _unpack(packed, at, netrefs, held):
    """The item at `at` and where the next begins; `held` keeps one
    `Netref` per netref."""
    tag = packed[at]
    at += 1
    if tag == _INT:
        return _S64.unpack_from(packed, at)[0], at + 8
    if tag == _STR or tag == _BYTES or tag == _BIG_INT:
        end = at + 4 + _U32.unpack_from(packed, at)[0]
        if end > len(packed):
            raise IndexError("a length runs past the end")
        data = packed[at + 4 : end]
        if tag == _STR:
            return data.decode(), end
        return (data if tag == _BYTES else int(data)), end
    if tag == _NONE:
        return None, at
    if tag == _TRUE or tag == _FALSE:
        return tag == _TRUE, at
    if tag == _FLOAT:
        return _F64.unpack_from(packed, at)[0], at + 8
    if tag == _TUPLE or tag == _FROZENSET:
        count = _U32.unpack_from(packed, at)[0]
        at += 4
        items = []
        for _ in range(count):
            item, at = _unpack(packed, at, netrefs, held)
            items.append(item)
        return (tuple(items) if tag == _TUPLE else frozenset(items)), at
    if tag == _NETREF:
        index = _U32.unpack_from(packed, at)[0]
        if index not in held:
            held[index] = Netref(netrefs[index])
        return held[index], at + 4
    if tag == _OBJECT or tag == _CLASS:
        handle = _U64.unpack_from(packed, at)[0]
        end = at + 12 + _U32.unpack_from(packed, at + 8)[0]
        if end > len(packed):
            raise IndexError("a class name runs past the end")
        return _lent.get(handle), end
    if tag == _COMPLEX:
        return complex(*_TWO_F64.unpack_from(packed, at)), at + 16
    if tag == _SLICE:
        start, at = _unpack(packed, at, netrefs, held)
        stop, at = _unpack(packed, at, netrefs, held)
        step, at = _unpack(packed, at, netrefs, held)
        return slice(start, stop, step), at
    if tag == _NOT_IMPLEMENTED:
        return NotImplemented, at
    if tag == _ELLIPSIS:
        return Ellipsis, at
    raise IndexError(f"unknown tag {tag}")


def _incoming(hint):
    """How an argument of WIT type `hint` reaches the method."""
    if hint is types.Value:
        return from_value
    if hint is types.Netref:
        return Netref
    return None


def _outgoing(hint):
    """How the method's result becomes the export's of WIT type `hint`."""
    if hint is types.Value:
        return to_value
    if hint is types.Netref:
        return lambda result: result._duplicate() if isinstance(result, Netref) else result
    return None


def _type_name(error):
    cls = type(error)
    if isinstance(error, RemoteError):
        return error.type_name
    if cls.__module__ == "builtins":
        return cls.__name__
    return f"{cls.__module__}.{cls.__qualname__}"


def _message(error):
    """The exception's argument, as the peer will pass it to the class again
    (`str(KeyError("k"))` would quote it)."""
    if len(error.args) == 1 and isinstance(error.args[0], str):
        return error.args[0]
    return str(error)


# How many of a traceback's innermost frames the peer is told of.
_TRACEBACK_FRAMES = 30


def error_record(error):
    """The `error` record of an exception the service raised, with its
    traceback as Python prints it."""
    text = "".join(traceback.format_exception(error, limit=-_TRACEBACK_FRAMES))
    return types.Error(_type_name(error), _message(error), text)


def _export(method, declared):
    """`method` wrapped to take and return what the export `declared` does."""
    hints = typing.get_type_hints(declared)
    params = list(inspect.signature(declared).parameters)[1:]  # after self
    incoming = [_incoming(hints.get(name)) for name in params]
    outgoing = _outgoing(hints.get("return"))

    @functools.wraps(method)
    def export(self, *raw):
        args = [convert(arg) if convert else arg for convert, arg in zip(incoming, raw)]
        try:
            result = method(self, *args)
        except Exception as error:
            failure = error.value if isinstance(error, Err) else error_record(error)
        else:
            return outgoing(result) if outgoing else result
        # The error raised keeps this frame alive: let go of the peer's
        # objects first, and raise outside the handler, as in `_answer`.
        del args
        raise Err(failure)

    return export


_DEFAULTS = {
    "on_connect": lambda self: None,
    "on_disconnect": lambda self: None,
    "service_aliases": lambda self: [str(alias).upper() for alias in getattr(self, "ALIASES", ())],
}


def service(cls):
    """Makes `cls` (the app's `WitWorld`) serve every export of the world."""
    for name, declared in inspect.getmembers(wit_world.WitWorld, inspect.isfunction):
        if name.startswith("_"):
            continue
        method = cls.__dict__.get(name) or _DEFAULTS.get(name)
        if method is None:
            inherited = getattr(cls, name)
            if getattr(inherited, "__isabstractmethod__", False):
                raise TypeError(f"{cls.__name__} does not implement the export {name}")
            method = inherited
        setattr(cls, name, _export(method, declared))
    cls.__abstractmethods__ = frozenset()
    _one_instance(cls)
    return cls


def _one_instance(cls):
    """componentize-py makes an instance of the class for every export:
    make that always the same one (its `__init__` run once), so attributes
    are the instance's state, as a service object's are in RPyC (one per
    connection, unless the instance is shared: then one for all)."""
    only = []

    def __new__(klass, *args, **kwargs):
        if not only:
            only.append(object.__new__(klass))
        return only[0]

    cls.__new__ = __new__
    init = cls.__dict__.get("__init__")
    if init is not None:
        def __init__(self, *args, **kwargs):
            if not getattr(self, "_initialised", False):
                self._initialised = True
                init(self, *args, **kwargs)

        cls.__init__ = __init__
