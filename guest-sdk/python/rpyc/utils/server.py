"""RPyC's servers, for the `if __name__ == "__main__":` block of a service
module: importing them works, starting one says the host serves instead."""

__all__ = ["Server", "ThreadedServer", "ThreadPoolServer", "ForkingServer", "OneShotServer"]


class Server:
    """Stands for RPyC's servers: `wasm-rpyc serve` serves the service."""

    def __init__(self, *args, **kwargs):
        raise RuntimeError(
            f"{type(self).__name__} cannot run inside a wasm-rpyc service: "
            "serve the module with `wasm-rpyc serve`"
        )


class ThreadedServer(Server):
    """RPyC's ThreadedServer."""


class ThreadPoolServer(Server):
    """RPyC's ThreadPoolServer."""


class ForkingServer(Server):
    """RPyC's ForkingServer."""


class OneShotServer(Server):
    """RPyC's OneShotServer."""
