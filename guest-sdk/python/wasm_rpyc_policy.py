"""RPyC's access policy: what a peer may do with a service's object (read,
set or delete an attribute, pickle it), decided by the connection's
configuration as RPyC's `_check_attr` decides it. RPyC's defaults (the
`exposed_` names and the safe dunder names) take a fast path; a service that
changes the configuration (`protocol_config`, or classic mode's
`allow_all_attrs`) is served key by key."""

import inspect
import sys

from rpyc.core.protocol import DEFAULT_CONFIG

__all__ = ["Config", "get_attr", "set_attr", "del_attr", "dumps"]

_SAFE_ATTRS = DEFAULT_CONFIG["safe_attrs"]
_PREFIX = DEFAULT_CONFIG["exposed_prefix"]


class Config(dict):
    """A connection's configuration (RPyC's `conn._config`): RPyC's
    defaults until the service changes it; `custom` says whether it has."""

    custom = False

    def __init__(self):
        super().__init__(DEFAULT_CONFIG)


def _changing(name):
    change = getattr(dict, name)

    def method(self, *args, **kwargs):
        self.custom = True
        return change(self, *args, **kwargs)

    method.__name__ = name
    return method


for _name in ("__setitem__", "__delitem__", "__ior__", "update", "setdefault", "pop", "popitem", "clear"):
    setattr(Config, _name, _changing(_name))


def get_attr(obj, name, config):
    """`obj.name` as the peer may read it (RPyC's `_handle_getattr`)."""
    if not config.custom:
        return _default_member(obj, name)
    return _access(obj, name, (), "_rpyc_getattr", "allow_getattr", getattr, config)


def set_attr(obj, name, value, config):
    """`setattr(obj, name, value)` where the policy allows it."""
    _access(obj, name, (value,), "_rpyc_setattr", "allow_setattr", setattr, config)


def del_attr(obj, name, config):
    """`delattr(obj, name)` where the policy allows it."""
    _access(obj, name, (), "_rpyc_delattr", "allow_delattr", delattr, config)


def dumps(obj, protocol, config):
    """`pickle.dumps(obj, protocol)` where the policy allows pickling."""
    if not config["allow_pickle"]:
        raise ValueError("pickling is disabled")
    # Imported only by a service that pickles: classic mode has it at hand.
    import pickle

    return bytes(pickle.dumps(obj, protocol))


def _access(obj, name, args, overrider, perm, default, config):
    """RPyC's `_access_attr`: the object's type may answer itself
    (`_rpyc_getattr`...), else the name is checked."""
    accessor = getattr(type(obj), overrider, None)
    if accessor is None:
        accessor = default
        name = _check(obj, name, perm, config)
    return accessor(obj, name, *args)


def _check(obj, name, perm, config):
    """RPyC's `_check_attr`: the attribute `name` reaches, by `config`."""
    if not config[perm]:
        raise AttributeError(f"cannot access {name!r}")
    exposed_prefix = config["exposed_prefix"]
    prefix = config["allow_exposed_attrs"] and exposed_prefix
    plain = (
        config["allow_all_attrs"]
        or (exposed_prefix and name.startswith(exposed_prefix))
        or (config["allow_safe_attrs"] and name in config["safe_attrs"])
        or (config["allow_public_attrs"] and not name.startswith("_"))
    )
    has_exposed = prefix and hasattr(obj, prefix + name)
    if plain and (not has_exposed or hasattr(obj, name)):
        return name
    if has_exposed:
        return prefix + name
    if plain:
        return name
    raise AttributeError(f"cannot access {name!r}")


# The exposed spelling of the ordinary names peers have asked for (at most
# `_EXPOSED_NAMES_KEPT`; a peer naming more costs only the cache's misses).
_exposed_names = {}
_EXPOSED_NAMES_KEPT = 1024


def _default_member(obj, name):
    """`_check` under RPyC's defaults, the path of every call: an `exposed_`
    name or a safe one as itself (unless only its exposed spelling exists),
    any other as its exposed spelling; `AttributeError` where the policy
    allows neither."""
    exposed = _exposed_names.get(name)
    if exposed is None:
        if name in _SAFE_ATTRS or name.startswith(_PREFIX):
            return getattr(obj, _plain_name(obj, name))
        # Interned, a name's lookups hit the type's attribute cache.
        exposed = sys.intern(_PREFIX + name)
        if len(_exposed_names) < _EXPOSED_NAMES_KEPT:
            _exposed_names[name] = exposed
    # The exposed spelling is the only one it may reach, read once.
    try:
        return getattr(obj, exposed)
    except AttributeError:
        # A member that is there but raised says why itself.
        if _has_static(obj, exposed):
            raise
    raise AttributeError(f"cannot access {name!r}")


def _plain_name(obj, name):
    """The attribute an `exposed_` or safe `name` reaches: itself, unless
    only its exposed spelling exists."""
    exposed = _PREFIX + name
    if hasattr(obj, exposed) or _has_static(obj, exposed):
        return name if hasattr(obj, name) else exposed
    return name


def _has_static(obj, name):
    try:
        inspect.getattr_static(obj, name)
    except AttributeError:
        return False
    return True
