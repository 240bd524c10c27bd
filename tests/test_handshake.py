"""Reading a handshake's request head (``handshake``) and decoding its target (``sessions``)."""

from __future__ import annotations

import base64
import random
from collections.abc import Generator

import pytest
from websockets.http11 import Request
from websockets.server import ServerProtocol
from websockets.streams import StreamReader
from yarl import URL

from wsdev.handshake import accept_plain, plain_key, read_request
from wsdev.targets import decode_target

KEY = base64.b64encode(b"0123456789abcdef").decode()


def handshake(target: str = "/", *extra: str, first: str | None = None) -> bytes:
    lines = [
        first or f"GET {target} HTTP/1.1",
        "Host: 127.0.0.1",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {KEY}",
        "Sec-WebSocket-Version: 13",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def engine_parse(head: bytes) -> Request:
    """The request as the websockets library's own parser reads it."""
    reader = StreamReader()
    reader.feed_data(head)
    parser: Generator[None, None, Request] = Request.parse(reader.read_line)
    try:
        next(parser)
    except StopIteration as done:
        request: Request = done.value
        return request
    raise AssertionError("the engine wanted more of a complete head")


@pytest.mark.parametrize(
    "head",
    [
        handshake(),
        handshake("/chat/room%201?user=ada&x=%C3%A9"),
        handshake("/", "Cookie: a=1; b=2", "Cookie: c=3", "X-Empty:", "X-Spaced:   padded   "),
        handshake("/", "X-Tab:\tvalue\t"),
        handshake("/", "Origin: http://localhost:8080", "Sec-WebSocket-Protocol: chat"),
    ],
)
def test_a_handshake_is_read_as_the_engine_reads_it(head: bytes) -> None:
    ours = read_request(head)
    assert ours is not None
    theirs = engine_parse(head)
    assert ours.request().path == theirs.path == ours.target
    assert list(ours.request().headers.raw_items()) == list(theirs.headers.raw_items())
    assert ours.headers == tuple(theirs.headers.raw_items())


VARIANTS = [
    handshake(),
    handshake().replace(b"Connection: Upgrade", b"Connection: keep-alive, Upgrade"),
    handshake().replace(b"Connection: Upgrade", b"Connection: upgrade"),
    handshake().replace(b"Upgrade: websocket", b"Upgrade: WebSocket"),
    handshake().replace(b"Connection: Upgrade", b"Connection: keep-alive"),
    handshake().replace(b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Version: 13, 8"),
    handshake("/", "Sec-WebSocket-Version: 13"),
    handshake("/", f"Sec-WebSocket-Key: {KEY}"),
    handshake().replace(KEY.encode(), b"bm90IDE2IGJ5dGVz"),
    handshake().replace(KEY.encode(), b"not base64!!"),
    handshake("/", "Upgrade: websocket, h2c"),
]


@pytest.mark.parametrize("head", VARIANTS)
def test_the_101_for_a_plain_handshake_is_the_engines(head: bytes) -> None:
    """``accept_plain`` answers a plain handshake as the engine would, and ``plain_key``
    leaves every other to the engine (None)."""
    ours = read_request(head)
    assert ours is not None
    key = plain_key(ours)
    engine = ServerProtocol().accept(engine_parse(head))
    if key is None:
        return  # the engine answers it, whatever it says
    fast = accept_plain(key)
    assert engine.status_code == fast.status_code == 101
    dated = ("Date",)
    assert [h for h in fast.headers.raw_items() if h[0] not in dated] == [
        h for h in engine.headers.raw_items() if h[0] not in dated
    ]


def test_plain_handshakes_take_the_quick_answer() -> None:
    """The usual handshakes are plain (else the quick path would never be taken)."""
    for head in VARIANTS[:4]:
        ours = read_request(head)
        assert ours is not None and plain_key(ours) is not None


def test_header_values_arrive_as_the_utf8_text_that_was_sent() -> None:
    ours = read_request(handshake("/", "X-Name: café"))
    assert ours is not None and ("X-Name", "café") in ours.headers
    raw = read_request(handshake("/", "X-Raw: ").replace(b"X-Raw: ", b"X-Raw: \xff\xfe"))
    assert raw is not None
    [value] = [v for k, v in raw.headers if k == "X-Raw"]
    assert value.encode("utf-8", "surrogateescape") == b"\xff\xfe"


@pytest.mark.parametrize(
    "head",
    [
        handshake(first="POST / HTTP/1.1"),
        handshake(first="GET / HTTP/1.0"),
        handshake(first="GET http://example.com/ HTTP/1.1"),
        handshake(first="GET /a b HTTP/1.1"),
        handshake("/", "Bad Name: x"),
        handshake("/", "X-Ctl: a\x01b"),
        handshake("/", " folded: continuation"),
        handshake("/").replace(b"Upgrade: websocket", b"Upgrade: h2c"),
        handshake("/").replace(b"\r\nHost", b"\nHost"),
        # HTTP/1.1 wants exactly one Host: aiohttp answers 400 to none or two.
        handshake().replace(b"Host: 127.0.0.1\r\n", b""),
        handshake("/", "Host: again"),
    ],
)
def test_anything_but_a_plain_upgrade_is_left_to_aiohttp(head: bytes) -> None:
    assert read_request(head) is None


def test_a_target_with_nothing_to_decode_is_taken_as_yarl_would_decode_it() -> None:
    """``decode_target`` skips yarl for a target without ``%`` (or ``+`` in its query): check,
    over many targets of every character a plain target may hold, that yarl agrees."""
    rng = random.Random(6455)
    allowed = [chr(c) for c in range(0x21, 0x7F) if chr(c) not in "#%+"]
    for _ in range(3000):
        target = "/" + "".join(rng.choices(allowed, k=rng.randint(0, 24)))
        if rng.random() < 0.3:
            target += "+" + "".join(rng.choices(allowed, k=rng.randint(0, 8)))  # + in the path
        raw_path, _, raw_query = target.partition("?")
        url = URL.build(path=raw_path, query_string=raw_query, encoded=True)
        assert decode_target(target) == (url.path, url.query_string), target


@pytest.mark.parametrize("target", ["/a%20b?c=%C3%B6", "/?a+b", "/p?q=1+2&r=%2B"])
def test_a_target_with_something_to_decode_is_decoded_by_yarl(target: str) -> None:
    raw_path, _, raw_query = target.partition("?")
    url = URL.build(path=raw_path, query_string=raw_query, encoded=True)
    assert decode_target(target) == (url.path, url.query_string)
    assert decode_target(target) != (raw_path, raw_query)
