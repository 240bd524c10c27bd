"""Listening sockets handed over by a service manager (systemd's socket activation, B12).

The protocol (``sd_listen_fds(3)``): when ``LISTEN_PID`` is this process's id, ``LISTEN_FDS``
says how many listening sockets it inherited, at fd 3 and on. wsdev then serves those instead of
binding its own, so the manager can start it on the first connection and keep the socket (and
the connections queued on it) across restarts.
"""

from __future__ import annotations

import os
import socket
from collections.abc import MutableMapping

from wsdev.errors import ServeError

# The first inherited fd: after stdin, stdout and stderr.
FIRST_FD = 3
VARIABLES = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")


def inherited_sockets(environ: MutableMapping[str, str] | None = None) -> list[socket.socket]:
    """The listening sockets passed to this process, or none; raises ``ServeError`` for a
    hand-over that cannot be served.

    The variables are removed (as ``sd_listen_fds`` does with ``unset_environment``) and the fds
    made non-inheritable, so no program wsdev starts believes they are its own.
    """
    env = os.environ if environ is None else environ
    pid, count = env.get("LISTEN_PID", ""), env.get("LISTEN_FDS", "")
    if not pid or not count or pid.strip() != str(os.getpid()):
        return []
    for name in VARIABLES:
        env.pop(name, None)
    try:
        n = int(count)
    except ValueError:
        raise ServeError(f"LISTEN_FDS={count!r} is not a number of sockets") from None
    sockets: list[socket.socket] = []
    for fd in range(FIRST_FD, FIRST_FD + n):
        try:
            sock = socket.socket(fileno=fd)
        except OSError as exc:
            raise ServeError(f"inherited fd {fd} is not a socket: {exc.strerror or exc}") from None
        if sock.type != socket.SOCK_STREAM or not sock.getsockopt(
            socket.SOL_SOCKET, socket.SO_ACCEPTCONN
        ):
            sock.detach()
            raise ServeError(
                f"inherited fd {fd} is not a listening stream socket: use ListenStream= and "
                "Accept=no in the .socket unit"
            )
        sock.set_inheritable(False)
        sockets.append(sock)
    return sockets


def socket_url(sock: socket.socket, scheme: str) -> str:
    """What the start-up line shows for an inherited socket."""
    if sock.family == socket.AF_UNIX:
        name = sock.getsockname()
        path = name.decode(errors="replace") if isinstance(name, bytes) else str(name)
        return f"unix socket at {path or '(unnamed)'}"  # as for --unixsocket
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}/"
