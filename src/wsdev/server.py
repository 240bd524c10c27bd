"""The server: its listening sockets, and the start, restart and shutdown of everything on them.

Each listening socket's protocol is a ``connection.Connection``: a WebSocket upgrade to a program
becomes a session (``sessions``), anything else goes to aiohttp (``routes``). The server mirrors
``asyncio.Server``: ``start``, then ``close`` (safe to call twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from wsdev.activation import inherited_sockets, socket_url
from wsdev.config import Config
from wsdev.console import CONSOLE_PREFIX
from wsdev.errors import ServeError
from wsdev.events import EventBus, Restarting, ServerError
from wsdev.routes import Routes
from wsdev.sessions import SessionManager
from wsdev.stream import Acceptor

if TYPE_CHECKING:
    from wsdev.tls import TlsHandshakes

logger = logging.getLogger(__name__)

# How long aiohttp's connections get to finish their requests at shutdown.
HTTP_SHUTDOWN_SECONDS = 2.0
# How long a socket file at --unixsocket gets to show that a server still answers on it.
UNIX_PROBE_SECONDS = 2.0


def listen_backlog() -> int:
    """The kernel's limit for a listening socket's queue, as Go's net package uses.

    A burst of clients larger than the queue overflows it, and each overflowed client waits a
    second or more for its SYN to be retried.
    """
    with contextlib.suppress(OSError, ValueError):
        return max(128, int(Path("/proc/sys/net/core/somaxconn").read_text()))
    return max(128, socket.SOMAXCONN)


class Server:
    """wsdev's HTTP/WebSocket server."""

    def __init__(self, config: Config, bus: EventBus) -> None:
        self.config = config
        self.bus = bus
        self._runner: web.AppRunner | None = None
        self._redirect: web.AppRunner | None = None
        self._acceptor: Acceptor | None = None
        self._tls: TlsHandshakes | None = None
        self.sessions: SessionManager | None = None
        self._closed = False
        self.urls: list[str] = []
        self.console_urls: list[str] = []
        self.port = config.port

    async def start(self) -> None:
        """Listen on every configured address; raises ``ServeError`` (e.g. port in use)."""
        config = self.config
        self.sessions = SessionManager(config, self.bus, self._http_protocol)
        if config.serves_websocket:
            self.sessions.spawner.start()
        routes = Routes(config, self.bus, self.sessions)
        self._runner = web.AppRunner(
            routes.application(), access_log=None, shutdown_timeout=HTTP_SHUTDOWN_SECONDS
        )
        await self._runner.setup()
        ssl_context = None
        if config.ssl:
            from wsdev.tls import server_ssl_context

            ssl_context = server_ssl_context(config)
        inherited = inherited_sockets()
        if inherited:
            # Socket activation: the service manager's sockets, nothing bound here (behaviour B12).
            self.urls += [socket_url(sock, config.scheme) for sock in inherited]
            self.config = config.replace(unixsocket=None)  # its socket file is the manager's
            self._serve(inherited, ssl_context)
            return
        if config.unixsocket is not None:
            bound = self._bind(str(config.unixsocket), 0, unix=True)
            # websocketd 0.5.0's words for it, in the start-up line and the dashboard's header.
            self.urls.append(f"unix socket at {config.unixsocket}")
            self._serve(bound, ssl_context)
            return
        hosts: Sequence[str] = config.addresses or ("127.0.0.1", "::1")
        port = config.port
        bound = []
        for index, host in enumerate(hosts):
            try:
                sockets = self._bind(host, port)
            except ServeError:
                # The default ::1 is a courtesy: a machine without IPv6 still serves on 127.0.0.1.
                if config.addresses or index == 0:
                    raise
                continue
            bound += sockets
            if port == 0:
                # Every address shares the port the first one was given.
                port = int(sockets[0].getsockname()[1])
            self.port = port
            for shown in _shown_hosts(config, host):
                url = f"{config.scheme}://{shown}:{port}/" + _join_query(config)
                if url not in self.urls:
                    self.urls.append(url)
                    self.console_urls.append(
                        f"{config.http_scheme}://{shown}:{port}{self.console_path}"
                        + _join_query(config)
                    )
        if config.lan:
            from wsdev.lan import room_link

            self.sessions.room_link = room_link(self.console_urls)
        if config.redirport:
            await self._start_redirect(hosts, port)
        # Accepting starts last, with no wait between it and the caller's start-up lines: the
        # kernel queues early clients, and none is answered before those lines are written
        # (behaviour A6).
        self._serve(bound, ssl_context)

    def _http_protocol(self) -> asyncio.Protocol:
        """A protocol of aiohttp's server, for a connection that turned out to be plain HTTP."""
        assert self._runner is not None and self._runner.server is not None
        return self._runner.server()

    async def _start_redirect(self, hosts: Sequence[str], port: int) -> None:
        from wsdev.redirect import redirect_app

        runner = web.AppRunner(redirect_app(self.config, port), access_log=None)
        await runner.setup()
        self._redirect = runner
        redirport = self.config.redirport
        for host in hosts:
            site = web.TCPSite(runner, host, redirport)
            try:
                await site.start()
            except OSError as exc:
                raise _listen_error(exc, f"{_url_host(host)}:{redirport}") from None

    @property
    def console_path(self) -> str:
        return "/" if self.config.console_on_any_path else CONSOLE_PREFIX

    def _bind(self, host: str, port: int, *, unix: bool = False) -> list[socket.socket]:
        """Listening sockets for ``host:port`` (or the Unix socket at ``host``)."""
        where = host if unix else f"{_url_host(host)}:{port}"
        try:
            return [bind_unix(host)] if unix else bind_tcp(host, port)
        except OSError as exc:
            raise _listen_error(exc, where, unix=unix) from None

    def _serve(self, sockets: Sequence[socket.socket], ssl_context: ssl.SSLContext | None) -> None:
        """Accept connections on ``sockets`` from now on."""
        assert self.sessions is not None
        factory = self.sessions.connection
        if ssl_context is None:
            self._acceptor = Acceptor(factory)
        else:
            # TLS: asyncio's TLS transport, the same protocol on top, refusals logged.
            from wsdev.tls import TlsHandshakes

            self._tls = TlsHandshakes(ssl_context, factory, self._tls_refused)
            self._acceptor = Acceptor(factory, handoff=self._tls.start)
        for sock in sockets:
            self._acceptor.serve(sock)

    def _tls_refused(self, remote: str, reason: str) -> None:
        self.bus.publish(ServerError(f"TLS handshake with {remote} refused: {reason}", "http"))

    @property
    def live_connections(self) -> int:
        return len(self.sessions.bridges) if self.sessions is not None else 0

    def restart(self, files: Sequence[str]) -> list[asyncio.Task[None]]:
        """Close every live session with 1012 and end its program in the background (D2);
        under --reload=new, only start a new generation: open sessions keep their program.

        Returns the endings of the programs closed (the reloader waits for them, D2)."""
        sessions = self.sessions
        if sessions is None:
            return []
        generation = sessions.new_generation()
        keep = self.config.reload_mode == "new"
        self.bus.publish(Restarting(tuple(files), len(sessions.bridges), generation, keep))
        return [] if keep else sessions.restart(files)

    async def close(self) -> None:
        """Close every session with 1001, end every program (B6), stop listening."""
        if self._closed:
            return
        self._closed = True
        if self._acceptor is not None:
            self._acceptor.close()
        if self._tls is not None:
            self._tls.close()
        if self.config.unixsocket is not None:
            with contextlib.suppress(OSError):
                self.config.unixsocket.unlink()
        if self.sessions is not None:
            await self.sessions.close(1001, "server shutting down")
            self.sessions.spawner.close()
        # CGI scripts still streaming end now, so their requests finish instead of waiting out
        # the shutdown timeout, and none outlives wsdev (B6).
        from wsdev.cgi import end_all_scripts, wait_scripts_ended

        await end_all_scripts()
        for runner in (self._runner, self._redirect):
            if runner is not None:
                await runner.cleanup()
        await wait_scripts_ended()

    def kill_all(self) -> None:
        """Second Ctrl+C: SIGKILL every program's group now."""
        if self.sessions is not None:
            self.sessions.kill_all()
        from wsdev.cgi import kill_all_scripts

        kill_all_scripts()


def bind_tcp(host: str, port: int) -> list[socket.socket]:
    """Listening sockets for every address ``host`` resolves to (IPv6 ones IPv6 only)."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(found):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            # With --port=0 every address of the name shares the port the first one got.
            sock.bind((address[0], port, *address[2:]))
            sock.listen(listen_backlog())
            port = sock.getsockname()[1]
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def bind_unix(path: str) -> socket.socket:
    """A listening Unix socket at ``path`` (behaviour A5).

    A socket file that nobody answers on is what a server that is gone left behind: it is
    replaced. One that answers belongs to a live server, which must not lose it (asyncio's own
    ``create_unix_server`` would delete it): that is refused as in use. Any other kind of file
    at ``path`` is refused too, and never removed.
    """
    where = Path(path)
    if where.is_socket():
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # A live server whose queue is full keeps a connect waiting: it is still live.
        probe.settimeout(UNIX_PROBE_SECONDS)
        try:
            probe.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            where.unlink(missing_ok=True)
        except OSError as exc:
            raise OSError(errno.EADDRINUSE, f"it cannot be probed: {exc}") from None
        else:
            raise OSError(errno.EADDRINUSE, "a server answers on it")
        finally:
            probe.close()
    elif where.exists():
        raise OSError(errno.EEXIST, "a file that is not a socket is there")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        sock.listen(listen_backlog())
    except OSError:
        sock.close()
        raise
    return sock


def _listen_error(exc: OSError, where: str, *, unix: bool = False) -> ServeError:
    if unix and exc.errno == errno.EADDRINUSE:
        return ServeError(
            f"unix socket {where} is already in use ({exc.strerror}): stop the server that "
            "listens there, or choose another --unixsocket path"
        )
    if unix and exc.errno == errno.EEXIST:
        return ServeError(
            f"cannot listen on {where}: {exc.strerror} (only a socket nobody answers on is "
            "replaced): remove it, or choose another --unixsocket path"
        )
    if exc.errno == errno.EADDRINUSE:
        return ServeError(
            f"{where} is already in use: stop what listens there, or choose another "
            "--port (--port=0 picks a free one)"
        )
    if exc.errno == errno.EACCES:
        return ServeError(f"not allowed to listen on {where} (ports below 1024 need root)")
    return ServeError(f"cannot listen on {where}: {exc.strerror or exc}")


def _shown_hosts(config: Config, bound: str) -> list[str]:
    """The hosts a URL names for a bound address: one a person can type (behaviour B14).

    The default (loopback) and --lan's loopback show ``localhost``; a wildcard address shows
    ``localhost`` and each LAN address, never ``0.0.0.0``.
    """
    from wsdev.guard import is_loopback_ip
    from wsdev.lan import shown_hosts

    if not config.addresses or (config.lan and is_loopback_ip(bound)):
        return ["localhost"]
    return [_url_host(host) for host in shown_hosts(bound)]


def _join_query(config: Config) -> str:
    """The join secret rides in every printed link (behaviour B14)."""
    from wsdev.joinsecret import PARAM

    return f"?{PARAM}={config.join_secret}" if config.join_secret else ""


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
