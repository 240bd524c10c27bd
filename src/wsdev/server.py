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

from aiohttp import web

from wsdev.activation import inherited_sockets, serve_sockets, socket_url
from wsdev.config import Config
from wsdev.errors import ServeError
from wsdev.events import EventBus, Restarting
from wsdev.routes import Routes
from wsdev.sessions import CONSOLE_PREFIX, SessionManager
from wsdev.stream import Acceptor

logger = logging.getLogger(__name__)

# How long aiohttp's connections get to finish their requests at shutdown.
HTTP_SHUTDOWN_SECONDS = 2.0


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
        self._tls_listeners: list[asyncio.Server] = []
        self.sessions: SessionManager | None = None
        self._closed = False
        self.urls: list[str] = []
        self.console_urls: list[str] = []
        self.port = config.port

    async def start(self) -> None:
        """Listen on every configured address; raises ``ServeError`` (e.g. port in use)."""
        config = self.config
        self.sessions = SessionManager(config, self.bus, self._http_protocol)
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
            factory = self.sessions.connection
            self._acceptor, self._tls_listeners = await serve_sockets(
                inherited, factory, ssl_context
            )
            self.urls += [socket_url(sock, config.scheme) for sock in inherited]
            self.config = config.replace(unixsocket=None)  # its socket file is the manager's
            return
        if config.unixsocket is not None:
            await self._listen(str(config.unixsocket), 0, ssl_context, unix=True)
            self.urls.append(f"{config.scheme}+unix:{config.unixsocket}")
            return
        hosts: Sequence[str] = config.addresses or ("127.0.0.1", "::1")
        port = config.port
        for index, host in enumerate(hosts):
            try:
                listener = await self._listen(host, port, ssl_context)
            except ServeError:
                # The default ::1 is a courtesy: a machine without IPv6 still serves on 127.0.0.1.
                if config.addresses or index == 0:
                    raise
                continue
            if port == 0:
                # Every address shares the port the first one was given.
                port = int(listener[0].getsockname()[1])
            self.port = port
            shown = "localhost" if not config.addresses else _url_host(host)
            url = f"{config.scheme}://{shown}:{port}/"
            if url not in self.urls:
                self.urls.append(url)
                self.console_urls.append(
                    f"{config.http_scheme}://{shown}:{port}{self.console_path}"
                )
        if config.redirport:
            await self._start_redirect(hosts, port)

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

    async def _listen(
        self, host: str, port: int, ssl_context: ssl.SSLContext | None, *, unix: bool = False
    ) -> list[socket.socket]:
        """Bind and serve ``host:port`` (or the Unix socket at ``host``); the bound sockets."""
        assert self.sessions is not None
        where = host if unix else f"{_url_host(host)}:{port}"
        try:
            sockets = [bind_unix(host)] if unix else bind_tcp(host, port)
        except OSError as exc:
            raise _listen_error(exc, where) from None
        factory = self.sessions.connection
        if ssl_context is None:
            if self._acceptor is None:
                self._acceptor = Acceptor(factory)
            for sock in sockets:
                self._acceptor.serve(sock)
            return sockets
        # TLS: asyncio's accept and TLS transport, the same protocol on top.
        loop = asyncio.get_running_loop()
        for sock in sockets:
            listener = await loop.create_server(
                factory, sock=sock, ssl=ssl_context, backlog=listen_backlog()
            )
            self._tls_listeners.append(listener)
        return sockets

    @property
    def live_connections(self) -> int:
        return len(self.sessions.bridges) if self.sessions is not None else 0

    def restart(self, files: Sequence[str]) -> None:
        """Close every live session with 1012 and end its program in the background (D2)."""
        sessions = self.sessions
        if sessions is None:
            return
        self.bus.publish(Restarting(tuple(files), len(sessions.bridges)))
        sessions.restart(files)

    async def close(self) -> None:
        """Close every session with 1001, end every program (B6), stop listening."""
        if self._closed:
            return
        self._closed = True
        if self._acceptor is not None:
            self._acceptor.close()
        for listener in self._tls_listeners:
            listener.close()
        if self.config.unixsocket is not None:
            with contextlib.suppress(OSError):
                self.config.unixsocket.unlink()
        if self.sessions is not None:
            await self.sessions.close(1001, "server shutting down")
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
    """A listening Unix socket at ``path``: a stale socket file there is replaced, a live one
    (another server answers on it) is left alone and refused as in use."""
    if Path(path).is_socket():
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except OSError:
            Path(path).unlink()  # nobody answers: a server that is gone left it
        else:
            raise OSError(errno.EADDRINUSE, "address already in use")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        sock.listen(listen_backlog())
    except OSError:
        sock.close()
        raise
    return sock


def _listen_error(exc: OSError, where: str) -> ServeError:
    if exc.errno == errno.EADDRINUSE:
        return ServeError(
            f"{where} is already in use: stop what listens there, or choose another "
            "--port (--port=0 picks a free one)"
        )
    if exc.errno == errno.EACCES:
        return ServeError(f"not allowed to listen on {where} (ports below 1024 need root)")
    return ServeError(f"cannot listen on {where}: {exc.strerror or exc}")


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
