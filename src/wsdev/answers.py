"""What wsdev answers an upgrade request itself: refusals, redirects, the 101's headers.

Every answer, whoever sends it (here, or aiohttp's routes), gets the Server header and the
``--header`` options (behaviour A5). A refused console gets its reason in its own envelope,
since a page cannot read an upgrade's HTTP status (behaviour C1).
"""

from __future__ import annotations

from collections.abc import Callable

from websockets.datastructures import Headers
from websockets.http11 import Response

from wsdev import __version__
from wsdev.cleanpath import MOVED_CONTENT_TYPE, moved_body
from wsdev.config import Config
from wsdev.connection import Connection
from wsdev.environ import RequestFacts
from wsdev.events import EventBus, HttpRequest, Rejected
from wsdev.sinks import ConsoleSink
from wsdev.targets import Target, header_of, url_of

SERVER_HEADER = f"wsdev/{__version__}"
NOT_FOUND_BODY = "404 page not found\n"

# The console cannot read an HTTP status: its refusals are a Close with one of these codes.
CONSOLE_REFUSED = 1008
CONSOLE_TRY_AGAIN = 1013


class Answers:
    """The answers to upgrade requests that start no program, and the 101's headers."""

    def __init__(self, config: Config, bus: EventBus) -> None:
        self.config = config
        self.bus = bus

    def refuse(
        self,
        connection: Connection,
        accepted: Callable[[], Response],
        facts: RequestFacts,
        target: Target,
        status: int,
        reason: str,
    ) -> None:
        url = url_of(self.config, facts)
        if status == 404:
            self.bus.publish(HttpRequest("GET", url, facts.remote_addr, 404, "NOT FOUND"))
            reason = f"no program at {target.path}"
        else:
            origin = header_of(facts, "Origin")
            self.bus.publish(Rejected(status, reason, url, facts.remote_addr, origin))
        if target.console and status != 403:
            # The console cannot read an HTTP status: accept, explain in its envelope, close.
            # A 403 (behaviour B10) answers a page that is not the console: it gets the status.
            self.accept(connection, accepted())
            ConsoleSink(connection).error(reason, status)
            code = CONSOLE_TRY_AGAIN if status in (429, 503) else CONSOLE_REFUSED
            connection.close(code, reason)
            return
        body = NOT_FOUND_BODY if status == 404 else f"{status} {reason}\n"
        response = connection.engine().reject(status, sendable_text(body))
        self.add_headers(response.headers, status)
        connection.respond(response)

    def moved(self, connection: Connection, facts: RequestFacts, location: str) -> None:
        """A ``--dir`` path with ``.``/``..`` segments or doubled slashes: 301 to the cleaned
        path, as websocketd answers (behaviour A5)."""
        response = connection.engine().reject(301, moved_body(location))
        del response.headers["Content-Type"]
        response.headers["Content-Type"] = MOVED_CONTENT_TYPE
        response.headers["Location"] = location
        self.respond(connection, response, facts, "REDIRECT")

    def respond(
        self,
        connection: Connection,
        response: Response,
        facts: RequestFacts,
        kind: str,
    ) -> None:
        self.add_headers(response.headers, response.status_code)
        url = url_of(self.config, facts)
        self.bus.publish(HttpRequest("GET", url, facts.remote_addr, response.status_code, kind))
        connection.respond(response)

    def accept(self, connection: Connection, response: Response) -> None:
        self.add_headers(response.headers, 101)
        connection.respond(response)

    def add_headers(self, headers: Headers, status: int) -> None:
        for name, value in response_headers(self.config, status):
            headers[name] = value


def sendable_text(text: str) -> str:
    """``text`` that encodes as UTF-8: a refusal may quote a header, and bytes of it that were
    not UTF-8 (kept as surrogate escapes) become U+FFFD instead of failing the answer."""
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def response_headers(config: Config, status: int) -> tuple[tuple[str, str], ...]:
    """What every response gets, whoever sends it: the Server header and the --header* ones
    (behaviour A5)."""
    extra = config.headers_ws if status == 101 else config.headers_http
    return (("Server", SERVER_HEADER), *config.headers, *extra)
