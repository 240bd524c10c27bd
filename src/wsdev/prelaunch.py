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
from typing import NamedTuple

from aiohttp.helpers import rfc822_formatted_time
from yarl import URL

# RFC 6455's GUID, hashed with the client's key into Sec-WebSocket-Accept.
WEBSOCKET_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# Longer handshakes exist (big cookies), but are no longer plain: aiohttp reads them.
MAX_HANDSHAKE = 8192

# The request line of a plain handshake: a GET of an origin-form target without a fragment or
# anything outside printable ASCII.
_REQUEST_LINE = re.compile(rb"GET (/[\x21\x22\x24-\x7e]*) HTTP/1\.1")
# Header lines, each with its CRLF: a token, a colon, then visible ASCII, spaces and tabs (no
# controls, no obs-text). One match checks them all, so the loop below need not.
_HEADER_LINES = re.compile(rb"(?:[!#$%&'*+.^_`|~0-9A-Za-z-]+:[\x20-\x7e\t]*\r\n)*")
# Headers that must come once: a second one could be read differently by another parser.
_SINGLE = frozenset(("host", "upgrade", "connection", "sec-websocket-key", "sec-websocket-version"))
# Headers that make a request more than a plain handshake.
_NOT_PLAIN = frozenset(("content-length", "transfer-encoding", "expect"))


class Handshake(NamedTuple):
    """A plain WebSocket handshake, as aiohttp will parse it.

    (A named tuple, not a dataclass: it is made before every program a plain handshake starts,
    and a tuple is made in a fraction of the time.)
    """

    target: str  # as sent: the percent-encoded path, then ``?query``
    path: str  # decoded, as aiohttp's ``request.path``
    query: str  # decoded, as aiohttp's ``request.query_string``
    headers: tuple[tuple[str, str], ...]  # names as sent, values without surrounding blanks
    key: str
    size: int  # bytes of the request, up to and with the blank line that ends it
    by_name: dict[str, str]  # the first value of each header, by its lowercased name

    def header(self, name: str) -> str | None:
        """The value of a header that comes at most once (None when absent)."""
        return self.by_name.get(name.lower())


def read_handshake(data: bytes) -> Handshake | None:
    """The handshake at the start of ``data``, or None unless it is complete and plain.

    This runs before every program a plain handshake starts, so it reads the request in as
    few steps as it can: two regular expressions check every byte, then the lines are split.
    """
    end = data.find(b"\r\n\r\n", 0, MAX_HANDSHAKE)
    if end == -1:
        return None
    line_end = data.find(b"\r\n", 0, end + 2)
    request_line = _REQUEST_LINE.fullmatch(data, 0, line_end)
    if request_line is None or _HEADER_LINES.fullmatch(data, line_end + 2, end + 2) is None:
        return None
    headers = []
    by_name: dict[str, str] = {}
    if end > line_end:
        for line in data[line_end + 2 : end].decode("ascii").split("\r\n"):
            name, _, value = line.partition(":")
            lowered = name.lower()
            value = value.strip(" \t")
            if lowered in by_name:
                if lowered in _SINGLE:
                    return None
            else:
                by_name[lowered] = value
            headers.append((name, value))
    if not _NOT_PLAIN.isdisjoint(by_name):
        return None
    target = request_line[1].decode("ascii")
    path, query = _decoded(target)
    if path is None:
        return None
    handshake = Handshake(
        target, path, query, tuple(headers), by_name.get("sec-websocket-key", ""), end + 4, by_name
    )
    return handshake if _upgrades(by_name) else None


def _decoded(target: str) -> tuple[str | None, str]:
    """The path and query of ``target`` decoded as aiohttp's request decodes them."""
    raw_path, _, raw_query = target.partition("?")
    if "%" not in target and "+" not in raw_query:
        return raw_path, raw_query  # nothing to decode (the tests check yarl agrees)
    try:
        # As aiohttp's parser builds its URL, so path and query decode as the request's do.
        url = URL.build(path=raw_path, query_string=raw_query, encoded=True)
    except ValueError:
        return None, ""
    return url.path, url.query_string


def _upgrades(by_name: dict[str, str]) -> bool:
    """aiohttp's own handshake checks, version 13 only."""
    if by_name.get("upgrade", "").lower() != "websocket" or not by_name.get("host"):
        return False
    connection = by_name.get("connection", "").lower()
    if connection != "upgrade" and "upgrade" not in map(str.strip, connection.split(",")):
        return False
    if by_name.get("sec-websocket-version") != "13":
        return False
    try:
        # base64.b64decode's own decoding, as aiohttp checks the key, without its wrapper.
        return len(binascii.a2b_base64(by_name.get("sec-websocket-key", "").encode())) == 16
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
