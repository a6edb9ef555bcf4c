"""RPyC's protocol configuration, as a service reads and changes it
(`conn._config`, a server's `protocol_config`). The host speaks the
protocol; inside the component these keys decide what a peer may reach."""

__all__ = ["DEFAULT_CONFIG"]

# What a peer may reach on any object besides its `exposed_` names.
_SAFE_ATTRS = frozenset(
    """__abs__ __add__ __and__ __bool__ __cmp__ __contains__ __delitem__ __delslice__
    __div__ __divmod__ __doc__ __eq__ __float__ __floordiv__ __ge__ __getitem__
    __getslice__ __gt__ __hash__ __hex__ __iadd__ __iand__ __idiv__ __ifloordiv__
    __ilshift__ __imod__ __imul__ __index__ __int__ __invert__ __ior__ __ipow__
    __irshift__ __isub__ __iter__ __itruediv__ __ixor__ __le__ __len__ __long__
    __lshift__ __lt__ __mod__ __mul__ __ne__ __neg__ __new__ __nonzero__ __oct__
    __or__ __pos__ __pow__ __radd__ __rand__ __rdiv__ __rdivmod__ __repr__
    __rfloordiv__ __rlshift__ __rmod__ __rmul__ __ror__ __rpow__ __rrshift__
    __rshift__ __rsub__ __rtruediv__ __rxor__ __setitem__ __setslice__ __str__
    __sub__ __truediv__ __xor__ next __length_hint__ __enter__ __exit__ __next__
    __format__""".split()
)

# RPyC 6's defaults, key for key.
DEFAULT_CONFIG = dict(
    allow_safe_attrs=True,
    allow_exposed_attrs=True,
    allow_public_attrs=False,
    allow_all_attrs=False,
    safe_attrs=_SAFE_ATTRS,
    exposed_prefix="exposed_",
    allow_getattr=True,
    allow_setattr=False,
    allow_delattr=False,
    include_local_traceback=True,
    include_local_version=True,
    instantiate_custom_exceptions=False,
    import_custom_exceptions=False,
    instantiate_oldstyle_exceptions=False,
    propagate_SystemExit_locally=False,
    propagate_KeyboardInterrupt_locally=True,
    log_exceptions=True,
    allow_pickle=False,
    connid=None,
    credentials=None,
    endpoints=None,
    logger=None,
    sync_request_timeout=30,
    before_closed=None,
    close_catchall=False,
    bind_threads=False,
)
