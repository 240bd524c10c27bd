"""Reading a WebSocket handshake in the turn that accepts its connection (SPEC A2).

A client sends its handshake as soon as it has connected, so the request is usually waiting
when wsdev accepts. Read then, it lets the program start at once and the 101 go out with it,
before aiohttp has even seen the connection: aiohttp's path to a handler (its protocol, its
parser, a task for the connection and one for the request, the request object) costs a few
hundred microseconds of CPU on a short connection, as much as the rest of wsdev's work for it.
The connection is then served by ``upgraded``: aiohttp's WebSocket parser and writer, without
its HTTP layer.

Only a plain handshake is read here; anything else goes through aiohttp alone, as before. Plain
means what aiohttp certainly accepts: an HTTP/1.1 GET of an origin-form target, every header a
token, a colon and visible ASCII, one Host, Upgrade, Connection, key and version each, version
13, a key of 16 bytes, no body, no ``Expect``. What the program sees and what the client gets
are the same either way: the tests serve the same handshakes both ways and compare the
environments and the 101s.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from aiohttp.helpers import rfc822_formatted_time
from yarl import URL

# RFC 6455's GUID, hashed with the client's key into Sec-WebSocket-Accept.
WEBSOCKET_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# Longer handshakes exist (big cookies), but are no longer plain: aiohttp reads them.
MAX_HANDSHAKE = 8192

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Visible ASCII, spaces and tabs: what a value may hold here (no controls, no obs-text).
_VALUE = re.compile(r"[\x20-\x7e\t]*")
# An origin-form target without a fragment or anything outside printable ASCII.
_TARGET = re.compile(r"/[\x21-\x22\x24-\x7e]*")
# Headers that must come once: a second one could be read differently by another parser.
_SINGLE = frozenset(("host", "upgrade", "connection", "sec-websocket-key", "sec-websocket-version"))
# Headers that make a request more than a plain handshake.
_NOT_PLAIN = frozenset(("content-length", "transfer-encoding", "expect"))


@dataclass(frozen=True, slots=True)
class Handshake:
    """A plain WebSocket handshake, as aiohttp will parse it."""

    target: str  # as sent: the percent-encoded path, then ``?query``
    path: str  # decoded, as aiohttp's ``request.path``
    query: str  # decoded, as aiohttp's ``request.query_string``
    headers: tuple[tuple[str, str], ...]  # names as sent, values without surrounding blanks
    key: str
    size: int  # bytes of the request, up to and with the blank line that ends it

    def header(self, name: str) -> str | None:
        """The value of a header that comes at most once (None when absent)."""
        wanted = name.lower()
        for header_name, value in self.headers:
            if header_name.lower() == wanted:
                return value
        return None


def read_handshake(data: bytes) -> Handshake | None:
    """The handshake at the start of ``data``, or None unless it is complete and plain."""
    end = data.find(b"\r\n\r\n", 0, MAX_HANDSHAKE)
    if end == -1:
        return None
    try:
        head = data[:end].decode("ascii")
    except UnicodeDecodeError:
        return None
    request_line, *header_lines = head.split("\r\n")
    parts = request_line.split(" ")
    if len(parts) != 3 or parts[0] != "GET" or parts[2] != "HTTP/1.1":
        return None
    target = parts[1]
    if _TARGET.fullmatch(target) is None:
        return None
    headers = []
    seen: set[str] = set()
    for line in header_lines:
        name, colon, value = line.partition(":")
        if not colon or _TOKEN.fullmatch(name) is None or _VALUE.fullmatch(value) is None:
            return None
        lowered = name.lower()
        if lowered in _NOT_PLAIN or (lowered in _SINGLE and lowered in seen):
            return None
        seen.add(lowered)
        headers.append((name, value.strip(" \t")))
    handshake = _handshake(target, tuple(headers), end + 4)
    if handshake is None or not _upgrades(handshake):
        return None
    return handshake


def _handshake(target: str, headers: tuple[tuple[str, str], ...], size: int) -> Handshake | None:
    raw_path, _, raw_query = target.partition("?")
    try:
        # As aiohttp's parser builds its URL, so path and query decode as the request's do.
        url = URL.build(path=raw_path, query_string=raw_query, encoded=True)
    except ValueError:
        return None
    key = next((value for name, value in headers if name.lower() == "sec-websocket-key"), "")
    return Handshake(target, url.path, url.query_string, headers, key, size)


def _upgrades(handshake: Handshake) -> bool:
    """aiohttp's own handshake checks, version 13 only."""
    upgrade = handshake.header("Upgrade") or ""
    if upgrade.lower() != "websocket" or not handshake.header("Host"):
        return False
    connection = handshake.header("Connection") or ""
    tokens = (token.strip().lower() for token in connection.split(","))
    if "upgrade" not in tokens or handshake.header("Sec-WebSocket-Version") != "13":
        return False
    try:
        return len(base64.b64decode(handshake.key)) == 16
    except binascii.Error:
        return False


def accept_value(key: str) -> str:
    """Sec-WebSocket-Accept for a client's Sec-WebSocket-Key."""
    return base64.b64encode(hashlib.sha1(key.encode() + WEBSOCKET_GUID).digest()).decode()


def switching_protocols(key: str, server: str, extra: Iterable[tuple[str, str]]) -> bytes:
    """The 101 aiohttp sends for this handshake, with wsdev's headers added as it adds them."""
    lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: upgrade",
        f"Sec-WebSocket-Accept: {accept_value(key)}",
        f"Date: {rfc822_formatted_time()}",
        f"Server: {server}",
    ]
    lines.extend(f"{name}: {value}" for name, value in extra)
    lines.append("\r\n")
    return "\r\n".join(lines).encode("utf-8")
