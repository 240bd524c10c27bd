"""``--record DIR``: every connection's transcript, written off the data path (behaviour H1).

The recorder is one more subscriber of the event bus. Its callback only appends the event and
its time offset to a list; once per turn of the event loop that list goes to a writer thread,
which formats the lines (``transcript``) and writes them, one file per connection. A connection
therefore never waits on formatting or on the disk: at worst the thread falls behind.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

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
from wsdev.transcript import Header, Step, dump_line, received_lines

logger = logging.getLogger(__name__)

# (what, connection, offset, details): what the bus callback keeps of one event.
Item = tuple[str, ConnectionInfo, float, Any]


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
    """Writes one transcript per connection into ``folder``; ``close`` finishes them all."""

    def __init__(self, bus: EventBus, config: Config, folder: Path) -> None:
        self._config = config
        self._folder = folder
        self._loop = asyncio.get_running_loop()
        self._pending: list[Item] = []
        self._scheduled = False
        self._queue: queue.SimpleQueue[list[Item] | None] = queue.SimpleQueue()
        self._files: dict[str, IO[bytes]] = {}
        self.written: list[Path] = []
        self._thread = threading.Thread(target=self._write_loop, name="wsdev-recorder", daemon=True)
        self._thread.start()
        self._unsubscribe: Callable[[], None] = bus.subscribe(self.on_event)

    def on_event(self, event: Event) -> None:
        """The bus callback: keep the event, hand the batch over at the end of this loop turn."""
        if isinstance(event, MessagesOut):
            conn = event.conn
            batch = (event.payloads, event.binary, event.block)
            self._pending.append(("out", conn, time.monotonic() - conn.started, batch))
        elif isinstance(event, MessageIn):
            conn = event.conn
            self._pending.append(("in", conn, time.monotonic() - conn.started, event.data))
        elif isinstance(event, StderrLine):
            conn = event.conn
            self._pending.append(("err", conn, time.monotonic() - conn.started, event.line))
        elif isinstance(event, Connected):
            self._pending.append(("open", event.conn, 0.0, time.time()))
        elif isinstance(event, Disconnected):
            ending = (event.code, event.reason, event.by or "server", event.exit)
            self._pending.append(("end", event.conn, event.duration, ending))
        else:
            return
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._hand_over)

    def _hand_over(self) -> None:
        self._scheduled = False
        batch, self._pending = self._pending, []
        if batch:
            self._queue.put(batch)

    def close(self) -> None:
        """Stop recording; returns once every transcript is written and closed."""
        self._unsubscribe()
        self._hand_over()
        self._queue.put(None)
        self._thread.join()

    # ------------------------------------------------------------ the writer thread

    def _write_loop(self) -> None:
        while (batch := self._queue.get()) is not None:
            touched: set[str] = set()
            for what, conn, offset, details in batch:
                try:
                    self._write(what, conn, offset, details)
                    touched.add(conn.id)
                except (OSError, ValueError) as exc:  # a full disk; text it cannot encode
                    logger.error(
                        "cannot record connection #%d: %s",
                        conn.seq,
                        exc,
                        extra={"category": "server"},
                    )
                    self._drop(conn.id)
            for conn_id in touched:
                file = self._files.get(conn_id)
                if file is None:
                    continue
                if file.closed:
                    del self._files[conn_id]
                else:
                    file.flush()
        for file in self._files.values():
            file.close()
        self._files.clear()

    def _write(self, what: str, conn: ConnectionInfo, offset: float, details: Any) -> None:
        if what == "open":
            self._files[conn.id] = self._open(conn, details)
            return
        file = self._files.get(conn.id)
        if file is None:
            return  # its file could not be made: already said so
        file.write(event_lines(what, offset, details))
        if what == "end":
            file.close()

    def _open(self, conn: ConnectionInfo, started: float) -> IO[bytes]:
        name = transcript_name(conn, started)
        header = dump_line(header_for(conn, self._config, started).to_json()).encode()
        path = self._folder / name
        for attempt in range(2, 100):
            try:
                file = open(path, "xb")  # noqa: SIM115 - closed at the connection's end
                break
            except FileExistsError:
                path = self._folder / name.replace(".jsonl", f"-{attempt}.jsonl")
        else:
            raise OSError(f"too many transcripts named {name}")
        file.write(header)
        self.written.append(path)
        return file

    def _drop(self, conn_id: str) -> None:
        file = self._files.pop(conn_id, None)
        if file is not None:
            file.close()


def _relative(command: str) -> str:
    """A script's path under --dir, relative to the working folder when it is inside it."""
    try:
        relative = os.path.relpath(command)
    except ValueError:
        return command
    return command if relative.startswith("..") else relative
