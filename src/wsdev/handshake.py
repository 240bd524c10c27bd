"""Reading a WebSocket handshake's request head, and the 101 for a plain one (behaviour A2, B11).

A connection's first request head is read here in a few regular-expression passes: a GET of an
origin-form target over HTTP/1.1, every header a token, a colon and a value of visible
characters. What matches is a handshake wsdev answers itself; anything else goes to aiohttp,
which answers it as HTTP (a malformed request gets its 400 there).

Most handshakes are plain: one Host, Upgrade, Connection, key and version each, as every client
sends them. ``plain_key`` and ``accept_plain`` answer those without the engine's general header
parsing (a good part of a short connection's own time); any other goes to the engine's
``accept``, which knows every rule and answers what breaks one with the right status. The tests
check that both give the same answer.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import re
import time
from typing import NamedTuple

from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.utils import accept_key

_REQUEST_LINE = re.compile(rb"GET (/[\x21-\x7e]*) HTTP/1\.1\r\n")
# Every header line at once: one match checks each byte, so the split below need not.
_HEADER_BLOCK = re.compile(rb"(?:[-!#$%&'*+.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*\r\n)*\r\n")
_HEADER = re.compile(rb"([-!#$%&'*+.^_`|~0-9A-Za-z]+):[ \t]*([^\r\n]*?)[ \t]*\r\n")
_UPGRADE = re.compile(rb"\r\nupgrade:[ \t]*websocket[ \t]*\r\n", re.IGNORECASE)
# The headers a plain handshake has exactly once each.
_SINGLE = ("host", "upgrade", "connection", "sec-websocket-key", "sec-websocket-version")


class Handshake(NamedTuple):
    target: str  # as sent: the percent-encoded path, then ``?query``
    headers: tuple[tuple[str, str], ...]  # in order, values as the UTF-8 sent
    raw: tuple[tuple[bytes, bytes], ...]
    counts: dict[str, int]  # how often each (lower-cased) header name came
    first: dict[str, str]  # the first value of each (lower-cased) header name

    def header(self, name: str, default: str = "") -> str:
        return self.first.get(name.lower(), default)

    def request(self) -> Request:
        """The request as the engine takes it (header values read as ISO-8859-1, as it reads
        them from the wire)."""
        engine_headers = Headers()
        for name, value in self.raw:
            engine_headers[name.decode("ascii")] = value.decode("iso-8859-1")
        return Request(self.target, engine_headers)


def read_request(head: bytes) -> Handshake | None:
    """The WebSocket handshake ``head`` (up to and with its blank line) holds, or None.

    None also when it is a well-formed request that is not a WebSocket upgrade.
    """
    request_line = _REQUEST_LINE.match(head)
    if request_line is None or _UPGRADE.search(head) is None:
        return None
    if _HEADER_BLOCK.fullmatch(head, request_line.end()) is None:
        return None
    raw = tuple(_HEADER.findall(head, request_line.end()))
    headers = []
    counts: dict[str, int] = {}
    first: dict[str, str] = {}
    for name_bytes, value_bytes in raw:
        name = name_bytes.decode("ascii")
        # Bytes that are not UTF-8 survive as surrogates and reach the environment unchanged,
        # as aiohttp reads header values for plain HTTP.
        value = value_bytes.decode("utf-8", "surrogateescape")
        headers.append((name, value))
        lowered = name.lower()
        counts[lowered] = counts.get(lowered, 0) + 1
        first.setdefault(lowered, value)
    if counts.get("host") != 1:
        return None  # HTTP/1.1 wants exactly one Host (RFC 9112 §3.2): aiohttp answers 400
    return Handshake(request_line[1].decode("ascii"), tuple(headers), raw, counts, first)


def plain_key(handshake: Handshake) -> str | None:
    """The key of a plain handshake (``accept_plain`` answers it), or None for any other."""
    counts = handshake.counts
    if any(counts.get(name) != 1 for name in _SINGLE):
        return None
    if handshake.header("upgrade").lower() != "websocket":
        return None
    connection = handshake.header("connection").lower()
    if connection != "upgrade" and "upgrade" not in (t.strip() for t in connection.split(",")):
        return None
    if handshake.header("sec-websocket-version") != "13":
        return None
    key = handshake.header("sec-websocket-key")
    try:
        if len(base64.b64decode(key.encode(), validate=True)) != 16:
            return None
    except (binascii.Error, ValueError):
        return None
    return key


def accept_plain(key: str) -> Response:
    """The 101 the engine's ``accept`` gives a plain handshake with this key.

    Built once the program has started rather than before: a short connection's first message
    waits for the program, so what can be done while it starts is done then.
    """
    headers = Headers()
    headers["Date"] = http_date()
    headers["Upgrade"] = "websocket"
    headers["Connection"] = "Upgrade"
    headers["Sec-WebSocket-Accept"] = accept_key(key)
    return Response(101, "Switching Protocols", headers)


_date = (0, "")


def http_date() -> str:
    """Now as an HTTP date: the same string all second, so it is formatted once a second."""
    global _date
    second = int(time.time())
    if _date[0] != second:
        _date = (second, email.utils.formatdate(second, usegmt=True))
    return _date[1]
