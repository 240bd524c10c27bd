"""RFC 6455's frame rules that a server must enforce, checked with hand-built frames.

Every test talks to a real server on 127.0.0.1 through a raw socket, so it sends exactly the
(often malformed) bytes it means, and reads the server's Close frame itself: its status code,
and that the server then closes the TCP connection (RFC 6455 §7.1.7: a server that fails the
connection closes it without waiting for the client). After each violation a fresh client must
still be served, and the server must still be running.

The same test bodies run against two servers (the ``server`` fixture's parameter):

- ``wsdev``: ``wsdev cat``, with ``--maxframesize`` set low for the size rule;
- ``reference``: an echo server on the ``websockets`` library's own asyncio server, which
  enforces RFC 6455. It proves each expectation right: a test that fails against wsdev but
  passes against the reference is wsdev's to fix. The one rule that is wsdev's own (a 426 for an
  unsupported ``Sec-WebSocket-Version``; websockets answers 400) runs against wsdev only.

Both servers are started once per module; each test opens its own connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio
import websockets
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as websockets_serve

from conftest import ServerProcess, run_wsdev, timeout
from rawhttp import WS_KEY, upgrade, upgrade_headers

pytestmark = pytest.mark.asyncio(loop_scope="module")

MAX_MESSAGE = 4096  # --maxframesize of wsdev, max_size of the reference

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

PROTOCOL_ERROR = 1002
INVALID_DATA = 1007
MESSAGE_TOO_BIG = 1009

# --------------------------------------------------------------------------------- servers


@dataclass
class Target:
    """A server under test: its name, its port, and (for wsdev) its process."""

    kind: str
    port: int
    process: ServerProcess | None = None

    def check_running(self) -> None:
        if self.process is not None:
            assert self.process.proc.returncode is None, "the server exited"


async def _echo(ws: ServerConnection) -> None:
    """The reference's handler: every message back as it came."""
    with contextlib.suppress(websockets.ConnectionClosed):
        async for message in ws:
            await ws.send(message)


@contextlib.asynccontextmanager
async def run_reference() -> AsyncIterator[int]:
    """An echo server on ``websockets``' asyncio server, on a free port (yielded)."""
    async with websockets_serve(
        _echo,
        "127.0.0.1",
        0,
        max_size=MAX_MESSAGE,
        compression=None,
        ping_interval=None,
        close_timeout=timeout(2),
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield int(port)


@pytest_asyncio.fixture(loop_scope="module", scope="module", params=["wsdev", "reference"])
async def server(request: pytest.FixtureRequest) -> AsyncIterator[Target]:
    if request.param == "wsdev":
        async with run_wsdev(
            f"--maxframesize={MAX_MESSAGE}",
            "--loglevel=info",
            "cat",
        ) as process:
            yield Target("wsdev", process.port, process)
    else:
        async with run_reference() as port:
            yield Target("reference", port)


def wsdev_only(target: Target, why: str) -> None:
    if target.kind != "wsdev":
        pytest.skip(f"wsdev-specific: {why}")


# --------------------------------------------------------------------------------- frames


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    masked: bool = True,
) -> bytes:
    """A client frame; ``rsv`` is the three reserved bits as a number 0–7 (RSV1 = 4)."""
    first = (0x80 if fin else 0) | (rsv & 0x7) << 4 | opcode & 0x0F
    mask_bit = 0x80 if masked else 0
    size = len(payload)
    if size < 126:
        head = bytes((first, mask_bit | size))
    elif size < 1 << 16:
        head = struct.pack("!BBH", first, mask_bit | 126, size)
    else:
        head = struct.pack("!BBQ", first, mask_bit | 127, size)
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def close_frame(code: int | None, reason: bytes = b"") -> bytes:
    payload = b"" if code is None else struct.pack("!H", code) + reason
    return frame(OP_CLOSE, payload)


@dataclass
class Frame:
    fin: bool
    rsv: int
    opcode: int
    payload: bytes


def describe(frames: list[Frame]) -> str:
    """Frames, briefly, for an assertion's message."""
    if not frames:
        return "nothing"
    names = {OP_CONT: "cont", OP_TEXT: "text", OP_BINARY: "binary", OP_PING: "ping"}
    names |= {OP_PONG: "pong", OP_CLOSE: "close"}
    return ", ".join(
        f"{names.get(f.opcode, hex(f.opcode))}{'' if f.fin else '(FIN=0)'} {f.payload[:40]!r}"
        for f in frames
    )


@dataclass
class Closed:
    """The server's Close frame (None if it sent none) and what came before it."""

    code: int | None
    reason: bytes
    before: list[Frame]


class Client:
    """A raw WebSocket client connection, after a 101."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def send(self, *frames: bytes) -> None:
        """Send ``frames``; a server that has already given up may reset the connection."""
        try:
            self.writer.write(b"".join(frames))
            await self.writer.drain()
        except ConnectionError:
            pass

    async def read_frame(self) -> Frame:
        first, second = await self.reader.readexactly(2)
        assert not second & 0x80, "the server masked a frame"
        size = second & 0x7F
        if size == 126:
            (size,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif size == 127:
            (size,) = struct.unpack("!Q", await self.reader.readexactly(8))
        payload = await self.reader.readexactly(size)
        return Frame(bool(first & 0x80), first >> 4 & 0x7, first & 0x0F, payload)

    async def next_frame(self, within: float = 5) -> Frame:
        return await asyncio.wait_for(self.read_frame(), timeout(within))

    async def read_close(self, within: float = 5) -> Closed:
        """Frames up to and including the server's Close (skipping data and pongs)."""

        before: list[Frame] = []

        async def until_close() -> Closed:
            while True:
                try:
                    got = await self.read_frame()
                except (asyncio.IncompleteReadError, ConnectionError):
                    return Closed(None, b"", before)
                if got.opcode == OP_CLOSE:
                    code = struct.unpack("!H", got.payload[:2])[0] if got.payload else None
                    return Closed(code, got.payload[2:], before)
                before.append(got)

        try:
            return await asyncio.wait_for(until_close(), timeout(within))
        except asyncio.TimeoutError:
            raise AssertionError(
                f"no Close frame within {within}s; got instead: {describe(before)}"
            ) from None

    async def wait_tcp_closed(self, within: float = 5) -> None:
        """Wait for the server to close the TCP connection (EOF or a reset)."""

        async def drained() -> None:
            with contextlib.suppress(ConnectionError):
                while await self.reader.read(65536):
                    pass

        try:
            await asyncio.wait_for(drained(), timeout(within))
        except asyncio.TimeoutError:
            raise AssertionError(
                f"the server sent its Close but kept the TCP connection open for {within}s"
            ) from None

    async def expect_close(self, code: int) -> Closed:
        """The server closes with ``code``, then closes the TCP connection."""
        closed = await self.read_close()
        assert closed.code is not None, "the server closed the connection without a Close frame"
        assert closed.code == code, (
            f"Close {closed.code} {closed.reason!r}, expected {code}; "
            f"before it: {describe(closed.before)}"
        )
        await self.wait_tcp_closed()
        return closed

    def abort(self) -> None:
        self.writer.transport.abort()


@contextlib.asynccontextmanager
async def connect(port: int) -> AsyncIterator[Client]:
    """A raw WebSocket connection to 127.0.0.1:``port``, upgraded by hand."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout(5))
    lines = ["GET / HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{name}: {value}" for name, value in upgrade_headers()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout(5))
    assert head.startswith(b"HTTP/1.1 101 "), head
    client = Client(reader, writer)
    try:
        yield client
    finally:
        client.abort()


async def expect_frame(client: Client, opcode: int, payload: bytes) -> None:
    """The server's next frame is a final ``opcode`` frame with ``payload``."""
    got = await client.next_frame()
    assert (got.fin, got.opcode, got.payload) == (True, opcode, payload), (
        f"expected {describe([Frame(True, 0, opcode, payload)])}, got {describe([got])}"
    )


async def assert_still_serving(target: Target) -> None:
    """A fresh client gets its message echoed, and the server is still running."""
    async with connect(target.port) as client:
        await client.send(frame(OP_TEXT, b"still serving"))
        await expect_frame(client, OP_TEXT, b"still serving")
        await client.send(close_frame(1000))
        await client.expect_close(1000)
    target.check_running()


async def violation(target: Target, frames: list[bytes], code: int) -> Closed:
    """Send ``frames`` on a fresh connection: the server closes with ``code`` and goes on
    serving other clients."""
    async with connect(target.port) as client:
        await client.send(*frames)
        closed = await client.expect_close(code)
    await assert_still_serving(target)
    return closed


# --------------------------------------------------------------------------------- framing


async def test_echo_baseline(server: Target) -> None:
    """The fixture's own check: a clean conversation and a clean close."""
    await assert_still_serving(server)


async def test_unmasked_client_frame(server: Target) -> None:
    await violation(server, [frame(OP_TEXT, b"hello", masked=False)], PROTOCOL_ERROR)


@pytest.mark.parametrize("rsv", [4, 2, 1, 7], ids=["RSV1", "RSV2", "RSV3", "all"])
async def test_reserved_bits_without_extension(server: Target, rsv: int) -> None:
    await violation(server, [frame(OP_TEXT, b"hello", rsv=rsv)], PROTOCOL_ERROR)


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF], ids=hex)
async def test_reserved_opcode(server: Target, opcode: int) -> None:
    await violation(server, [frame(opcode, b"hello")], PROTOCOL_ERROR)


async def test_fragmented_control_frame(server: Target) -> None:
    await violation(server, [frame(OP_PING, b"ping", fin=False)], PROTOCOL_ERROR)


@pytest.mark.parametrize("opcode", [OP_PING, OP_PONG, OP_CLOSE], ids=["ping", "pong", "close"])
async def test_control_frame_payload_over_125(server: Target, opcode: int) -> None:
    payload = struct.pack("!H", 1000) + b"x" * 124 if opcode == OP_CLOSE else b"x" * 126
    await violation(server, [frame(opcode, payload)], PROTOCOL_ERROR)


async def test_continuation_with_nothing_to_continue(server: Target) -> None:
    await violation(server, [frame(OP_CONT, b"orphan")], PROTOCOL_ERROR)


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
async def test_new_data_frame_during_fragmented_message(server: Target, opcode: int) -> None:
    frames = [frame(OP_TEXT, b"first ", fin=False), frame(opcode, b"second")]
    await violation(server, frames, PROTOCOL_ERROR)


async def test_control_frame_between_fragments_is_allowed(server: Target) -> None:
    """Control frames may come between a message's fragments (RFC 6455 §5.4)."""
    async with connect(server.port) as client:
        await client.send(
            frame(OP_TEXT, b"frag", fin=False),
            frame(OP_PING, b"between"),
            frame(OP_CONT, b"mented"),
        )
        await expect_frame(client, OP_PONG, b"between")
        await expect_frame(client, OP_TEXT, b"fragmented")
        await client.send(close_frame(1000))
        await client.expect_close(1000)
    await assert_still_serving(server)


# --------------------------------------------------------------------------------- close


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535])
async def test_close_with_invalid_code(server: Target, code: int) -> None:
    await violation(server, [close_frame(code)], PROTOCOL_ERROR)


@pytest.mark.parametrize("code", [1000, 1001, 3000, 4999])
async def test_close_with_valid_code_is_echoed(server: Target, code: int) -> None:
    async with connect(server.port) as client:
        await client.send(close_frame(code, b"bye"))
        await client.expect_close(code)
    await assert_still_serving(server)


async def test_close_with_one_byte_payload(server: Target) -> None:
    await violation(server, [frame(OP_CLOSE, b"\x03")], PROTOCOL_ERROR)


async def test_close_reason_invalid_utf8(server: Target) -> None:
    await violation(server, [close_frame(1000, b"bad \xff\xfe reason")], INVALID_DATA)


async def test_close_without_code_is_answered(server: Target) -> None:
    """An empty Close is valid (no status code): the server answers it and closes."""
    async with connect(server.port) as client:
        await client.send(close_frame(None))
        closed = await client.read_close()
        assert closed.code in (None, 1000), closed
        await client.wait_tcp_closed()
    await assert_still_serving(server)


# --------------------------------------------------------------------------------- UTF-8

INVALID_UTF8 = {
    "0xff": b"hello \xff world",
    "surrogate": b"\xed\xa0\x80",
    "overlong": b"\xc0\xaf",
    "over-U+10FFFF": b"\xf4\x90\x80\x80",
    "truncated-at-end": b"euro \xe2\x82",
}


@pytest.mark.parametrize("payload", list(INVALID_UTF8.values()), ids=list(INVALID_UTF8))
async def test_text_invalid_utf8_single_frame(server: Target, payload: bytes) -> None:
    await violation(server, [frame(OP_TEXT, payload)], INVALID_DATA)


async def test_text_invalid_utf8_in_a_later_fragment(server: Target) -> None:
    frames = [
        frame(OP_TEXT, b"valid start ", fin=False),
        frame(OP_CONT, b"then \xff", fin=False),
        frame(OP_CONT, b" end"),
    ]
    await violation(server, frames, INVALID_DATA)


async def test_text_fragments_that_never_complete_a_character(server: Target) -> None:
    """Each fragment is an unfinished sequence, and the next one does not finish it."""
    frames = [frame(OP_TEXT, b"\xe2\x82", fin=False), frame(OP_CONT, b"\xe2\x82")]
    await violation(server, frames, INVALID_DATA)


async def test_text_message_ending_mid_character(server: Target) -> None:
    frames = [frame(OP_TEXT, b"euro ", fin=False), frame(OP_CONT, b"\xe2\x82")]
    await violation(server, frames, INVALID_DATA)


@pytest.mark.parametrize(
    "parts",
    [[b"\xe2", b"\x82\xac"], [b"\xe2\x82", b"\xac"], [b"\xf0\x9f", b"\x98", b"\x80"]],
    ids=["euro-1+2", "euro-2+1", "emoji-2+1+1"],
)
async def test_text_multibyte_character_split_across_fragments_is_accepted(
    server: Target, parts: list[bytes]
) -> None:
    """Each fragment alone is invalid UTF-8, the message as a whole is valid."""
    whole = b"".join(parts)
    frames = [frame(OP_TEXT, b"[" + parts[0], fin=False)]
    frames += [frame(OP_CONT, part, fin=False) for part in parts[1:]]
    frames += [frame(OP_CONT, b"]")]
    async with connect(server.port) as client:
        await client.send(*frames)
        await expect_frame(client, OP_TEXT, b"[" + whole + b"]")
        await client.send(close_frame(1000))
        await client.expect_close(1000)


# --------------------------------------------------------------------------------- size


async def test_message_at_maxframesize_is_accepted(server: Target) -> None:
    async with connect(server.port) as client:
        await client.send(frame(OP_TEXT, b"a" * MAX_MESSAGE))
        await expect_frame(client, OP_TEXT, b"a" * MAX_MESSAGE)
        await client.send(close_frame(1000))
        await client.expect_close(1000)


async def test_frame_over_maxframesize(server: Target) -> None:
    await violation(server, [frame(OP_TEXT, b"a" * (MAX_MESSAGE + 1))], MESSAGE_TOO_BIG)


async def test_fragmented_message_over_maxframesize(server: Target) -> None:
    """Each fragment is small; the message they make is over the limit."""
    third = MAX_MESSAGE // 3 + 1
    frames = [
        frame(OP_TEXT, b"a" * third, fin=False),
        frame(OP_CONT, b"b" * third, fin=False),
        frame(OP_CONT, b"c" * third, fin=False),
        frame(OP_CONT, b"d"),
    ]
    await violation(server, frames, MESSAGE_TOO_BIG)


# --------------------------------------------------------------------------------- ping


@pytest.mark.parametrize("payload", [b"", b"ping payload", bytes(range(125))], ids=len)
async def test_ping_gets_pong_with_same_payload(server: Target, payload: bytes) -> None:
    async with connect(server.port) as client:
        await client.send(frame(OP_PING, payload))
        await expect_frame(client, OP_PONG, payload)
        await client.send(close_frame(1000))
        await client.expect_close(1000)


async def test_unsolicited_pong_is_ignored(server: Target) -> None:
    async with connect(server.port) as client:
        await client.send(frame(OP_PONG, b"unasked"), frame(OP_TEXT, b"after the pong"))
        await expect_frame(client, OP_TEXT, b"after the pong")
        await client.send(close_frame(1000))
        await client.expect_close(1000)


# --------------------------------------------------------------------------------- handshake


async def test_unsupported_version_gets_426_with_supported_version(server: Target) -> None:
    wsdev_only(server, "websockets answers an unsupported version with 400, RFC 6455 §4.2.2")
    headers = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", WS_KEY),
        ("Sec-WebSocket-Version", "8"),
    ]
    response = await upgrade(server.port, headers=headers)
    assert response.status == 426, (response.status, response.reason)
    assert response.header("Sec-WebSocket-Version") == "13", response.headers
    await assert_still_serving(server)
