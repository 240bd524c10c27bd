"""The console's sessions as transcripts: download one, or save it as a test (behaviour H1, C8).

Every console session is kept in memory in the transcript format (the recorder's own lines), so
the console can download exactly what ``--record`` would have written, and "save as test" can
write it into the project's ``tests/`` (or another folder inside the project) for ``wsdev test``.
Messages are only taken while a console session is open: with none, plain connections make no
message events on its account.

Routes (under ``/_wsdev/``): ``GET transcript/ID`` downloads; ``POST transcript/ID/save`` with a
JSON body ``{"folder": "tests", "name": "chat"}`` saves and answers ``{"path": …}``. Saving
writes a file, so it answers same-origin JSON requests only (a form on another site cannot send
one without the browser's preflight, which wsdev never grants).
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

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
from wsdev.recorder import event_lines, header_for
from wsdev.transcript import dump_line

# A console session is a person typing: past this much, the rest is not kept (the transcript
# says it was cut), so a flood shown in the console cannot grow wsdev's memory without end.
MAX_BYTES = 4 * 1024 * 1024
# Ended sessions kept for a later download.
KEEP_ENDED = 20
DEFAULT_FOLDER = "tests"


class _Kept:
    __slots__ = ("chunks", "cut", "size")

    def __init__(self, header: bytes) -> None:
        self.chunks = [header]
        self.size = len(header)
        self.cut = False

    def add(self, data: bytes) -> None:
        if self.cut:
            return
        if self.size + len(data) > MAX_BYTES:
            self.cut = True
            return
        self.chunks.append(data)
        self.size += len(data)

    def text(self) -> bytes:
        return b"".join(self.chunks)


class ConsoleTranscripts:
    """The transcripts of the console's sessions, live and recently ended."""

    def __init__(self, bus: EventBus, config: Config, project: Path | None = None) -> None:
        self._bus = bus
        self._config = config
        self.project = (project or Path.cwd()).resolve()
        self._kept: OrderedDict[str, _Kept] = OrderedDict()
        self._live: set[str] = set()
        self._messages_off: Callable[[], None] | None = None
        bus.subscribe(self._on_event, messages=False)

    def _on_event(self, event: Event) -> None:
        if isinstance(event, Connected):
            conn = event.conn
            if not conn.console:
                return
            header = header_for(conn, self._config, time.time())
            self._kept[conn.id] = _Kept(dump_line(header.to_json()).encode())
            self._live.add(conn.id)
            if self._messages_off is None:
                self._messages_off = self._bus.subscribe(self._on_message)
        elif isinstance(event, StderrLine):
            self._add(event.conn, "err", event.line)
        elif isinstance(event, Disconnected):
            conn = event.conn
            if conn.id not in self._live:
                return
            by = event.by or "server"
            self._add(conn, "end", (event.code, event.reason, by, event.exit), event.duration)
            self._live.discard(conn.id)
            if not self._live and self._messages_off is not None:
                self._messages_off()
                self._messages_off = None
            while len(self._kept) > len(self._live) + KEEP_ENDED:
                oldest = next(k for k in self._kept if k not in self._live)
                del self._kept[oldest]

    def _on_message(self, event: Event) -> None:
        if isinstance(event, MessagesOut):
            self._add(event.conn, "out", (event.payloads, event.binary, event.block))
        elif isinstance(event, MessageIn):
            self._add(event.conn, "in", event.data)

    def _add(
        self, conn: ConnectionInfo, what: str, details: object, offset: float | None = None
    ) -> None:
        kept = self._kept.get(conn.id) if conn.console else None
        if kept is not None:
            t = time.monotonic() - conn.started if offset is None else offset
            kept.add(event_lines(what, t, details))

    def transcript(self, conn_id: str) -> bytes | None:
        kept = self._kept.get(conn_id)
        return kept.text() if kept is not None else None

    def save(self, conn_id: str, folder: str, name: str) -> Path:
        """Write the session's transcript as ``folder/name.jsonl`` inside the project."""
        kept = self._kept.get(conn_id)
        if kept is None:
            raise ValueError("no such console session (it may be too old)")
        if kept.cut:
            raise ValueError(f"the session is over {MAX_BYTES // 1024 // 1024} MiB: too long")
        target = (self.project / (folder or DEFAULT_FOLDER)).resolve()
        if target != self.project and self.project not in target.parents:
            raise ValueError(f"{folder}: the folder must be inside {self.project}")
        stem = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "session"
        target.mkdir(parents=True, exist_ok=True)
        path = target / f"{stem.removesuffix('.jsonl')}.jsonl"
        path.write_bytes(kept.text())
        return path


async def serve(
    request: web.Request, rest: str, transcripts: ConsoleTranscripts
) -> web.StreamResponse:
    """``transcript/ID`` (download) and ``transcript/ID/save`` (save as test)."""
    conn_id, _, action = rest.removeprefix("transcript/").partition("/")
    if action == "" and request.method in ("GET", "HEAD"):
        body = transcripts.transcript(conn_id)
        if body is None:
            raise web.HTTPNotFound(text="no such console session\n")
        return web.Response(
            body=body,
            content_type="application/x-ndjson",
            headers={"Content-Disposition": f'attachment; filename="session-{conn_id}.jsonl"'},
        )
    if action == "save" and request.method == "POST":
        if not _same_origin(request) or request.content_type != "application/json":
            raise web.HTTPForbidden(text="save as test: same-origin JSON requests only\n")
        try:
            body = await request.json()
            folder, name = str(body.get("folder", "")), str(body.get("name", ""))
            path = transcripts.save(conn_id, folder, name)
        except (ValueError, AttributeError, OSError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        shown = path.relative_to(transcripts.project)
        return web.json_response({"path": str(shown)})
    raise web.HTTPNotFound(text="404 page not found\n")


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser's cross-site request (curl, a script on this machine)
    return origin.partition("://")[2] == request.headers.get("Host", "")
