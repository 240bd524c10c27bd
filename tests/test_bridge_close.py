"""When a program ends its connection, the client hears it in the loop turn wsdev sees the end.

These run wsdev's server in the test's own event loop (wsdev's loop) and count the loop's turns,
so they can say how many turns lie between the program's exit and the client seeing the
Close and the end of the stream: the work of a finished connection comes after that, not
before it (``Bridge._close_at_exit``).
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import ScriptWriter, TurnCounter, local_config, process_gone, timeout
from wsdev import eventloop
from wsdev.events import Disconnected, Event, EventBus, ProcessStarted
from wsdev.server import Server

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs pidfd_open"),
    # They count the turns of wsdev's loop, which eventloop.run uses from Python 3.11 on.
    pytest.mark.skipif(sys.version_info < (3, 11), reason="Python 3.10 runs asyncio's loop"),
]

# The turns from one loop turn to the client's readiness: the turn that sends the Close and
# the FIN, then the turn whose select reports the client's socket readable.
MOST_TURNS = 2


def masked_text_frame(text: str) -> bytes:
    payload = text.encode()
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes((0x81, 0x80 | len(payload))) + mask + masked


def open_sockets() -> int:
    """How many sockets this process holds open (the test's server runs in this process)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                count += 1
        except OSError:
            pass  # closed while we looked
    return count


async def sockets_back_to(count: int, within: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while open_sockets() > count:
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def parse_server_frames(data: bytes) -> list[tuple[int, bytes]]:
    """(opcode, payload) of each unmasked, short frame in ``data``."""
    frames = []
    while data:
        opcode, length = data[0] & 0x0F, data[1]
        assert length < 126
        frames.append((opcode, data[2 : 2 + length]))
        data = data[2 + length :]
    return frames


async def _handshake(client: socket.socket, port: int) -> bytearray:
    """Connect ``client`` and upgrade it; what came after the 101 is returned."""
    loop = asyncio.get_running_loop()
    await loop.sock_connect(client, ("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    await loop.sock_sendall(
        client,
        (
            f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode(),
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = await loop.sock_recv(client, 4096)
        assert chunk, "the server closed during the handshake"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101")
    return bytearray(head.split(b"\r\n\r\n", 1)[1])


@dataclass
class Outcome:
    turns: int  # from the turn the program's exit was reported to the client's end of stream
    frames: list[tuple[int, bytes]]
    events: list[Event]
    socket_closed: bool  # wsdev closed its end of the connection once it was over


async def _serve_one(script: Path, line: str) -> Outcome:
    """One connection to ``script``: send ``line``, read until the server ends the stream."""
    loop = asyncio.get_running_loop()
    assert isinstance(loop, eventloop.EventLoop)
    config = local_config(script)
    bus = EventBus()
    events: list[Event] = []
    started: asyncio.Future[int] = loop.create_future()
    disconnected: asyncio.Future[None] = loop.create_future()

    def on_event(event: Event) -> None:
        events.append(event)
        if isinstance(event, ProcessStarted) and not started.done():
            started.set_result(event.pid)
        if isinstance(event, Disconnected) and not disconnected.done():
            disconnected.set_result(None)

    bus.subscribe(on_event)
    server = Server(config, bus)
    await server.start()
    sockets_before = open_sockets()
    client = socket.socket()
    client.setblocking(False)
    pidfd = -1
    counter = TurnCounter()
    try:
        received = await _handshake(client, server.port)
        pid = await asyncio.wait_for(started, timeout(10))
        pidfd = os.pidfd_open(pid)
        exit_turn: list[int] = []
        eof_turn: asyncio.Future[int] = loop.create_future()

        def on_exit() -> None:
            exit_turn.append(counter.turn)
            loop.remove_reader(pidfd)

        def on_readable() -> None:
            try:
                data = client.recv(65536)
            except BlockingIOError:
                return
            if data:
                received.extend(data)
                return
            loop.remove_reader(client.fileno())
            eof_turn.set_result(counter.turn)

        loop.add_reader(pidfd, on_exit)
        loop.add_reader(client.fileno(), on_readable)
        # The program exits once it has read a line: after both watchers are in place.
        await loop.sock_sendall(client, masked_text_frame(line))
        end = await asyncio.wait_for(eof_turn, timeout(10))
        assert exit_turn, "the client saw the end before the program's exit was reported"
        client.close()
        await asyncio.wait_for(disconnected, timeout(10))
        return Outcome(
            turns=end - exit_turn[0],
            frames=parse_server_frames(bytes(received)),
            events=events,
            socket_closed=await sockets_back_to(sockets_before, timeout(5)),
        )
    finally:
        counter.stop()
        if pidfd >= 0:
            loop.remove_reader(pidfd)
            os.close(pidfd)
        if client.fileno() >= 0:
            loop.remove_reader(client.fileno())
        client.close()
        await server.close()


def test_the_close_reaches_the_client_in_the_turn_the_exit_is_seen(
    tmp_script: ScriptWriter,
) -> None:
    script = tmp_script("program.sh", '#!/bin/sh\nread line\necho "$line"\n')
    outcome = eventloop.run(_serve_one(script, "bye"))
    # Everything the program wrote, then the Close its exit status gives (SPEC B1, B2).
    assert outcome.frames == [(0x1, b"bye"), (0x8, struct.pack("!H", 1000) + b"exit 0")]
    assert outcome.turns <= MOST_TURNS, f"{outcome.turns} turns from the exit to the client's end"
    # The bookkeeping still happened, after the client had its answer, and closed the socket.
    [disconnected] = [e for e in outcome.events if isinstance(e, Disconnected)]
    assert (disconnected.code, disconnected.reason) == (1000, "exit 0")
    assert outcome.socket_closed


def test_a_close_sent_when_stdout_ends_after_the_exit_still_closes_the_socket(
    tmp_script: ScriptWriter,
) -> None:
    """The program exits first; a process of another session holds its stdout a while longer.

    The end of stdout then sends the Close while ``_end`` is already waiting for it: the
    connection must still be closed on wsdev's side, and the exit reported once.
    """
    script = tmp_script(
        "program.sh",
        '#!/bin/sh\nread line\nsetsid sleep 0.3 </dev/null 2>/dev/null &\necho "$line"\n',
    )
    outcome = eventloop.run(_serve_one(script, "later"))
    assert outcome.frames == [(0x1, b"later"), (0x8, struct.pack("!H", 1000) + b"exit 0")]
    [disconnected] = [e for e in outcome.events if isinstance(e, Disconnected)]
    assert (disconnected.code, disconnected.reason) == (1000, "exit 0")
    assert outcome.socket_closed, "wsdev kept its end of the finished connection open"


async def _serve_exited(script: Path, args: list[str]) -> list[tuple[int, bytes]]:
    """One connection to ``script``, whose output and exit all wait until wsdev looks at once.

    The loop is held when the program starts, until it has exited: wsdev then sees its
    output, the end of its stdout and its exit in one turn.
    """
    loop = asyncio.get_running_loop()
    config = local_config(script, *args)
    bus = EventBus()
    disconnected: asyncio.Future[Disconnected] = loop.create_future()

    def on_event(event: Event) -> None:
        if isinstance(event, ProcessStarted):
            deadline = time.monotonic() + timeout(10)
            while not process_gone(event.pid):  # holds the loop: nothing of wsdev runs
                assert time.monotonic() < deadline, "the program did not exit"
                time.sleep(0.001)
        if isinstance(event, Disconnected) and not disconnected.done():
            disconnected.set_result(event)

    bus.subscribe(on_event)
    server = Server(config, bus)
    await server.start()
    client = socket.socket()
    client.setblocking(False)
    try:
        received = await _handshake(client, server.port)
        while chunk := await asyncio.wait_for(loop.sock_recv(client, 65536), timeout(10)):
            received += chunk
        event = await asyncio.wait_for(disconnected, timeout(10))
        frames = parse_server_frames(bytes(received))
        assert frames[-1][0] == 0x8, "the stream ended without a Close"
        close_code = struct.unpack("!H", frames[-1][1][:2])[0]
        assert event.code == close_code, "the log and the client were told different endings"
        return frames
    finally:
        client.close()
        await server.close()


def test_a_line_too_long_closes_1009_though_the_exit_is_seen_in_the_same_turn(
    tmp_script: ScriptWriter,
) -> None:
    script = tmp_script("program.sh", "#!/bin/sh\necho ok\necho far-too-long\n")
    frames = eventloop.run(_serve_exited(script, ["--max-line-bytes=8"]))
    assert frames == [(0x1, b"ok"), (0x8, struct.pack("!H", 1009) + b"line too long")]


def test_a_program_seen_written_and_exited_in_one_turn_closes_as_its_exit_says(
    tmp_script: ScriptWriter,
) -> None:
    script = tmp_script("program.sh", "#!/bin/sh\necho one\necho two\nexit 3\n")
    frames = eventloop.run(_serve_exited(script, []))
    assert frames == [(0x1, b"one"), (0x1, b"two"), (0x8, struct.pack("!H", 1011) + b"exit 3")]
