"""Plain HTTP, served by aiohttp: console, CGI, static files, events feed, 404 (A5, C1).

Routing order: wsdev's own routes under ``/_wsdev/`` → CGI → static files → the console on any
other path (when neither static nor CGI folders claim them) → 404. A WebSocket upgrade that runs a
program never gets here (``connection`` gives it to ``sessions``); one that does is an upgrade
aiohttp read on a connection that began as plain HTTP, or one the WebSocket engine could not
read, and is answered as a bad handshake.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from pathlib import Path

from aiohttp import web

from wsdev.answers import NOT_FOUND_BODY, response_headers, sendable_text
from wsdev.config import Config
from wsdev.console import CONSOLE_PREFIX
from wsdev.environ import RequestFacts, cgi_environ, reverse_lookup
from wsdev.events import EventBus, HttpRequest, Rejected
from wsdev.feed import serve_feed
from wsdev.guard import Route
from wsdev.joinsecret import JOIN_REFUSAL, REFUSAL_PAGE, JoinSecret
from wsdev.metrics import Metrics, health_response, may_read, metrics_response
from wsdev.proxies import FORWARDED_PORT, as_the_client_sent
from wsdev.restartfeed import serve_restarts
from wsdev.sessions import SessionManager

# The largest request body read (a CGI POST): aiohttp refuses bigger ones with 413.
MAX_REQUEST_BODY = 64 * 1024**2


class Routes:
    """The one aiohttp handler, and the headers every response gets."""

    def __init__(self, config: Config, bus: EventBus, sessions: SessionManager) -> None:
        self.config = config
        self.bus = bus
        self.sessions = sessions
        # The console's sessions as transcripts: download, save as test (behaviour C8).
        self.transcripts = None
        if config.console and config.serves_websocket:
            from wsdev.consoletests import ConsoleTranscripts

            self.transcripts = ConsoleTranscripts(bus, config)
        # Counted from the start, so the totals cover the whole run (behaviour B12).
        self.metrics = Metrics(bus) if config.metrics else None

    def application(self) -> web.Application:
        app = web.Application(client_max_size=MAX_REQUEST_BODY)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        app.on_response_prepare.append(self._add_headers)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        config = self.config
        if config.trusted_proxies:
            request = as_the_client_sent(request, config.trusted_proxies)
        path = request.path
        own = path.startswith(CONSOLE_PREFIX) or path == CONSOLE_PREFIX[:-1]
        headers = request.headers
        forbidden = self.sessions.guard.refusal(  # behaviour B10, as for upgrades
            Route.OWN if own else Route.PLAIN, headers.get("Host", ""), headers.get("Origin")
        )
        if forbidden is not None:
            return self._refuse(request, 403, forbidden)
        join = self.sessions.join
        if join is not None:
            query = request.rel_url.raw_query_string
            if not join.admits(query, headers.get("Cookie", "")):
                return self._refuse_join(request)
            if (
                join.in_query(query)
                and request.method in ("GET", "HEAD")
                and not _is_upgrade(request)
            ):
                return self._joined(request, join)
        if own:
            return await self._wsdev_route(request, path[len(CONSOLE_PREFIX) :])
        if _is_upgrade(request) and config.serves_websocket:
            return self._bad_handshake(request)
        if config.script_dir or config.staticdir or config.cgidir:  # the folders own the paths
            from wsdev.cleanpath import moved_to

            location = moved_to(request.raw_path)
            if location is not None:
                return self._moved(request, location)
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
            if config.script_dir is not None:
                listing = self._folder_listing(request, config.script_dir, path)
                if listing is not None:
                    return listing
            # The raw query: the page hands it back, and the program must see it percent-encoded.
            return self._console_page(request, path, request.rel_url.raw_query_string)
        return self._not_found(request)

    async def _wsdev_route(self, request: web.Request, rest: str) -> web.StreamResponse:
        if rest in ("health", "metrics") and request.method in ("GET", "HEAD"):
            return self._operations(request, rest)
        if rest == "ws" and _is_upgrade(request) and self.config.serves_websocket:
            return self._bad_handshake(request)
        if rest == "events" and _is_upgrade(request):
            if not _is_loopback(request.remote):
                return self._refuse(request, 403, "the events feed answers loopback clients only")
            return await serve_feed(request, self.bus)
        if rest == "restarts" and _is_upgrade(request):
            # The console's notice of restarts on edit (D2); the guard let same-origin pages only.
            return await serve_restarts(
                request,
                self.bus,
                lambda: self.sessions.generation,
                keeps_open=self.config.reload_mode == "new",
            )
        if self.config.console:
            if rest.startswith("transcript/") and self.transcripts is not None:
                from wsdev.consoletests import serve as serve_transcript

                return await serve_transcript(request, rest, self.transcripts)
            if rest in ("", "index.html") and request.method in ("GET", "HEAD"):
                return self._console_page(request, "/", "")
            if rest.startswith("static/"):
                from wsdev.console import console_asset

                asset = console_asset(rest[len("static/") :])
                if asset is not None:
                    self._access(request, asset.status, "CONSOLE")
                    return asset
        return self._not_found(request)

    def _operations(self, request: web.Request, rest: str) -> web.StreamResponse:
        """Health and metrics, for proxies and monitoring only (behaviour B12)."""
        if not may_read(self.config, request.remote):
            return self._refuse(request, 403, f"/_wsdev/{rest} answers loopback clients only")
        if rest == "health":
            return health_response(self.sessions.draining)
        if self.metrics is None:
            return self._not_found(request)
        return metrics_response(self.metrics)

    def _console_page(self, request: web.Request, path: str, query: str) -> web.StreamResponse:
        if not self.config.console:
            return self._not_found(request)
        from wsdev.console import console_page

        self._access(request, 200, "CONSOLE")
        return console_page(self.config, path, query, self.sessions.room_link)

    def _folder_listing(
        self, request: web.Request, root: Path, path: str
    ) -> web.StreamResponse | None:
        """Under --dir, a folder's path lists its programs (behaviour C7)."""
        from wsdev.listing import listed_folder, listing_page

        folder = listed_folder(root, path)
        if folder is None:
            return None
        self._access(request, 200, "CONSOLE")
        host = request.headers.get("Host", "")
        # Each program's live connections: under --dir a connection's command is its file.
        live = Counter(bridge.conn.command for bridge in self.sessions.bridges)
        return listing_page(folder, path, self.config.scheme, host, live)

    def _bad_handshake(self, request: web.Request) -> web.Response:
        """An upgrade the WebSocket path did not take: a clean refusal (behaviour B5)."""
        headers = {"Sec-WebSocket-Version": "13"}
        if request.method != "GET":
            # RFC 6455 (and websocketd) allow only GET.
            self._access(request, 405, "BAD HANDSHAKE")
            headers["Allow"] = "GET"
            text = "405 method not allowed: a WebSocket upgrade must be a GET\n"
            return web.Response(status=405, text=text, headers=headers)
        self._access(request, 400, "BAD HANDSHAKE")
        text = (
            "400 Bad Request: not a valid WebSocket handshake "
            "(an HTTP/1.1 GET on a connection of its own)\n"
        )
        return web.Response(status=400, text=text, headers=headers)

    def _moved(self, request: web.Request, location: str) -> web.Response:
        """A path with ``.``/``..`` segments or doubled slashes: 301 to its cleaned form, with
        the body and type Go's ``http.Redirect`` gives each method (behaviour A5)."""
        from wsdev.cleanpath import moved_body

        self._access(request, 301, "REDIRECT")
        headers = {"Location": location}
        if request.method not in ("GET", "HEAD"):
            return web.Response(status=301, headers=headers)
        body = moved_body(location)
        return web.Response(
            status=301, headers=headers, text=body, content_type="text/html", charset="utf-8"
        )

    def _not_found(self, request: web.Request) -> web.Response:
        self._access(request, 404, "NOT FOUND")
        return web.Response(status=404, text=NOT_FOUND_BODY)

    def _refuse(self, request: web.Request, status: int, reason: str) -> web.Response:
        origin = request.headers.get("Origin", "")
        self.bus.publish(Rejected(status, reason, _full_url(request), request.remote or "", origin))
        return web.Response(status=status, text=sendable_text(f"{status} {reason}\n"))

    def _refuse_join(self, request: web.Request) -> web.Response:
        """No join secret (behaviour B14): a page that says to ask for the link."""
        origin = request.headers.get("Origin", "")
        self.bus.publish(
            Rejected(403, JOIN_REFUSAL, _full_url(request), request.remote or "", origin)
        )
        if _is_upgrade(request) or request.method not in ("GET", "HEAD"):
            return web.Response(status=403, text=f"403 {JOIN_REFUSAL}\n")
        return web.Response(status=403, text=REFUSAL_PAGE, content_type="text/html")

    def _joined(self, request: web.Request, join: JoinSecret) -> web.Response:
        """A link with the secret: keep it in a cookie, and take it out of the address bar."""
        location = join.clean_target(request.raw_path)
        self._access(request, 303, "JOIN")
        return web.Response(
            status=303,
            headers={"Location": location, "Set-Cookie": join.cookie(tls=self.config.ssl)},
        )

    def _access(self, request: web.Request, status: int, kind: str) -> None:
        self.bus.publish(
            HttpRequest(request.method, _full_url(request), request.remote or "", status, kind)
        )

    async def _cgi(
        self, request: web.Request, script: Path, script_name: str, path_info: str
    ) -> web.StreamResponse:
        sessions = self.sessions
        why = sessions.refusal()
        if why is not None:
            return self._refuse(request, *why)
        from wsdev.cgi import serve_cgi

        sessions.cgi_running += 1  # before any await, so --maxforks holds for parallel requests
        try:
            unique_id, _ = sessions.ids.next()
            facts = await _request_facts(request, self.config.reverselookup)
            if sessions.join is not None:
                facts = sessions.join.clean_facts(facts)  # the secret is wsdev's (B14)
            env = cgi_environ(
                self.config,
                facts,
                script_name=script_name,
                path_info=path_info,
                unique_id=unique_id,
                parent=sessions.inherited,
            )
            response = await serve_cgi(request, self.config, script, env)
        finally:
            sessions.cgi_running -= 1
        self._access(request, response.status, "CGI")
        return response

    async def _add_headers(self, request: web.Request, response: web.StreamResponse) -> None:
        for name, value in response_headers(self.config, response.status):
            if name == "Server":
                response.headers[name] = value  # in place of aiohttp's own
            else:
                response.headers.add(name, value)


def _is_upgrade(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


def _is_loopback(remote: str | None) -> bool:
    if not remote:
        return True  # a Unix socket: only local processes can reach it
    try:
        return ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


def _full_url(request: web.Request) -> str:
    scheme = "https" if request.secure else "http"
    return f"{scheme}://{request.headers.get('Host', '')}{request.raw_path}"


async def _request_facts(request: web.Request, reverselookup: bool) -> RequestFacts:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    remote_addr = request.remote or ""
    remote_port = str(peer[1]) if isinstance(peer, tuple) and len(peer) > 1 else ""
    remote_port = request.get(FORWARDED_PORT, remote_port)
    remote_host = remote_addr
    if reverselookup and remote_addr:
        remote_host = await reverse_lookup(remote_addr)
    return RequestFacts(
        method=request.method,
        raw_path=request.raw_path,
        version=f"HTTP/{request.version.major}.{request.version.minor}",
        host=request.headers.get("Host", ""),
        headers=tuple((k, v) for k, v in request.headers.items()),
        remote_addr=remote_addr,
        remote_port=remote_port,
        remote_host=remote_host,
        https=request.secure,
    )
