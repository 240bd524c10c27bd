"""Shared test helpers: run wsdev or websocketd as a real server on 127.0.0.1 and talk to it.

Every wait is on an event (a log line, a message, a process exit) bounded by a timeout; all
timeouts scale with ``WSDEV_TEST_TIMEOUT_SCALE`` for slow machines.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from wsdev.cli import build_config, parse_args
from wsdev.config import Config

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SCALE = float(os.environ.get("WSDEV_TEST_TIMEOUT_SCALE", "1"))
WEBSOCKETD = shutil.which("websocketd")

requires_websocketd = pytest.mark.skipif(
    WEBSOCKETD is None and not os.environ.get("CI"),
    reason="websocketd is not installed (apt-get install -y websocketd)",
)


def process_gone(pid: int) -> bool:
    """Whether ``pid`` has ended: no such process, or a zombie its parent has not collected
    (an orphan's zombie waits for init, which may be slow to reap)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def timeout(seconds: float) -> float:
    """A timeout of ``seconds`` on this machine, scaled by WSDEV_TEST_TIMEOUT_SCALE."""
    return seconds * SCALE


def free_port() -> int:
    """A port that was free a moment ago (for websocketd, which cannot report port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TurnCounter:
    """Counts the running event loop's turns: a callback that schedules itself runs once per
    turn, so ``turn`` says how many turns lie between two moments of a test."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.turn = 0
        self._stopped = False
        self._loop.call_soon(self._tick)

    def _tick(self) -> None:
        if not self._stopped:
            self.turn += 1
            self._loop.call_soon(self._tick)

    def stop(self) -> None:
        self._stopped = True


@dataclass
class ServerProcess:
    """A wsdev or websocketd process serving on 127.0.0.1, with its log lines collected."""

    proc: asyncio.subprocess.Process
    port: int = 0
    lines: list[str] = field(default_factory=list)
    stderr_lines: list[str] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def _collect(self, stream: asyncio.StreamReader, into: list[str]) -> None:
        while line := await stream.readline():
            into.append(line.decode("utf-8", "replace").rstrip("\n"))
            self._changed.set()
        self._changed.set()

    async def wait_for_log(self, pattern: str, after: int = 0, within: float = 10) -> re.Match[str]:
        """The first log line (from index ``after``) that matches the regex ``pattern``."""
        regex = re.compile(pattern)

        async def search() -> re.Match[str]:
            seen = after
            while True:
                for line in self.lines[seen:]:
                    if match := regex.search(line):
                        return match
                seen = max(seen, len(self.lines))
                if self.proc.returncode is not None:
                    raise AssertionError(f"server exited before logging {pattern!r}: {self.lines}")
                self._changed.clear()
                await self._changed.wait()

        try:
            return await asyncio.wait_for(search(), timeout(within))
        except asyncio.TimeoutError:
            log = "\n".join(self.lines[-40:])
            raise AssertionError(f"no log line matched {pattern!r}; log:\n{log}") from None

    async def finished(self, within: float = 10) -> int:
        """Wait until the process has exited and all its output is read; its exit status."""
        tasks = self._tasks  # type: ignore[attr-defined]
        await asyncio.wait_for(asyncio.gather(self.proc.wait(), *tasks), timeout(within))
        assert self.proc.returncode is not None
        return self.proc.returncode

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout(10))
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        return self.proc.returncode if self.proc.returncode is not None else -1


async def _start(
    argv: Sequence[str], cwd: Path | None, env: dict[str, str] | None
) -> ServerProcess:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        limit=64 * 1024 * 1024,
    )
    server = ServerProcess(proc)
    assert proc.stdout is not None and proc.stderr is not None
    server._tasks = [  # type: ignore[attr-defined]
        asyncio.ensure_future(server._collect(proc.stdout, server.lines)),
        asyncio.ensure_future(server._collect(proc.stderr, server.stderr_lines)),
    ]
    return server


def wsdev_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "wsdev", *args]


@contextlib.asynccontextmanager
async def run_wsdev(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, defaults: bool = True
) -> AsyncIterator[ServerProcess]:
    """Run ``wsdev`` on a free port of 127.0.0.1 with the log on stdout, until the block ends.

    ``defaults`` adds ``--port=0 --address=127.0.0.1 --no-dashboard --no-reload`` in front, so a
    test states only what it is about.
    """
    front = ["--port=0", "--address=127.0.0.1", "--no-dashboard", "--no-reload"] if defaults else []
    full_env = {**os.environ, **(env or {})}
    full_env.setdefault("PYTHONPATH", str(ROOT / "src"))
    server = await _start(wsdev_argv(*front, *args), cwd, full_env)
    try:
        if defaults:
            match = await server.wait_for_log(r"ws://127\.0\.0\.1:(\d+)/")
            server.port = int(match.group(1))
        yield server
    finally:
        await server.stop()


@contextlib.asynccontextmanager
async def run_websocketd(*args: str, cwd: Path | None = None) -> AsyncIterator[ServerProcess]:
    """Run the reference websocketd on a free port of 127.0.0.1 until the block ends."""
    if WEBSOCKETD is None:
        pytest.skip("websocketd is not installed")
    port = free_port()
    server = await _start(
        [WEBSOCKETD, f"--port={port}", "--address=127.0.0.1", *args], cwd, dict(os.environ)
    )
    server.port = port
    try:
        await server.wait_for_log(r"Starting WebSocket server|Serving")
        await _wait_listening(port)
        yield server
    finally:
        await server.stop()


async def _wait_listening(port: int) -> None:
    async def attempt() -> None:
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.02)  # polling a port has no event to wait on
                continue
            writer.close()
            return

    await asyncio.wait_for(attempt(), timeout(10))


# Writes an executable script (name, text) and returns its path.
ScriptWriter = Callable[[str, str], Path]


def local_config(program: Path, *flags: str) -> Config:
    """The configuration of a wsdev serving ``program`` on 127.0.0.1 (any free port), quietly,
    for a test that runs its ``Server`` in its own event loop."""
    return build_config(
        parse_args(["--port=0", "--address=127.0.0.1", "--loglevel=error", *flags, str(program)]),
        environ={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )


@pytest.fixture
def tmp_script(tmp_path: Path) -> ScriptWriter:
    """Write an executable script into ``tmp_path`` and return its path."""

    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text)
        path.chmod(0o755)
        return path

    return write


@dataclass
class Transcript:
    """What a client saw: the messages (str or bytes) and how the connection closed."""

    messages: list[str | bytes]
    close_code: int | None
    close_reason: str


async def converse(
    url: str,
    send: Sequence[str | bytes] = (),
    *,
    read: int | None = None,
    within: float = 10,
    origin: str | None = None,
    close_after: bool = False,
) -> Transcript:
    """Connect to ``url``, send ``send``, then read until the server closes (or ``read`` messages).

    With ``read`` given (or ``close_after``), the client closes with 1000 once it has them.
    """
    import websockets
    from websockets.asyncio.client import connect

    async def talk() -> Transcript:
        messages: list[str | bytes] = []
        async with connect(
            url,
            max_size=None,
            compression=None,
            origin=origin,  # type: ignore[arg-type]
            open_timeout=timeout(10),
        ) as ws:
            try:
                for item in send:
                    await ws.send(item)
            except websockets.ConnectionClosed:
                pass  # the program ended first (it may exit at once): what it said still counts
            try:
                while read is None or len(messages) < read:
                    messages.append(await ws.recv())
            except websockets.ConnectionClosed:
                pass
            if read is not None or close_after:
                await ws.close()
            else:
                await ws.wait_closed()
            rcvd = ws.protocol.close_rcvd
            return Transcript(messages, rcvd.code if rcvd else None, rcvd.reason if rcvd else "")

    return await asyncio.wait_for(talk(), timeout(within))
