"""RPyC's services inside a wasm-rpyc component: `Service`, `VoidService`
and classic mode's `SlaveService` (RPyC's `rpyc.core.service`)."""

import importlib

__all__ = ["Service", "VoidService", "Slave", "SlaveService", "ClassicService", "ModuleNamespace"]


class Service:
    """The base class of a service, as RPyC's: `exposed_` members are what
    the peer may reach; `ALIASES` names the service (else the class name
    without `Service`, upper-cased); `on_connect(conn)` and
    `on_disconnect(conn)` run once per connection, and `conn.root` is the
    peer's service. One object is made per connection."""

    __slots__ = ()
    ALIASES = ()

    def on_connect(self, conn):
        """Called when the connection is established."""

    def on_disconnect(self, conn):
        """Called once the connection has ended (no calls to the peer then)."""

    def _rpyc_setattr(self, name, value):
        # The service object's attributes are not the peer's to set, not
        # even in classic mode.
        raise AttributeError("access denied")

    def _rpyc_delattr(self, name):
        raise AttributeError("access denied")

    @classmethod
    def get_service_aliases(cls):
        """The service's names, upper-cased."""
        if cls.ALIASES:
            return tuple(str(alias).upper() for alias in cls.ALIASES)
        name = cls.__name__.upper()
        if name.endswith("SERVICE"):
            name = name[: -len("SERVICE")]
        return (name,)

    @classmethod
    def get_service_name(cls):
        """The service's proper name: its first alias."""
        return cls.get_service_aliases()[0]

    exposed_get_service_aliases = get_service_aliases
    exposed_get_service_name = get_service_name


class VoidService(Service):
    """A service that exposes nothing."""

    __slots__ = ()


class ModuleNamespace:
    """The peer's modules by name (`conn.modules.os`, `conn.modules["os.path"]`),
    each imported once through `getmodule`."""

    __slots__ = ["__getmodule", "__cache", "__weakref__"]

    def __init__(self, getmodule):
        self.__getmodule = getmodule
        self.__cache = {}

    def __contains__(self, name):
        try:
            self[name]
        except ImportError:
            return False
        return True

    def __getitem__(self, name):
        if type(name) is tuple:
            name = ".".join(name)
        if name not in self.__cache:
            self.__cache[name] = self.__getmodule(name)
        return self.__cache[name]

    def __getattr__(self, name):
        return self[name]


class Slave:
    """What classic mode lets the peer do: run any code in this
    interpreter, inside the component's sandbox."""

    __slots__ = ["_conn", "namespace"]

    def __init__(self):
        self._conn = None
        self.namespace = {}

    def execute(self, text):
        """Runs `text` (`exec`) in the connection's namespace."""
        exec(text, self.namespace)

    def eval(self, text):
        """Evaluates `text` (`eval`) in the connection's namespace."""
        return eval(text, self.namespace)

    def getmodule(self, name):
        """Imports the module `name` (`"a.b"`, or `("a", "b")`) and returns it."""
        if type(name) is tuple:
            name = ".".join(name)
        return importlib.import_module(name)

    def getconn(self):
        """This side's connection to the peer."""
        return self._conn


class SlaveService(Slave, Service):
    """RPyC's classic service: the peer reaches every attribute of every
    object, sets and deletes them, pickles them, and runs code. Served from a
    component, it reaches only what the sandbox grants."""

    __slots__ = ()

    def on_connect(self, conn):
        self._conn = conn
        conn._config.update(
            dict(
                allow_all_attrs=True,
                allow_pickle=True,
                allow_getattr=True,
                allow_setattr=True,
                allow_delattr=True,
                allow_exposed_attrs=False,
                import_custom_exceptions=True,
                instantiate_custom_exceptions=True,
                instantiate_oldstyle_exceptions=True,
            )
        )


class ClassicService(SlaveService):
    """Classic mode both ways, as RPyC's: the peer's modules are
    `conn.modules` (the peer serves classic too)."""

    __slots__ = ()

    def on_connect(self, conn):
        super().on_connect(conn)
        conn.modules = ModuleNamespace(lambda name: conn.root.getmodule(name))
        conn.eval = lambda text: conn.root.eval(text)
        conn.execute = lambda text: conn.root.execute(text)
