"""``--record DIR``: every connection's transcript, written off the data path (behaviour H1)."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wsdev import __version__
from wsdev.config import Config
from wsdev.events import (
    Connected,
    ConnectionInfo,
    Disconnected,
    Event,
    EventBus,
    MessageIn,
    MessagesOut,
    StderrLine,
)
from wsdev.pipes import PipeWriter
from wsdev.recordwriter import FRAME
from wsdev.transcript import Header, Step, dump_line, received_lines

logger = logging.getLogger(__name__)

PIPE_SIZE = 1 << 20
# Past this much waiting for the writer process, connections wait for it (see _hand_over).
BACKLOG_LIMIT = 64 << 20


def transcript_name(conn: ConnectionInfo, started: float) -> str:
    """``2026-12-02T10-15-03_001_chat.jsonl``: sorts by time, says the path."""
    stamp = time.strftime("%Y-%m-%dT%H-%M-%S", time.localtime(started))
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", conn.path.strip("/")).strip("-.") or "root"
    return f"{stamp}_{conn.seq:03d}_{slug[:60]}.jsonl"


def header_for(conn: ConnectionInfo, config: Config, started: float) -> Header:
    command = config.command_display
    extra: dict[str, str] = {}
    if config.script_dir is not None:
        # --dir: the script and its folder, so a replay maps the path as the server did.
        command = _relative(conn.command)
        extra["dir"] = _relative(str(config.script_dir))
    return Header(
        command=command,
        path=conn.path,
        query=conn.query,
        binary=config.binary,
        headers=conn.headers,
        version=__version__,
        started=time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        extra=extra,
    )


def event_lines(what: str, offset: float, details: Any) -> bytes:
    """The transcript lines of one recorded item (but ``open``, which is the header)."""
    if what == "out":
        payloads, binary, block = details
        return received_lines(offset, payloads, binary, block)
    if what == "in":
        return dump_line(Step("sent", offset, details).to_json()).encode()
    if what == "err":
        return dump_line(Step("stderr", offset, details).to_json()).encode()
    code, reason, by, status = details
    close = {"t": round(offset, 6), "close": code, "reason": reason, "by": by}
    lines = dump_line(close)
    if status is not None:
        exit_line: dict[str, Any] = {"t": round(offset, 6), "exit": status.code}
        if status.signal is not None:
            exit_line["signal"] = status.describe().removeprefix("signal ")
        lines += dump_line(exit_line)
    return lines.encode()


class Recorder:
    """Writes one transcript per connection into ``folder``; ``close`` finishes them all.

    The recorder is one more subscriber of the event bus. Its callback turns each event into a
    frame of bytes wsdev already has (a read of stdout is one frame, as read) and once per turn
    of the event loop the turn's frames go to the writer process (``recordwriter``) in one
    write, which never blocks: what the pipe cannot take waits in a backlog and is written as the
    process makes room. Formatting and the disk are that process's work, on another core, so a
    connection never waits on them (behaviour H1).
    """

    def __init__(self, bus: EventBus, config: Config, folder: Path) -> None:
        self._config = config
        self._loop = asyncio.get_running_loop()
        self._frames: list[bytes] = []  # this turn's
        self._scheduled = False
        self._reports = bytearray()
        self.written: list[Path] = []
        frames_read, frames_write = os.pipe()
        with contextlib.suppress(OSError, AttributeError):  # a larger pipe: fewer turns wait
            fcntl.fcntl(frames_write, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        try:
            self._process = _start_writer(folder, frames_read)
        finally:
            os.close(frames_read)
        # What the pipe cannot take at once waits in the writer's buffer; past BACKLOG_LIMIT
        # (the disk far slower than the programs' output) it is written out, blocking:
        # recording everything is the point, so from there the connections wait for it.
        self._pipe = PipeWriter(self._loop, frames_write, _FramesPipe(self), high=BACKLOG_LIMIT)
        assert self._process.stdout is not None
        self._reports_fd = self._process.stdout.fileno()
        os.set_blocking(self._reports_fd, False)
        self._loop.add_reader(self._reports_fd, self._read_reports)
        self._unsubscribe: Callable[[], None] = bus.subscribe(self.on_event)

    @property
    def writer_pid(self) -> int:
        """The writer process (``recordwriter``)."""
        return self._process.pid

    def on_event(self, event: Event) -> None:
        """The bus callback: the event as a frame, handed over at the end of this loop turn."""
        if isinstance(event, MessagesOut):
            conn = event.conn
            t = time.monotonic() - conn.started
            if event.binary:
                for payload in event.payloads:
                    self._frame(b"B", conn.seq, t, payload)
            else:
                block = event.block
                if block is None:
                    block = b"".join([payload + b"\n" for payload in event.payloads])
                self._frame(b"T", conn.seq, t, block)
        elif isinstance(event, MessageIn):
            conn = event.conn
            t = time.monotonic() - conn.started
            data = event.data
            if isinstance(data, str):
                self._frame(b"S", conn.seq, t, data.encode("utf-8", "replace"))
            else:
                self._frame(b"s", conn.seq, t, data)
        elif isinstance(event, StderrLine):
            conn = event.conn
            line = event.line.encode("utf-8", "replace")
            self._frame(b"E", conn.seq, time.monotonic() - conn.started, line)
        elif isinstance(event, Connected):
            conn = event.conn
            started = time.time()
            name = transcript_name(conn, started).encode()
            header = dump_line(header_for(conn, self._config, started).to_json()).encode()
            self._frame(b"O", conn.seq, 0.0, name + b"\0" + header)
        elif isinstance(event, Disconnected):
            ending = (event.code, event.reason, event.by or "server", event.exit)
            lines = event_lines("end", event.duration, ending)
            self._frame(b"X", event.conn.seq, event.duration, lines)

    def _frame(self, kind: bytes, number: int, t: float, payload: bytes) -> None:
        self._frames.append(FRAME.pack(kind, number, t, len(payload)))
        self._frames.append(payload)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._hand_over)

    def _hand_over(self) -> None:
        self._scheduled = False
        if self._frames:
            self._pipe.write(b"".join(self._frames))
            self._frames.clear()

    def wait_for_the_writer(self) -> None:
        """Past the backlog's limit: the connections wait while the pipe takes it all."""
        self._pipe.flush()

    def _read_reports(self) -> None:
        try:
            chunk = os.read(self._reports_fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._loop.remove_reader(self._reports_fd)
        self._reports += chunk
        *lines, rest = self._reports.split(b"\n")
        self._reports = bytearray(rest)
        for line in lines:
            self._report(line)

    def _report(self, line: bytes | bytearray) -> None:
        try:
            report = json.loads(line)
        except ValueError:
            return
        if "opened" in report:
            self.written.append(Path(report["opened"]))
        elif "failed" in report:
            logger.error(
                "cannot record connection #%d: %s",
                report["failed"],
                report.get("error", "?"),
                extra={"category": "server"},
            )

    def close(self) -> None:
        """Stop recording; returns once every transcript is written and closed."""
        self._unsubscribe()
        self._hand_over()
        self._pipe.flush()
        self._pipe.abort()  # nothing is left in it: the writer process reads to the end
        with contextlib.suppress(OSError):
            self._loop.remove_reader(self._reports_fd)
        process = self._process
        assert process.stdout is not None
        os.set_blocking(self._reports_fd, True)
        self._reports += process.stdout.read()
        process.stdout.close()
        for line in self._reports.split(b"\n"):
            self._report(line)
        self._reports.clear()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class _FramesPipe(asyncio.Protocol):
    """The frames pipe's flow: a full backlog waits for the writer, a broken pipe is said."""

    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder

    def pause_writing(self) -> None:
        self._recorder.wait_for_the_writer()

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:  # the writer process has gone
            logger.error("recording stopped: %s", exc, extra={"category": "server"})


def _start_writer(folder: Path, frames: int) -> subprocess.Popen[bytes]:
    """The writer process, importing this very wsdev (installed or not)."""
    env = dict(os.environ)
    source = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (source, env.get("PYTHONPATH")) if p)
    return subprocess.Popen(
        [sys.executable, "-m", "wsdev.recordwriter", str(folder)],
        stdin=frames,
        stdout=subprocess.PIPE,
        env=env,
        # Its own process group: a Ctrl+C at the terminal stops wsdev, which then lets the
        # writer finish every transcript rather than lose their last lines.
        start_new_session=True,
    )


def _relative(command: str) -> str:
    """A script's path under --dir, relative to the working folder when it is inside it."""
    try:
        relative = os.path.relpath(command)
    except ValueError:
        return command
    return command if relative.startswith("..") else relative
