"""The log is never late and never loses a line (behaviour A6), against a real wsdev process.

The start-up lines are written before any client is answered; lines logged just before
SIGINT or SIGTERM are written before wsdev exits; a program flooding stderr costs one write
per loop turn, not one per line.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
import sys
from pathlib import Path

import pytest
import websockets
from websockets.asyncio.client import connect

from conftest import (
    ROOT,
    ScriptWriter,
    converse,
    free_port,
    local_config,
    run_wsdev,
    timeout,
    wsdev_argv,
)
from rawhttp import WS_KEY
from wsdev.events import Disconnected, Event, EventBus
from wsdev.logs import LogOutput, LogWriter
from wsdev.server import Server

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and scripts")


async def test_start_up_lines_are_written_before_the_first_client_is_answered(
    tmp_script: ScriptWriter, tmp_path: Path
) -> None:
    # A script in the working folder: restart on edit is on, and its watcher's set-up lets a
    # loop turn pass between listening and the start-up lines.
    script = tmp_script("echo.sh", "#!/bin/sh\nexec cat\n")
    port = free_port()
    log_read, log_write = os.pipe()
    os.set_blocking(log_read, False)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = await asyncio.create_subprocess_exec(
        *wsdev_argv("--no-dashboard", f"--port={port}", "--address=127.0.0.1", str(script)),
        cwd=tmp_path,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=log_write,
        stderr=asyncio.subprocess.DEVNULL,
    )
    os.close(log_write)
    try:

        async def first_connection() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            while True:
                try:
                    return await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    assert proc.returncode is None, "wsdev exited"
                    # Polling a port has no event to wait on; connect the moment it listens.
                    await asyncio.sleep(0.001)

        reader, writer = await asyncio.wait_for(first_connection(), timeout(20))
        writer.write(
            f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {WS_KEY}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout(10))
        assert head.startswith(b"HTTP/1.1 101 ")
        # Whatever wsdev had written when it answered is in the pipe now.
        try:
            written = os.read(log_read, 1 << 20).decode()
        except BlockingIOError:
            written = ""
        writer.close()
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), timeout(10))
        os.close(log_read)
    assert f"Starting WebSocket server   : ws://127.0.0.1:{port}/\n" in written, written
    assert "Serving using application   : " in written


async def test_lines_logged_just_before_sigterm_are_written(tmp_script: ScriptWriter) -> None:
    script = tmp_script("talk.sh", '#!/bin/sh\necho "last words" >&2\necho ready\nexec cat\n')
    async with run_wsdev(str(script)) as server:
        async with connect(f"{server.ws_url}/") as ws:
            assert await asyncio.wait_for(ws.recv(), timeout(10)) == "ready"
            server.proc.send_signal(signal.SIGTERM)
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), timeout(10))
        assert await server.finished() == 0
    log = "\n".join(server.lines)
    for expected in ("| last words", "Shutting down", "| DISCONNECT", "Process ended"):
        assert expected in log, (expected, log)


async def test_lines_logged_just_before_a_second_ctrl_c_are_written(
    tmp_script: ScriptWriter,
) -> None:
    # The program ignores SIGINT, SIGTERM and the end of its stdin, so the first Ctrl+C's
    # shutdown waits for its SIGKILL, and the second Ctrl+C ends wsdev at once (behaviour B6),
    # a moment after the first one's lines.
    script = tmp_script("stubborn.sh", "#!/bin/sh\ntrap '' INT TERM\necho ready\nexec sleep 60\n")
    async with run_wsdev(str(script)) as server:
        async with connect(f"{server.ws_url}/") as ws:
            assert await asyncio.wait_for(ws.recv(), timeout(10)) == "ready"
            server.proc.send_signal(signal.SIGINT)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), timeout(10))
            # The Close went out in the turn that logged "Shutting down": interrupt at once.
            server.proc.send_signal(signal.SIGINT)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        assert await server.finished() == 130
    assert any("| Shutting down: interrupted" in line for line in server.lines), server.lines


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


async def test_a_stderr_flood_is_written_a_turn_at_a_time(tmp_script: ScriptWriter) -> None:
    lines = 5000
    script = tmp_script("flood.sh", f"#!/bin/sh\nseq 1 {lines} >&2\necho done\n")
    config = local_config(script)
    bus = EventBus()
    stream = CountingStream()
    LogWriter(bus, config, LogOutput(stream))
    ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_event(event: Event) -> None:
        if isinstance(event, Disconnected) and not ended.done():
            ended.set_result(None)

    bus.subscribe(on_event, messages=False)
    server = Server(config, bus)
    await server.start()
    try:
        transcript = await converse(f"ws://127.0.0.1:{server.port}/")
        assert transcript.messages == ["done"]
        await asyncio.wait_for(ended, timeout(10))
        await asyncio.sleep(0)  # the end of the turn that logged the last line
    finally:
        await server.close()
    logged = [line for line in stream.getvalue().splitlines() if "| ERROR  | stderr" in line]
    assert [line.rsplit(" | ", 1)[1] for line in logged] == [str(n) for n in range(1, lines + 1)]
    # One write per loop turn that logged something: a turn per pipe read, not per line.
    assert stream.writes < lines // 20, stream.writes


FLOODER = f"""#!{sys.executable}
import sys
for line in sys.stdin:
    if line.strip() == "flood":
        for i in range(150_000):
            sys.stderr.write(f"flood line {{i}} " + "x" * 60 + "\\n")
        sys.stderr.flush()
        print("flooded", flush=True)
    else:
        print(line.strip(), flush=True)
"""


async def test_a_log_reader_that_stops_reading_freezes_nothing(tmp_script: ScriptWriter) -> None:
    """The log's pipe is full and its reader away: clients are still served, and once the
    reader reads again the lines come, with a count of those the bounded backlog dropped."""
    program = tmp_script("flooder.py", FLOODER)
    argv = wsdev_argv(
        "--port=0", "--address=127.0.0.1", "--no-dashboard", "--no-reload", str(program)
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=env,
        limit=64 * 1024 * 1024,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        port = 0
        while not port:
            line = await asyncio.wait_for(proc.stdout.readline(), timeout(10))
            assert line, "wsdev exited"
            if b"ws://127.0.0.1:" in line:
                port = int(line.split(b"ws://127.0.0.1:")[1].split(b"/")[0])
        # From here on nobody reads wsdev's log until the clients are done.
        url = f"ws://127.0.0.1:{port}/"
        async with connect(url, open_timeout=timeout(10)) as flooding:
            await flooding.send("flood")
            # 150,000 stderr lines (about 14 MB of log) have been read by wsdev once this comes.
            assert await asyncio.wait_for(flooding.recv(), timeout(30)) == "flooded"
            async with connect(url, open_timeout=timeout(10)) as other:
                await other.send("still served")
                assert await asyncio.wait_for(other.recv(), timeout(10)) == "still served"
        log = b""
        while b"log lines dropped" not in log:
            chunk = await asyncio.wait_for(proc.stdout.read(1 << 20), timeout(30))
            assert chunk, "the log ended without saying what was dropped"
            log += chunk
        text = log.decode()
        assert "flood line 0 " in text  # the backlog kept the oldest lines, in order
        assert text.index("flood line 0 ") < text.index("flood line 1000 ")
    finally:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(proc.communicate(), timeout(20))
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0
