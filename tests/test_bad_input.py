"""Bad input at the HTTP edge: malformed, oversized and never-finished request heads.

Each malformed head is sent as raw bytes to wsdev and to websocketd 0.4.1, and the answer of each
is pinned in ``HEADS`` (docs/faults.md reports the same table): wsdev must answer every one with a
clean 4xx (or a close), go on serving, log no error of its own and show no traceback. websocketd's
column records what it does, so that a change in either shows here.

The slow-loris tests hold heads that never finish (behaviour B15): each is closed once the
handshake timeout runs out, measured from accept however busy the client keeps it, while other
clients are served meanwhile. The frame violations are RFC 6455's and live in
``test_protocol_rules.py``; the few extra ones here are about sizes a frame only announces.
"""

from __future__ import annotations

import asyncio
import os
import struct

from conftest import (
    ROOT,
    ServerProcess,
    converse,
    requires_websocketd,
    run_websocketd,
    run_wsdev,
    wsdev_argv,
)
from conftest import timeout as scaled
from rawhttp import WS_KEY
from test_protocol_rules import OP_TEXT, Target, assert_still_serving, connect, frame

HOST = b"Host: 127.0.0.1\r\n"
KEY = (
    b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: " + WS_KEY.encode() + b"\r\nSec-WebSocket-Version: 13\r\n"
)


def upgrade_head(request_line: bytes = b"GET / HTTP/1.1", *headers: bytes) -> bytes:
    return request_line + b"\r\n" + HOST + b"".join(h + b"\r\n" for h in headers) + KEY + b"\r\n"


# The answer's status; 0 for a close without an answer, -1 for none within ANSWER_WITHIN.
CLOSED, SILENT = 0, -1
ANSWER_WITHIN = 1.5

# name: (bytes sent, wsdev's status, websocketd 0.4.1's status)
HEADS: dict[str, tuple[bytes, int, int]] = {
    # Sizes. Go reads heads up to 1 MiB, wsdev up to 64 KiB; aiohttp allows 8 KiB a line in
    # plain HTTP requests.
    "target-10KiB": (upgrade_head(b"GET /" + b"a" * 10_000 + b" HTTP/1.1"), 101, 101),
    "target-70KiB": (upgrade_head(b"GET /" + b"a" * 70_000 + b" HTTP/1.1"), 400, 101),
    "header-10KiB": (upgrade_head(b"GET / HTTP/1.1", b"X-A: " + b"b" * 10_000), 101, 101),
    "header-70KiB": (upgrade_head(b"GET / HTTP/1.1", b"X-A: " + b"b" * 70_000), 400, 101),
    "500-headers": (
        upgrade_head(b"GET / HTTP/1.1", *(b"X-%d: v" % i for i in range(500))),
        101,
        101,
    ),
    "head-2MiB": (
        upgrade_head(b"GET / HTTP/1.1", *(b"X-%d: %s" % (i, b"c" * 1000) for i in range(2000))),
        400,
        431,
    ),
    "plain-header-10KiB": (
        b"GET /x HTTP/1.1\r\n" + HOST + b"X-A: " + b"b" * 10_000 + b"\r\n\r\n",
        400,
        404,
    ),
    # Request lines.
    "no-version": (b"GET /\r\n" + HOST + KEY + b"\r\n", 400, 400),
    "http-1.0": (upgrade_head(b"GET / HTTP/1.0"), 400, 101),
    "http-9.9": (upgrade_head(b"GET / HTTP/9.9"), 400, 505),
    "bad-method-char": (upgrade_head(b"G@T / HTTP/1.1"), 400, 400),
    "absolute-target": (upgrade_head(b"GET http://127.0.0.1/ HTTP/1.1"), 400, 101),
    "non-ascii-target": (upgrade_head(b"GET /\xff\xfe HTTP/1.1"), 400, 101),
    "nul-in-target": (upgrade_head(b"GET /\x00 HTTP/1.1"), 400, 400),
    # Header lines.
    "header-without-colon": (upgrade_head(b"GET / HTTP/1.1", b"NoColon"), 400, 400),
    "space-before-colon": (upgrade_head(b"GET / HTTP/1.1", b"X-A : v"), 400, 400),
    "non-ascii-name": (upgrade_head(b"GET / HTTP/1.1", b"X-\xc3\xa9: v"), 400, 400),
    "nul-in-value": (upgrade_head(b"GET / HTTP/1.1", b"X-A: a\x00b"), 400, 400),
    "bare-cr-in-value": (upgrade_head(b"GET / HTTP/1.1", b"X-A: a\rb"), 400, 400),
    "folded-value": (upgrade_head(b"GET / HTTP/1.1", b"X-A: a\r\n b"), 400, 101),
    "bare-lf-lines": (upgrade_head().replace(b"\r\n", b"\n"), 400, 101),
    "no-host": (upgrade_head().replace(HOST, b""), 400, 400),
    "two-hosts": (upgrade_head(b"GET / HTTP/1.1", HOST.strip()), 400, 400),
    # A Host that is not UTF-8 is refused by the Host check (B10), and the refusal quotes it:
    # once with an exception instead of an answer.
    "host-not-utf8": (upgrade_head().replace(HOST, b"Host: \xff127.0.0.1\r\n"), 403, 400),
    "plain-host-not-utf8": (b"GET /x HTTP/1.1\r\nHost: \xff127.0.0.1\r\n\r\n", 403, 400),
    # The handshake's own headers.
    "key-not-16-bytes": (upgrade_head().replace(WS_KEY.encode(), b"c2hvcnQ="), 400, 101),
    "no-key": (
        upgrade_head().replace(b"Sec-WebSocket-Key: " + WS_KEY.encode() + b"\r\n", b""),
        400,
        400,
    ),
    "version-8": (upgrade_head().replace(b"Version: 13", b"Version: 8"), 426, 400),
    "post-upgrade": (upgrade_head(b"POST / HTTP/1.1"), 405, 405),
    # Bodies where none belongs, and framing that contradicts itself.
    "upgrade-with-body": (
        upgrade_head(b"GET / HTTP/1.1", b"Content-Length: 5") + b"hello",
        101,
        CLOSED,
    ),
    "length-and-chunked": (
        b"POST /x HTTP/1.1\r\n" + HOST + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\n",
        400,
        404,
    ),
    "length-not-a-number": (
        b"POST /x HTTP/1.1\r\n" + HOST + b"Content-Length: abc\r\n\r\n",
        400,
        400,
    ),
    # Not HTTP/1 at all.
    "tls-hello": (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\0" * 64, 400, SILENT),
    "http2-preface": (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, 400),
    "garbage": (b"garbage garbage\r\n\r\n", 400, 400),
    # Blank lines before the request line are allowed (RFC 9112 §2.2).
    "blank-lines-first": (b"\r\n\r\n" + upgrade_head(), 101, 400),
}


async def answer_status(port: int, raw: bytes) -> int:
    """The status of the first answer to ``raw`` (see CLOSED and SILENT)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), scaled(ANSWER_WITHIN))
    except asyncio.TimeoutError:
        return SILENT
    except ConnectionError:
        return CLOSED
    finally:
        writer.close()
    if not line:
        return CLOSED
    return int(line.split()[1])


async def answers(port: int) -> dict[str, int]:
    return {name: await answer_status(port, raw) for name, (raw, _, _) in HEADS.items()}


def assert_unhurt(server: ServerProcess) -> None:
    output = "\n".join(server.lines + server.stderr_lines)
    assert "Traceback" not in output, output[-3000:]
    # A client's bad request is not the server's error (websocketd logs nothing for it); a
    # refusal of the Host or Origin check is logged at error on purpose (behaviour B10).
    errors = [line for line in server.lines if "| ERROR  |" in line and " | 403 " not in line]
    assert not errors, errors[:5]


async def test_every_bad_head_gets_a_clean_refusal_and_the_server_goes_on() -> None:
    async with run_wsdev("cat") as server:
        got = await answers(server.port)
        served = await converse(server.ws_url + "/", ["still here"], read=1)
        assert server.proc.returncode is None
    assert got == {name: ours for name, (_, ours, _) in HEADS.items()}
    assert served.messages == ["still here"]
    assert_unhurt(server)


@requires_websocketd
async def test_websocketd_answers_bad_heads_as_reported() -> None:
    """The websocketd column of the table in docs/faults.md, measured."""
    async with run_websocketd("cat") as server:
        got = await answers(server.port)
    assert got == {name: theirs for name, (_, _, theirs) in HEADS.items()}


# ------------------------------------------------------------------------- slow loris (B15)

PARTIAL = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


async def held(port: int, first: bytes, trickle: bool) -> bytes:
    """Open a connection, send ``first`` (and, with ``trickle``, a byte every 50 ms after it)
    and return everything the server sends until it closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def keep_sending() -> None:
        while trickle and not writer.is_closing():
            await asyncio.sleep(0.05)  # a slow client's pace, not a wait for the server
            writer.write(b"x")

    sender = asyncio.ensure_future(keep_sending())
    try:
        if first:
            writer.write(first)
        received = b""
        while chunk := await reader.read(4096):
            received += chunk
        return received
    except ConnectionError:
        return b"<reset>"
    finally:
        sender.cancel()
        writer.close()


async def test_slow_loris_heads_are_closed_while_others_are_served() -> None:
    async with run_wsdev("--handshake-timeout=1", "cat") as server:
        silent = [asyncio.ensure_future(held(server.port, b"", False)) for _ in range(10)]
        blank = [asyncio.ensure_future(held(server.port, b"\r\n" * 10, False)) for _ in range(5)]
        partial = [asyncio.ensure_future(held(server.port, PARTIAL, False)) for _ in range(20)]
        trickling = [asyncio.ensure_future(held(server.port, PARTIAL, True)) for _ in range(10)]
        # Forty-odd sockets are stuck in their heads: a real client is served all the same.
        served = await converse(server.ws_url + "/", ["hello"], read=1)
        ends = await asyncio.wait_for(
            asyncio.gather(*silent, *blank, *partial, *trickling), scaled(15)
        )
        assert server.proc.returncode is None
    assert served.messages == ["hello"]
    # Nothing was asked (blank lines never make a request): nothing is answered.
    assert ends[:15] == [b""] * 15
    for end in ends[15:]:
        # Measured from accept: a client that keeps sending is cut off like one that stopped.
        assert end.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), end
        assert end.endswith(b"request head not sent in time\n"), end
    assert_unhurt(server)


async def test_handshake_timeout_zero_means_no_limit() -> None:
    async with run_wsdev("--handshake-timeout=0", "cat") as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(PARTIAL)
        # A head finished long after the default limit would have run out is still taken:
        # the rest of this head waits for a complete conversation of another client.
        await converse(server.ws_url + "/", ["other"], read=1)
        writer.write(b"1\r\n" + KEY + b"\r\n")
        status = await asyncio.wait_for(reader.readline(), scaled(5))
        writer.close()
    assert status.startswith(b"HTTP/1.1 101")


async def test_a_bad_handshake_timeout_is_one_clear_line() -> None:
    proc = await asyncio.create_subprocess_exec(
        *wsdev_argv("--port=0", "--handshake-timeout=-1", "cat"),
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), scaled(10))
    assert proc.returncode != 0
    assert b"--handshake-timeout" in err, err
    assert b"Traceback" not in err


# ------------------------------------------------------------ sizes a frame only announces

MAX_MESSAGE = 4096


def announced(size: int, *, top_bit: bool = False) -> bytes:
    """A masked text frame head announcing ``size`` bytes (64-bit length), and no payload."""
    length = size | (1 << 63 if top_bit else 0)
    return struct.pack("!BBQ", 0x81, 0x80 | 127, length) + b"\0\0\0\0"


# name: (frame head, the close codes that are right)
ANNOUNCED = {
    "1TiB": (announced(1 << 40), {1009}),  # refused on the announcement: no 1 TiB is waited for
    "top-bit-set": (announced(5, top_bit=True), {1002, 1009}),  # RFC 6455 §5.2: top bit is 0
    "one-over-maxframesize": (announced(MAX_MESSAGE + 1), {1009}),
}


async def test_frames_announcing_too_much_or_cut_off_are_refused_at_once() -> None:
    closes = {}
    async with run_wsdev(f"--maxframesize={MAX_MESSAGE}", "cat") as server:
        for name, (head, _) in ANNOUNCED.items():
            async with connect(server.port) as client:
                await client.send(head)
                closes[name] = (await client.read_close()).code
        # Half a frame, then the client is gone: its program ends all the same.
        async with connect(server.port) as client:
            await client.send(frame(OP_TEXT, b"x" * 1000)[:500])
            client.abort()
        await server.wait_for_log(r"Process ended: exit 0 .*\(close 1006")
        await assert_still_serving(Target("wsdev", server.port, server))
    for name, (_, codes) in ANNOUNCED.items():
        assert closes[name] in codes, (name, closes[name])
    assert_unhurt(server)
