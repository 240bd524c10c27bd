"""The HTTP server: where every request is admitted or refused and routed (SPEC A5, C1).

Routing order: wsdev's own routes under ``/_wsdev/`` → WebSocket upgrade (when a program is
served) → CGI → static files → the console on any other path (when neither static nor CGI
folders claim them) → 404. ``_admit`` is the single place a request that would start a program is
refused (origin 403, ``--maxforks`` 429), so later admission rules have one home.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aiohttp import HttpVersion11, web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http_parser import RawRequestMessage
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler

from wsdev import __version__
from wsdev.bridge import Bridge, launch
from wsdev.config import Config
from wsdev.environ import RequestFacts, cgi_environ, inherited_environ
from wsdev.errors import ServeError
from wsdev.events import Connected, ConnectionInfo, EventBus, HttpRequest, Rejected, Restarting
from wsdev.feed import serve_feed
from wsdev.inbound import DirectWebSocketResponse, handshake_acceptable
from wsdev.prelaunch import read_handshake, switching_protocols
from wsdev.process import Child, abandon
from wsdev.sinks import ConsoleSink, PlainSink, Sink
from wsdev.upgraded import UpgradedProtocol, attach, supported
from wsdev.urlmap import map_url
from wsdev.wire import FrameWriter

logger = logging.getLogger(__name__)

CONSOLE_PREFIX = "/_wsdev/"
SERVER_HEADER = f"wsdev/{__version__}"
NOT_FOUND_BODY = "404 page not found\n"
# The largest request body read (a CGI POST): aiohttp refuses bigger ones with 413.
MAX_REQUEST_BODY = 64 * 1024**2


class _IdSource:
    """UNIQUE_IDs like websocketd's (nanosecond clock), never repeated within one run."""

    def __init__(self) -> None:
        self._last = 0
        self.count = 0

    def next(self) -> tuple[str, int]:
        self._last = max(time.time_ns(), self._last + 1)
        self.count += 1
        return str(self._last), self.count


class Server:
    """wsdev's HTTP/WebSocket server; mirrors ``asyncio.Server``: ``start``, ``close``."""

    def __init__(self, config: Config, bus: EventBus) -> None:
        self.config = config
        self.bus = bus
        self._bridges: set[Bridge] = set()
        self._cgi_running = 0
        self._starting = 0  # admitted WebSocket upgrades whose bridge is not registered yet
        # What needs a look-up, a script folder or TLS first is served by aiohttp's path only.
        self._prelaunching = (
            bool(config.command) and not config.ssl and not config.reverselookup and supported()
        )
        # Connections served from their accept on (``upgraded``): the tasks that run them.
        self._upgraded: set[asyncio.Task[None]] = set()
        # wsdev's own environment does not change while it runs: read --passenv from it once.
        self._inherited = inherited_environ(config)
        self._ids = _IdSource()
        self._runners: list[web.BaseRunner] = []
        self._closed = False
        self.urls: list[str] = []
        self.console_urls: list[str] = []
        self.port = config.port

    # ------------------------------------------------------------ lifecycle

    def make_handler(self) -> web.Server:
        """aiohttp's low-level server: every request goes to ``_handle``, which routes it.

        No ``web.Application``: wsdev has one catch-all route, so the router, the middleware
        chain and the response signal would only add work to every connection.
        """
        return _Server(
            self._handle,
            request_factory=self._make_request,
            access_log=None,
            protocol_for_data=self._prelaunch,
        )

    def _make_request(
        self,
        message: RawRequestMessage,
        payload: StreamReader,
        protocol: RequestHandler,
        writer: AbstractStreamWriter,
        task: asyncio.Task[None],
    ) -> web.BaseRequest:
        return _Request(
            message,
            payload,
            protocol,
            writer,
            task,
            asyncio.get_running_loop(),
            client_max_size=MAX_REQUEST_BODY,
            add_headers=self._add_headers,
        )

    async def start(self) -> None:
        """Listen on every configured address; raises ``ServeError`` (e.g. port in use)."""
        config = self.config
        runner = web.ServerRunner(self.make_handler(), shutdown_timeout=2.0)
        await runner.setup()
        self._runners.append(runner)
        ssl_context = None
        if config.ssl:
            from wsdev.tls import server_ssl_context

            ssl_context = server_ssl_context(config)
        if config.unixsocket is not None:
            await self._listen(
                web.UnixSite(runner, str(config.unixsocket), ssl_context=ssl_context)
            )
            self.urls.append(f"{config.scheme}+unix:{config.unixsocket}")
            return
        hosts: Sequence[str] = config.addresses or ("127.0.0.1", "::1")
        port = config.port
        for index, host in enumerate(hosts):
            site = web.TCPSite(runner, host, port, ssl_context=ssl_context, reuse_address=True)
            try:
                await self._listen(site, host, port)
            except ServeError:
                # The default ::1 is a courtesy: a machine without IPv6 still serves on 127.0.0.1.
                if config.addresses or index == 0:
                    raise
                continue
            if port == 0:
                # Every address shares the port the first one was given.
                port = int(runner.addresses[0][1])
            self.port = port
            shown = "localhost" if not config.addresses else _url_host(host)
            url = f"{config.scheme}://{shown}:{port}/"
            if url not in self.urls:
                self.urls.append(url)
                self.console_urls.append(
                    f"{config.http_scheme}://{shown}:{port}{self.console_path}"
                )
        if config.redirport:
            from wsdev.redirect import redirect_app

            redirect_runner = web.AppRunner(redirect_app(config, port), access_log=None)
            await redirect_runner.setup()
            self._runners.append(redirect_runner)
            for host in hosts:
                await self._listen(
                    web.TCPSite(redirect_runner, host, config.redirport), host, config.redirport
                )

    @property
    def console_path(self) -> str:
        return "/" if self.config.console_on_any_path else CONSOLE_PREFIX

    async def _listen(self, site: web.BaseSite, host: str = "", port: int = 0) -> None:
        try:
            await site.start()
        except OSError as exc:
            where = f"{_url_host(host)}:{port}" if host else str(self.config.unixsocket)
            if exc.errno == errno.EADDRINUSE:
                raise ServeError(
                    f"{where} is already in use: stop what listens there, or choose another "
                    "--port (--port=0 picks a free one)"
                ) from None
            if exc.errno == errno.EACCES:
                raise ServeError(
                    f"not allowed to listen on {where} (ports below 1024 need root)"
                ) from None
            raise ServeError(f"cannot listen on {where}: {exc.strerror or exc}") from None

    @property
    def live_connections(self) -> int:
        return len(self._bridges)

    def restart(self, files: Sequence[str]) -> None:
        """Close every live connection with 1012 and end its child in the background (SPEC D2)."""
        self.bus.publish(Restarting(tuple(files), len(self._bridges)))
        for bridge in list(self._bridges):
            bridge.close(1012, "service restart", files)

    async def close(self) -> None:
        """Close every connection with 1001, end every child (SPEC B6), stop listening."""
        if self._closed:
            return
        self._closed = True
        for bridge in list(self._bridges):
            bridge.close(1001, "server shutting down")
        endings = [b.ending for b in list(self._bridges) if b.ending is not None]
        # A connection answered on accept ends with its task (aiohttp does not know it).
        endings.extend(self._upgraded)
        if endings:
            await asyncio.gather(*endings, return_exceptions=True)
        # CGI scripts still streaming end now (SIGTERM, then SIGKILL), so their requests finish
        # instead of waiting out the shutdown timeout, and none outlives wsdev (SPEC B6).
        from wsdev.cgi import end_all_scripts, wait_scripts_ended

        await end_all_scripts()
        for runner in self._runners:
            await runner.cleanup()
        await wait_scripts_ended()

    def kill_all(self) -> None:
        """Second Ctrl+C: SIGKILL every child's group now."""
        import signal

        for bridge in list(self._bridges):
            child = bridge._child
            if child is not None:
                child.signal_group(signal.SIGKILL)
        from wsdev.cgi import kill_all_scripts

        kill_all_scripts()

    # ------------------------------------------------------------ routing

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        config = self.config
        if "Expect" in request.headers:
            refused = await _answer_expect(request)
            if refused is not None:
                return refused
        path = request.path
        if _is_console_path(path):
            return await self._wsdev_route(request, path[len(CONSOLE_PREFIX) :])
        if _is_upgrade(request) and config.serves_websocket:
            return await self._websocket(request, path, request.query_string, console=False)
        if config.cgidir is not None:
            from wsdev.cgi import find_cgi_script

            found = find_cgi_script(config.cgidir, request.rel_url.raw_path)
            if found is not None:
                return await self._cgi(request, *found)
        if config.staticdir is not None:
            from wsdev.staticfiles import serve_static

            response = await serve_static(request, config.staticdir)
            if response is not None:
                self._access(request, response.status, "STATIC")
                return response
        if config.console_on_any_path and request.method in ("GET", "HEAD"):
            # The raw query: the page hands it back, and the program must see it percent-encoded.
            return self._console_page(request, path, request.rel_url.raw_query_string)
        self._access(request, 404, "NOT FOUND")
        return web.Response(status=404, text=NOT_FOUND_BODY)

    async def _wsdev_route(self, request: web.BaseRequest, rest: str) -> web.StreamResponse:
        if rest == "ws" and _is_upgrade(request) and self.config.serves_websocket:
            target = request.query.get("path", "/") or "/"
            if not target.startswith("/"):
                target = "/" + target
            return await self._websocket(
                request, target, request.query.get("query", ""), console=True
            )
        if rest == "events" and _is_upgrade(request):
            if not _is_loopback(request.remote):
                return self._refuse(request, 403, "the events feed answers loopback clients only")
            return await serve_feed(request, self.bus)
        if self.config.console:
            if rest in ("", "index.html") and request.method in ("GET", "HEAD"):
                return self._console_page(request, "/", "")
            if rest.startswith("static/"):
                from wsdev.console import console_asset

                asset = console_asset(rest[len("static/") :])
                if asset is not None:
                    self._access(request, asset.status, "CONSOLE")
                    return asset
        self._access(request, 404, "NOT FOUND")
        return web.Response(status=404, text=NOT_FOUND_BODY)

    def _console_page(self, request: web.BaseRequest, path: str, query: str) -> web.StreamResponse:
        if not self.config.console:
            self._access(request, 404, "NOT FOUND")
            return web.Response(status=404, text=NOT_FOUND_BODY)
        from wsdev.console import console_page

        self._access(request, 200, "CONSOLE")
        return console_page(self.config, path, query)

    # ------------------------------------------------------------ admission

    def _admit(self, request: web.BaseRequest, *, check_origin: bool) -> web.Response | None:
        """The one place a request that would start a program is refused (403, 429)."""
        origin = request.headers.get("Origin") if check_origin else None
        refusal = self._refusal(origin, request.headers.get("Host", ""), check_origin=check_origin)
        return None if refusal is None else self._refuse(request, *refusal)

    def _refusal(
        self, origin: str | None, host: str, *, check_origin: bool
    ) -> tuple[int, str] | None:
        """Why a request that would start a program is refused (status, reason), if it is."""
        config = self.config
        if check_origin and (config.origins or config.sameorigin):
            from wsdev.origin import origin_refusal

            why = origin_refusal(origin, host, config)
            if why is not None:
                return 403, f"origin not allowed: {why}"
        if config.maxforks and self.children_running >= config.maxforks:
            return 429, f"too many connections: {config.maxforks} programs already running"
        return None

    @property
    def children_running(self) -> int:
        return len(self._bridges) + self._cgi_running + self._starting

    def _refuse(self, request: web.BaseRequest, status: int, reason: str) -> web.Response:
        self.bus.publish(
            Rejected(
                status,
                reason,
                _full_url(request),
                request.remote or "",
                request.headers.get("Origin", ""),
            )
        )
        return web.Response(status=status, text=f"{status} {reason}\n")

    def _access(self, request: web.BaseRequest, status: int, kind: str) -> None:
        self.bus.publish(
            HttpRequest(request.method, _full_url(request), request.remote or "", status, kind)
        )

    # ------------------------------------------------------------ WebSocket

    async def _websocket(
        self, request: web.BaseRequest, path: str, query: str, *, console: bool
    ) -> web.StreamResponse:
        config = self.config
        if config.script_dir is not None:
            match = map_url(config.script_dir, path)
            if match is None:
                return await self._refuse_ws(request, 404, f"no program at {path}", console)
            argv: Sequence[str] = (str(match.file),)
            script_name, path_info = match.script_name, match.path_info
        else:
            argv = config.command
            script_name, path_info = "/", path
        if request.method != "GET":
            # aiohttp would upgrade any method; RFC 6455 (and websocketd) allow only GET.
            self._access(request, 405, "BAD HANDSHAKE")
            return web.Response(
                status=405,
                text="405 method not allowed: a WebSocket upgrade must be a GET\n",
                headers={"Allow": "GET", "Sec-WebSocket-Version": "13"},
            )
        if request.transport is None:
            # The client has already left (before its handler ran): start no program for it.
            logger.debug("client left before its handshake was served", extra={"category": "http"})
            return web.Response(status=400, text="400 the client has left\n")
        refusal = self._admit(request, check_origin=True)
        if refusal is not None:
            if console:
                return await self._console_refusal(request, refusal.status, refusal.text or "")
            return refusal
        # Counted by --maxforks from admission on: parallel upgrades must not all get through
        # while earlier ones are still awaiting their handshake or a reverse lookup.
        self._starting += 1
        bridge: Bridge | None = None
        registered = False
        try:
            bridge = await self._bridge_for(
                request, path, query, argv, script_name, path_info, console
            )
            ws = bridge.ws
            try:
                await ws.prepare(request)
            except web.HTTPException as exc:
                self._access(request, exc.status, "BAD HANDSHAKE")
                return web.Response(
                    status=exc.status,
                    text=f"{exc.status} {exc.reason}: not a valid WebSocket handshake\n",
                    headers={"Sec-WebSocket-Version": "13"},
                )
            except ConnectionError:
                # The client hung up during its own handshake: nothing to serve, nothing wrong.
                logger.debug("client left during the handshake", extra={"category": "http"})
                return ws
            self._bridges.add(bridge)
            registered = True
            self._starting -= 1
            self.bus.publish(Connected(bridge.conn))
            await bridge.run()
        finally:
            if not registered:
                self._starting -= 1
                if bridge is not None:
                    bridge.abandon()  # its program may have started before the handshake failed
            else:
                self._bridges.discard(bridge)  # if ``released`` has not already
        return ws

    async def _bridge_for(
        self,
        request: web.BaseRequest,
        path: str,
        query: str,
        argv: Sequence[str],
        script_name: str,
        path_info: str,
        console: bool,
    ) -> Bridge:
        """The connection's bridge, its program already started (SPEC A2; see ``launch``)."""
        config = self.config
        unique_id, seq = self._ids.next()
        raw_path = _raw_target(path, query) if console else request.raw_path
        facts = await self._request_facts(request, raw_path)
        env = cgi_environ(
            config,
            facts,
            script_name=script_name,
            path_info=path_info,
            unique_id=unique_id,
            parent=self._inherited,
        )
        # A handshake aiohttp will refuse starts no program: its client never connected.
        launched = launch(argv, env) if handshake_acceptable(request) else None
        conn = ConnectionInfo(
            id=unique_id,
            seq=seq,
            remote=facts.remote_addr,
            path=path,
            query=query,
            url=f"{config.http_scheme}://{facts.host}{raw_path}",
            origin=request.headers.get("Origin", ""),
            command=config.command_display if config.script_dir is None else str(argv[0]),
            console=console,
        )
        writer = FrameWriter(request.transport, request.protocol)
        return self._new_bridge(conn, writer, argv, env, launched)

    def _new_bridge(
        self,
        conn: ConnectionInfo,
        writer: FrameWriter,
        argv: Sequence[str],
        env: dict[str, str],
        launched: Child | OSError | None,
    ) -> Bridge:
        config = self.config
        sink: Sink = (
            ConsoleSink(writer) if conn.console else PlainSink(writer, passstderr=config.passstderr)
        )
        return Bridge(
            ws=DirectWebSocketResponse(
                autoping=False,
                autoclose=False,
                max_msg_size=config.maxframesize,
                compress=False,
            ),
            writer=writer,
            sink=sink,
            config=config,
            bus=self.bus,
            conn=conn,
            argv=argv,
            env=env,
            launched=launched,
            released=self._bridges.discard,
        )

    # ------------------------------------------------------------ started on accept

    def _prelaunch(
        self, sock: socket.socket, peer: Any, data: bytes
    ) -> tuple[asyncio.BaseProtocol, bytes] | None:
        """Start the program of a plain handshake in the turn that accepted it (``prelaunch``).

        Returns the connection's protocol (``upgraded``) and the bytes after the handshake, or
        None: whatever this leaves alone, aiohttp serves (and refuses) as before, so a request
        it would refuse, or answer with anything but a 101, is left alone here.
        """
        config = self.config
        if not self._prelaunching or self._closed:
            return None
        handshake = read_handshake(data)
        if handshake is None or _is_console_path(handshake.path):
            return None
        if not isinstance(peer, tuple) or len(peer) < 2:  # ``accept``'s address of the client
            return None
        origin = handshake.header("Origin")
        host = handshake.header("Host") or ""
        if self._refusal(origin, host, check_origin=True) is not None:
            return None  # aiohttp's path refuses it, and says why
        unique_id, seq = self._ids.next()
        facts = RequestFacts(
            method="GET",
            raw_path=handshake.target,
            version="HTTP/1.1",
            host=host,
            headers=handshake.headers,
            remote_addr=str(peer[0]),
            remote_port=str(peer[1]),
            remote_host=str(peer[0]),
        )
        env = cgi_environ(
            config,
            facts,
            script_name="/",
            path_info=handshake.path,
            unique_id=unique_id,
            parent=self._inherited,
        )
        launched = launch(config.command, env)
        if isinstance(launched, OSError):
            return None  # aiohttp's path tries once more, and tells the client why it failed
        head = switching_protocols(
            handshake.key, SERVER_HEADER, (*config.headers, *config.headers_ws)
        )
        try:
            sent = sock.send(head)  # an empty send buffer takes it whole
        except OSError:
            sent = 0  # the transport meets the error again and ends the connection
        conn = ConnectionInfo(
            id=unique_id,
            seq=seq,
            remote=facts.remote_addr,
            path=handshake.path,
            query=handshake.query,
            url=f"{config.http_scheme}://{host}{handshake.target}",
            origin=origin or "",
            command=config.command_display,
        )

        # Counted by --maxforks from now on, as aiohttp's path counts an admitted upgrade.
        self._starting += 1

        def connected(transport: asyncio.Transport, protocol: UpgradedProtocol) -> None:
            self._starting -= 1
            if sent < len(head):
                transport.write(head[sent:])
            self._serve_upgraded(transport, protocol, conn, env, launched)

        def never_connected() -> None:
            self._starting -= 1
            abandon(launched, config.closems)

        protocol = UpgradedProtocol(asyncio.get_running_loop(), connected, never_connected)
        return protocol, data[handshake.size :]

    def _serve_upgraded(
        self,
        transport: asyncio.Transport,
        protocol: UpgradedProtocol,
        conn: ConnectionInfo,
        env: dict[str, str],
        launched: Child,
    ) -> None:
        """Run a connection ``_prelaunch`` answered, from its ``connection_made`` on."""
        bridge = self._new_bridge(
            conn, FrameWriter(transport, protocol), self.config.command, env, launched
        )
        attach(bridge.ws, transport, protocol)
        self._bridges.add(bridge)
        self.bus.publish(Connected(conn))
        bridge.start()  # its output flows from now on, while the task below gets going
        task = asyncio.ensure_future(self._run_upgraded(bridge, transport))
        self._upgraded.add(task)
        task.add_done_callback(self._upgraded.discard)

    async def _run_upgraded(self, bridge: Bridge, transport: asyncio.Transport) -> None:
        try:
            await bridge.run()
        except Exception:
            logger.exception("connection failed", extra={"category": "websocket"})
        finally:
            self._bridges.discard(bridge)  # if ``released`` has not already
            transport.close()

    async def _refuse_ws(
        self, request: web.BaseRequest, status: int, reason: str, console: bool
    ) -> web.StreamResponse:
        if console:
            return await self._console_refusal(request, status, reason)
        self._access(request, status, "NOT FOUND")
        return web.Response(status=status, text=NOT_FOUND_BODY)

    async def _console_refusal(
        self, request: web.BaseRequest, status: int, reason: str
    ) -> web.StreamResponse:
        """The console cannot read an HTTP status: accept, explain in the envelope, close."""
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        ConsoleSink(FrameWriter(request.transport, request.protocol)).error(reason.strip(), status)
        await ws.close(code=1008 if status != 429 else 1013, message=reason.strip().encode()[:123])
        return ws

    async def _request_facts(self, request: web.BaseRequest, raw_path: str) -> RequestFacts:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        remote_addr = request.remote or ""
        remote_port = str(peer[1]) if isinstance(peer, tuple) and len(peer) > 1 else ""
        remote_host = remote_addr
        if self.config.reverselookup and remote_addr:
            remote_host = await _reverse_lookup(remote_addr)
        return RequestFacts(
            method=request.method,
            raw_path=raw_path,
            version=f"HTTP/{request.version.major}.{request.version.minor}",
            host=request.headers.get("Host", ""),
            headers=tuple((k, v) for k, v in request.headers.items()),
            remote_addr=remote_addr,
            remote_port=remote_port,
            remote_host=remote_host,
        )

    # ------------------------------------------------------------ CGI

    async def _cgi(
        self, request: web.BaseRequest, script: Path, script_name: str, path_info: str
    ) -> web.StreamResponse:
        refusal = self._admit(request, check_origin=False)
        if refusal is not None:
            return refusal
        from wsdev.cgi import serve_cgi

        self._cgi_running += 1  # before any await, so --maxforks holds for parallel requests
        try:
            unique_id, _ = self._ids.next()
            facts = await self._request_facts(request, request.raw_path)
            env = cgi_environ(
                self.config,
                facts,
                script_name=script_name,
                path_info=path_info,
                unique_id=unique_id,
                parent=self._inherited,
            )
            response = await serve_cgi(request, self.config, script, env)
        finally:
            self._cgi_running -= 1
        self._access(request, response.status, "CGI")
        return response

    # ------------------------------------------------------------ headers

    def _add_headers(self, response: web.StreamResponse) -> None:
        """Every response gets the Server header and the --header* ones (SPEC A5)."""
        config = self.config
        response.headers["Server"] = SERVER_HEADER
        extra = config.headers_ws if response.status == 101 else config.headers_http
        for name, value in (*config.headers, *extra):
            response.headers.add(name, value)


class _Server(web.Server):
    """aiohttp's low-level server, which lets wsdev's loop ask for a connection's protocol
    from the bytes that came with it (``eventloop``)."""

    def __init__(
        self,
        *args: Any,
        protocol_for_data: Callable[
            [socket.socket, Any, bytes], tuple[asyncio.BaseProtocol, bytes] | None
        ],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.protocol_for_data = protocol_for_data


class _Request(web.BaseRequest):
    """A request that adds wsdev's headers to its response just before it is sent."""

    ATTRS = web.BaseRequest.ATTRS | frozenset(["_add_headers"])

    def __init__(
        self,
        *args: Any,
        add_headers: Callable[[web.StreamResponse], None],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._add_headers = add_headers

    async def _prepare_hook(self, response: web.StreamResponse) -> None:
        self._add_headers(response)


async def _answer_expect(request: web.BaseRequest) -> web.StreamResponse | None:
    """``Expect: 100-continue`` lets the client send its body; any other expectation is refused.

    (What aiohttp's Application, and Go's net/http, do for every request.) A refused client
    never sends the body it announced, so the connection closes at once instead of waiting
    for it (as Go's does).
    """
    expect = request.headers.get("Expect", "")
    if request.version != HttpVersion11:
        return None
    if expect.lower() == "100-continue":
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        # What follows is the response's own head: it starts counting from zero.
        request.writer.output_size = 0
        return None
    response = web.Response(status=417, text=f"417 expectation not supported: {expect}\n")
    await response.prepare(request)
    await response.write_eof()
    request.protocol.force_close()
    return response


def _is_console_path(path: str) -> bool:
    return path.startswith(CONSOLE_PREFIX) or path == CONSOLE_PREFIX.rstrip("/")


def _is_upgrade(request: web.BaseRequest) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


def _is_loopback(remote: str | None) -> bool:
    if not remote:
        return True  # a Unix socket: only local processes can reach it
    try:
        return ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _full_url(request: web.BaseRequest) -> str:
    scheme = "https" if request.secure else "http"
    return f"{scheme}://{request.headers.get('Host', '')}{request.raw_path}"


def _raw_target(path: str, query: str) -> str:
    from urllib.parse import quote

    target = quote(path, safe="/:@!$&'()*+,;=-._~")
    return f"{target}?{query}" if query else target


async def _reverse_lookup(address: str) -> str:
    loop = asyncio.get_running_loop()
    with contextlib.suppress(OSError, UnicodeError):
        host, _ = await asyncio.wait_for(
            loop.getnameinfo((address, 0), socket.NI_NAMEREQD), timeout=2.0
        )
        return str(host)
    return address
