"""``sessions``: many clients at once, each with a program of its own."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import ScriptWriter, run_wsdev, timeout

KEY = base64.b64encode(b"0123456789abcdef").decode()
CLIENTS = 60


def _masked_text(payload: bytes) -> bytes:
    key = os.urandom(4)
    return (
        bytes((0x81, 0x80 | len(payload)))
        + key
        + bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    )


def _handshake(line: bytes) -> bytes:
    head = (
        f"GET /?{line.decode()} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    return head + _masked_text(line)  # the message comes with the handshake, before the 101


async def _first_message(reader: asyncio.StreamReader) -> bytes:
    await reader.readuntil(b"\r\n\r\n")
    first, size = await reader.readexactly(2)
    assert first == 0x81, "not a text frame"
    return await reader.readexactly(size)


async def _burst(port: int, lines: list[bytes]) -> list[bytes]:
    """Every client connects first, then all send their handshakes at once."""
    streams = await asyncio.gather(*(asyncio.open_connection("127.0.0.1", port) for _ in lines))
    try:
        for (_, writer), line in zip(streams, lines, strict=True):
            writer.write(_handshake(line))
        return list(await asyncio.gather(*(_first_message(reader) for reader, _ in streams)))
    finally:
        for _, writer in streams:
            writer.close()


async def test_a_burst_of_clients_each_gets_its_own_program(tmp_script: ScriptWriter) -> None:
    """Clients arriving together get a program each, and every message sent with a handshake
    (before its program started) reaches that program."""
    script = tmp_script("tag.sh", '#!/bin/sh\nread line\necho "$QUERY_STRING $line $$"\n')
    async with run_wsdev(str(script)) as server:
        lines = [f"client{n}".encode() for n in range(CLIENTS)]
        replies = await asyncio.wait_for(_burst(server.port, lines), timeout(30))
    for line, reply in zip(lines, replies, strict=True):
        query, echoed, _pid = reply.decode().split()
        assert query == echoed == line.decode()
    assert len({reply.split()[-1] for reply in replies}) == CLIENTS, "a program was shared"


async def test_a_shutdown_waits_for_the_end_of_a_connection_still_finishing(
    tmp_script: ScriptWriter,
) -> None:
    # The program has exited and the client has its Close, but a background job still holds
    # stderr open, so the session's last bookkeeping (its Disconnected event: the log line, the
    # transcript's end) waits for stderr. A shutdown in that moment must wait for it too.
    from conftest import converse, local_config
    from wsdev.events import Disconnected, Event, EventBus
    from wsdev.server import Server

    script = tmp_script("leaves-a-job.sh", "#!/bin/sh\nsetsid sleep 3 >&2 &\necho bye\n")
    bus = EventBus()
    ended: list[Event] = []
    bus.subscribe(lambda event: ended.append(event) if isinstance(event, Disconnected) else None)
    server = Server(local_config(script), bus)
    await server.start()
    try:
        seen = await converse(f"ws://127.0.0.1:{server.port}/")
        assert seen.messages == ["bye"] and seen.close_code == 1000
    finally:
        await server.close()
    assert len(ended) == 1, "the connection ended without its Disconnected event"


async def test_a_client_gone_while_its_program_starts_is_a_session_that_ends_at_once(
    tmp_script: ScriptWriter, tmp_path: Path
) -> None:
    # The spawn helper is held (SIGSTOP) while a client sends its handshake, has its 101 and
    # leaves. Once the helper goes on, the program it starts is ended at once, and the session
    # is logged as it would be under websocketd: connected, then disconnected.
    from conftest import local_config, process_gone
    from wsdev.events import Connected, Disconnected, Event, EventBus
    from wsdev.server import Server

    if not hasattr(os, "pidfd_open"):
        pytest.skip("no spawn helper on this system")
    pid_file = tmp_path / "pid"
    script = tmp_script(
        "notes-pid.sh",
        f'#!/bin/sh\necho $$ > "{pid_file}.tmp"\nmv "{pid_file}.tmp" "{pid_file}"\nexec cat\n',
    )
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe(
        lambda event: seen.append(event) if isinstance(event, Connected | Disconnected) else None
    )
    server = Server(local_config(script), bus)
    await server.start()
    try:
        assert server.sessions is not None
        spawner = server.sessions.spawner
        spawner.inline_when_idle = False  # this lone client's program too goes to the helper
        assert await asyncio.wait_for(spawner.until_ready(), timeout(10))
        helper = spawner.helper_pid
        assert helper is not None
        os.kill(helper, signal.SIGSTOP)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(_handshake(b"hello"))
            await writer.drain()
            writer.write_eof()
            # The 101 comes at once; then wsdev closes its side, having seen ours closed.
            answer = await asyncio.wait_for(reader.read(), timeout(10))
            assert answer.startswith(b"HTTP/1.1 101 ") and answer.endswith(b"\r\n\r\n")
            writer.close()
            assert server.sessions.children_running == 1  # still starting, and counted
            assert seen == []
        finally:
            os.kill(helper, signal.SIGCONT)
        # Neither a file nor a process end has an event to await here: look each loop turn.
        await asyncio.wait_for(_turns_until(pid_file.exists), timeout(10))
        pid = int(pid_file.read_text())
        sessions = server.sessions
        await asyncio.wait_for(
            _turns_until(lambda: process_gone(pid) and sessions.children_running == 0),
            timeout(10),
        )
        await asyncio.wait_for(_turns_until(lambda: len(seen) == 2), timeout(10))
        connected, disconnected = seen
        assert isinstance(connected, Connected) and isinstance(disconnected, Disconnected)
        assert disconnected.code == 1006  # it vanished: no Close came
    finally:
        await server.close()


async def _turns_until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.005)


async def test_a_program_the_helper_starts_has_the_101_sent_first_and_gets_early_messages(
    tmp_script: ScriptWriter,
) -> None:
    # As from websocketd: the client is answered while its program starts (the helper is held
    # with SIGSTOP here), and what it sends meanwhile reaches the program once it runs.
    from conftest import local_config
    from wsdev.events import EventBus
    from wsdev.server import Server

    if not hasattr(os, "pidfd_open"):
        pytest.skip("no spawn helper on this system")
    script = tmp_script("echo.sh", "#!/bin/sh\nexec cat\n")
    server = Server(local_config(script), EventBus())
    await server.start()
    try:
        assert server.sessions is not None
        spawner = server.sessions.spawner
        spawner.inline_when_idle = False
        assert await asyncio.wait_for(spawner.until_ready(), timeout(10))
        helper = spawner.helper_pid
        assert helper is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        os.kill(helper, signal.SIGSTOP)
        try:
            writer.write(_handshake(b"early"))  # the message comes with the handshake
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout(10))
            assert head.startswith(b"HTTP/1.1 101 ")
            assert server.sessions.children_running == 1  # starting, not started
        finally:
            os.kill(helper, signal.SIGCONT)
        first, size = await asyncio.wait_for(reader.readexactly(2), timeout(10))
        assert first == 0x81
        assert await reader.readexactly(size) == b"early"
        writer.close()
    finally:
        await server.close()
