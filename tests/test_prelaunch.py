"""A plain handshake starts its program in the turn that accepts it (``prelaunch``).

The servers here run in the test's own event loop (wsdev's loop), so a test can count turns,
look at the bookkeeping, and serve one request twice: once read in the accepting turn, once by
aiohttp alone (``_prelaunching`` off). Both must give the program the same environment and the
client the same 101.
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
import socket
import struct
from collections.abc import Sequence
from typing import Any

import pytest
from yarl import URL

from conftest import ScriptWriter, TurnCounter, local_config, process_gone, timeout
from wsdev import eventloop
from wsdev.events import Connected, Disconnected, Event, EventBus, ProcessStarted
from wsdev.prelaunch import _decoded, read_handshake
from wsdev.server import Server

KEY = base64.b64encode(b"0123456789abcdef").decode()


def handshake(target: str = "/", *extra: str, host: str = "127.0.0.1") -> bytes:
    lines = [
        f"GET {target} HTTP/1.1",
        f"Host: {host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {KEY}",
        "Sec-WebSocket-Version: 13",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# ---------------------------------------------------------------- what counts as plain


@pytest.mark.parametrize(
    "request_bytes",
    [
        handshake(),
        handshake("/chat/room%201?user=J%C3%B6rg&x=a+b"),
        handshake("/", "Origin: http://127.0.0.1", "Cookie: a=1; b=2", "X-Tag: one", "X-Tag: two"),
        handshake("/", "Connection: keep-alive, Upgrade").replace(b"Connection: Upgrade\r\n", b""),
        handshake("/", "User-Agent:   spaced\t "),
    ],
)
def test_plain_handshakes_are_read(request_bytes: bytes) -> None:
    read = read_handshake(request_bytes + b"\x81\x80maskbytes")  # frames may follow
    assert read is not None
    assert read.key == KEY


@pytest.mark.parametrize(
    ("why", "request_bytes"),
    [
        ("not complete", handshake()[:-2]),
        ("not a GET", handshake().replace(b"GET", b"POST", 1)),
        ("HTTP/1.0", handshake().replace(b"HTTP/1.1", b"HTTP/1.0", 1)),
        ("absolute-form target", handshake("http://127.0.0.1/")),
        ("a fragment", handshake("/#top")),
        ("a space in the target", handshake("/a b")),
        ("a body", handshake("/", "Content-Length: 5")),
        ("chunked", handshake("/", "Transfer-Encoding: chunked")),
        ("an expectation", handshake("/", "Expect: 100-continue")),
        ("two Hosts", handshake("/", "Host: other")),
        ("no Host", handshake().replace(b"Host: 127.0.0.1\r\n", b"")),
        ("no Upgrade", handshake().replace(b"Upgrade: websocket\r\n", b"")),
        ("Upgrade to something else", handshake().replace(b"websocket", b"h2c")),
        ("Connection: close", handshake().replace(b"Connection: Upgrade", b"Connection: close")),
        ("version 8", handshake().replace(b"Version: 13", b"Version: 8")),
        ("a short key", handshake().replace(KEY.encode(), b"c2hvcnQ=")),
        ("no key", handshake().replace(f"Sec-WebSocket-Key: {KEY}\r\n".encode(), b"")),
        ("a folded header", handshake("/", "X-A: one", " two")),
        ("a space before the colon", handshake("/", "X-A : one")),
        ("a control character", handshake("/", "X-A: o\x01ne")),
        ("non-ASCII", handshake("/", "X-A: é")),
        ("too long", handshake("/", "Cookie: " + "c" * 9000)),
    ],
)
def test_other_requests_are_left_to_aiohttp(why: str, request_bytes: bytes) -> None:
    assert read_handshake(request_bytes) is None, why


def test_a_target_with_nothing_to_decode_is_taken_as_yarl_would_decode_it() -> None:
    """``_decoded`` skips yarl for a target without ``%`` (or ``+`` in its query): check, over
    many targets of every character a plain target may hold, that yarl agrees."""
    rng = random.Random(6455)
    allowed = [chr(c) for c in range(0x21, 0x7F) if chr(c) not in "#%+"]
    for _ in range(3000):
        target = "/" + "".join(rng.choices(allowed, k=rng.randint(0, 24)))
        if rng.random() < 0.3:
            target += "+" + "".join(rng.choices(allowed, k=rng.randint(0, 8)))  # + in the path
        raw_path, _, raw_query = target.partition("?")
        url = URL.build(path=raw_path, query_string=raw_query, encoded=True)
        assert _decoded(target) == (url.path, url.query_string), target


@pytest.mark.parametrize("target", ["/a%20b?c=%C3%B6", "/?a+b", "/p?q=1+2&r=%2B"])
def test_a_target_with_something_to_decode_is_decoded_by_yarl(target: str) -> None:
    raw_path, _, raw_query = target.partition("?")
    url = URL.build(path=raw_path, query_string=raw_query, encoded=True)
    assert _decoded(target) == (url.path, url.query_string)
    assert _decoded(target) != (raw_path, raw_query)


# ---------------------------------------------------------------- the same, read early or not


def _frames(data: bytes) -> list[tuple[int, bytes]]:
    frames = []
    while len(data) >= 2:
        opcode, length = data[0] & 0x0F, data[1]
        offset = 2
        if length == 126:
            length, offset = struct.unpack("!H", data[2:4])[0], 4
        frames.append((opcode, data[offset : offset + length]))
        data = data[offset + length :]
    return frames


def _connected(port: int, request_bytes: bytes) -> socket.socket:
    """A client that has sent ``request_bytes`` before the server's loop turns again: as a
    client in another process does, whose request is there when the server accepts."""
    client = socket.create_connection(("127.0.0.1", port))
    client.sendall(request_bytes)
    client.setblocking(False)
    return client


async def _exchange(server: Server, request_bytes: bytes) -> tuple[bytes, list[tuple[int, bytes]]]:
    """Send ``request_bytes``; the 101's head, and the frames until the server ends the stream."""
    loop = asyncio.get_running_loop()
    client = _connected(server.port, request_bytes)
    try:
        received = b""
        while chunk := await asyncio.wait_for(loop.sock_recv(client, 65536), timeout(10)):
            received += chunk
        head, _, rest = received.partition(b"\r\n\r\n")
        return head, _frames(rest)
    finally:
        client.close()


class _Upgraded:
    """Counts the connections a server answered in the accepting turn (``upgraded``)."""

    def __init__(self, server: Server) -> None:
        self.count = 0
        original = server._serve_upgraded

        def counting(*args: Any) -> None:
            self.count += 1
            original(*args)

        server._serve_upgraded = counting  # type: ignore[method-assign,assignment]


def _without(head: bytes, prefix: bytes) -> list[bytes]:
    return [line for line in head.split(b"\r\n") if not line.startswith(prefix)]


def _environment(frames: Sequence[tuple[int, bytes]]) -> dict[str, str]:
    lines = [payload.decode() for opcode, payload in frames if opcode == 0x1]
    env = dict(line.split("=", 1) for line in lines if "=" in line)
    for varying in ("UNIQUE_ID", "REMOTE_PORT", "PWD", "SHLVL", "_", "OLDPWD"):
        env.pop(varying, None)
    return env


REQUESTS = [
    handshake(),
    handshake("/chat/room%201/%2Fslash?user=J%C3%B6rg&x=a+b%20c"),
    handshake("/deep/path/", "Origin: http://127.0.0.1", "Cookie: a=1; b=2"),
    handshake("/q?", "X-Tag: one", "x-tag: two", "User-Agent:   spaced\t "),
    handshake("/plus+sign/~tilde/@at:colon;semi", "Accept-Language: en;q=0.8, de"),
]


@pytest.mark.parametrize("request_bytes", REQUESTS)
def test_a_handshake_read_early_gives_what_aiohttp_gives(
    tmp_script: ScriptWriter, request_bytes: bytes
) -> None:
    """Same environment, same 101 (but its Date), same output, whichever path read it."""
    script = tmp_script("program.sh", "#!/bin/sh\nenv\necho done\n")
    flags = ("--header=X-Every: 1", "--header-ws=X-Upgrade: 2", "--header=Server: extra")

    async def both() -> list[tuple[bytes, list[tuple[int, bytes]], int]]:
        results = []
        for prelaunching in (True, False):
            server = Server(local_config(script, *flags), EventBus())
            server._prelaunching = prelaunching
            upgraded = _Upgraded(server)
            await server.start()
            try:
                head, frames = await _exchange(server, request_bytes)
            finally:
                await server.close()
            results.append((head, frames, upgraded.count))
        return results

    (early_head, early_frames, early_count), (late_head, late_frames, late_count) = eventloop.run(
        both()
    )
    assert (early_count, late_count) == (1, 0)  # each path was the one taken
    assert early_head.startswith(b"HTTP/1.1 101 ")
    assert _without(early_head, b"Date: ") == _without(late_head, b"Date: ")
    early_env, late_env = _environment(early_frames), _environment(late_frames)
    assert early_env == late_env
    assert "REQUEST_URI" in early_env and "HTTP_SEC_WEBSOCKET_KEY" in early_env
    assert (
        early_frames[-2:]
        == late_frames[-2:]
        == [
            (0x1, b"done"),
            (0x8, struct.pack("!H", 1000) + b"exit 0"),
        ]
    )


# ---------------------------------------------------------------- sooner, and cleaned up


def test_the_101_goes_out_in_the_turn_that_accepts(tmp_script: ScriptWriter) -> None:
    """Read early, the 101 is written in the accepting turn; aiohttp's path takes more turns."""
    script = tmp_script("program.sh", "#!/bin/sh\nread line\n")

    async def turns_to_101(prelaunching: bool) -> int:
        loop = asyncio.get_running_loop()
        server = Server(local_config(script), EventBus())
        server._prelaunching = prelaunching
        await server.start()
        client = _connected(server.port, handshake())
        try:
            readable: asyncio.Future[int] = loop.create_future()
            counter = TurnCounter()

            def on_readable() -> None:
                if not readable.done():
                    readable.set_result(counter.turn)

            loop.add_reader(client.fileno(), on_readable)
            turn = await asyncio.wait_for(readable, timeout(10))
            counter.stop()
            loop.remove_reader(client.fileno())
            assert client.recv(4096).startswith(b"HTTP/1.1 101 ")
            return turn
        finally:
            client.close()
            await server.close()

    early = eventloop.run(turns_to_101(True))
    late = eventloop.run(turns_to_101(False))
    # The accepting turn writes it, the next one's select reports it.
    assert early <= 2, f"{early} turns to the 101 when read early"
    assert late > early, f"aiohttp's path took {late} turns, the early one {early}"


def test_a_client_that_leaves_at_once_ends_its_program(tmp_script: ScriptWriter) -> None:
    """The client resets the connection right after the accepting turn started its program:
    the program is ended, the connection is reported over, and no second program starts."""
    script = tmp_script("program.sh", "#!/bin/sh\nexec sleep 30\n")

    async def scenario() -> list[Event]:
        loop = asyncio.get_running_loop()
        bus = EventBus()
        events: list[Event] = []
        disconnected: asyncio.Future[None] = loop.create_future()

        def on_event(event: Event) -> None:
            events.append(event)
            if isinstance(event, Disconnected) and not disconnected.done():
                disconnected.set_result(None)

        bus.subscribe(on_event)
        server = Server(local_config(script, "--closems=100"), bus)
        clients: list[socket.socket] = []
        original = server._prelaunch

        def then_reset(*args: Any) -> Any:
            loop.call_soon(clients[0].close)  # a reset, before the connection is connected
            return original(*args)

        server._prelaunch = then_reset  # type: ignore[method-assign,assignment]
        await server.start()
        client = _connected(server.port, handshake())
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        clients.append(client)
        try:
            await asyncio.wait_for(disconnected, timeout(10))
            [started] = [e for e in events if isinstance(e, ProcessStarted)]
            assert process_gone(started.pid), "the program outlived its connection"
            return events
        finally:
            client.close()
            await server.close()

    events = eventloop.run(scenario())
    assert [type(e) for e in events if isinstance(e, (Connected, ProcessStarted))] == [
        Connected,
        ProcessStarted,
    ]
    [disconnected] = [e for e in events if isinstance(e, Disconnected)]
    assert disconnected.code == 1006


def test_a_connection_never_made_ends_the_program_started_for_it() -> None:
    from wsdev.upgraded import UpgradedProtocol

    calls: list[str] = []

    async def main() -> None:
        protocol = UpgradedProtocol(
            asyncio.get_running_loop(),
            lambda transport, protocol: calls.append("connected"),
            lambda: calls.append("never connected"),
        )
        protocol.connection_lost(RuntimeError("no transport"))
        protocol.connection_lost(None)  # once only

    eventloop.run(main())
    assert calls == ["never connected"]


def _masked(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes((0x80 | opcode, 0x80 | len(payload))) + mask + masked


def test_a_conversation_goes_alike_on_either_path(tmp_script: ScriptWriter) -> None:
    """A message, a ping and the client's Close, answered frame for frame the same whether
    the connection was answered on accept or by aiohttp."""
    script = tmp_script("program.sh", "#!/bin/sh\nexec cat\n")
    conversation = [
        _masked(0x1, b"hello"),
        _masked(0x9, b"are you there"),
        _masked(0x8, struct.pack("!H", 1000) + b"bye"),
    ]

    async def converse(prelaunching: bool) -> list[tuple[int, bytes]]:
        loop = asyncio.get_running_loop()
        server = Server(local_config(script), EventBus())
        server._prelaunching = prelaunching
        upgraded = _Upgraded(server)
        await server.start()
        client = _connected(server.port, handshake())
        try:
            received = b""
            while b"\r\n\r\n" not in received:
                received += await asyncio.wait_for(loop.sock_recv(client, 65536), timeout(10))
            received = received.partition(b"\r\n\r\n")[2]
            frames: list[tuple[int, bytes]] = []
            for frame in conversation:
                await loop.sock_sendall(client, frame)
                wanted = len(frames) + 1
                while len(frames) < wanted:
                    chunk = await asyncio.wait_for(loop.sock_recv(client, 65536), timeout(10))
                    assert chunk, "the server ended the stream early"
                    received += chunk
                    frames = _frames(received)
            while await asyncio.wait_for(loop.sock_recv(client, 65536), timeout(10)):
                pass  # the server ends the stream after its Close
            assert upgraded.count == (1 if prelaunching else 0)
            return frames
        finally:
            client.close()
            await server.close()

    early = eventloop.run(converse(True))
    late = eventloop.run(converse(False))
    assert (
        early
        == late
        == [
            (0x1, b"hello"),
            (0xA, b"are you there"),
            (0x8, struct.pack("!H", 1000)),
        ]
    )
