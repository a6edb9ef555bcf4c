"""The sandbox's refusals, said plainly. A component starts no processes:
under WASI the functions that would are missing (`os.system` is an
`AttributeError`) or fail with a bare `OSError`. `refuse_processes()`
makes each of them raise a `PermissionError` that says the sandbox refuses
it, as code written for an ordinary server expects an `OSError`; and
`explain_network()` makes a socket the host does not let through fail with
a `PermissionError` that says so, not a bare resolver error.
"""

import errno
import os

__all__ = ["refuse_processes", "explain_network"]

# What would start, replace or signal a process, in `os`.
_OS_FUNCTIONS = """system popen fork forkpty vfork posix_spawn posix_spawnp spawnl spawnle spawnlp
    spawnlpe spawnv spawnve spawnvp spawnvpe execl execle execlp execlpe execv execve execvp
    execvpe kill killpg wait waitpid wait3 wait4 waitid startfile""".split()


def _refusing(name):
    def refused(*args, **kwargs):
        raise PermissionError(errno.EPERM, f"the sandbox runs no processes: {name} is refused")

    refused.__name__ = name.rpartition(".")[2]
    refused.__qualname__ = name
    return refused


def refuse_processes():
    """Makes every way to start a process refuse with `PermissionError`."""
    for name in _OS_FUNCTIONS:
        setattr(os, name, _refusing(f"os.{name}"))
    # With `os.fork` there, the standard library registers what runs after
    # a fork (`random` does): nothing ever runs it.
    os.register_at_fork = lambda **callbacks: None
    import subprocess

    subprocess.Popen.__init__ = _refusing("subprocess.Popen")
    # `subprocess.run`, `call`, `check_output` and `getoutput` start a Popen.


def _explained(name, call, refusals):
    def explained(*args, **kwargs):
        try:
            return call(*args, **kwargs)
        except refusals as error:
            message = f"the sandbox grants no network: {name} failed ({error})"
        raise PermissionError(errno.EPERM, message)

    explained.__name__ = call.__name__
    return explained


def explain_network():
    """Makes sockets, name lookups, connects and binds the host refuses raise a
    `PermissionError` that says the sandbox grants no network (a grant,
    where given, lets them through unchanged)."""
    import socket

    # How WASI's sockets refuse: a lookup fails, a connect or bind is denied
    # (a connection refused by its peer is not the sandbox's doing).
    refusals = (socket.gaierror, PermissionError)
    socket.getaddrinfo = _explained("socket.getaddrinfo", socket.getaddrinfo, refusals)
    for method in ("__init__", "connect", "bind"):
        call = getattr(socket.socket, method)
        what = "socket.socket()" if method == "__init__" else f"socket.{method}"
        setattr(socket.socket, method, _explained(what, call, refusals))
