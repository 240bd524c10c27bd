"""The running totals behind the terminal dashboard, kept from the event stream.

``Tally`` subscribes to the ``EventBus`` and keeps what the dashboard shows: server-wide totals,
the live connections with their own counters, and bounded histories of stderr lines and notable
events. Each event costs O(1) work (message sizes aside) and memory stays bounded however long
wsdev runs, so the dashboard can read a ``Tally`` at any moment without replaying anything.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from urllib.parse import urlsplit

from wsdev.events import (
    Connected,
    ConnectionError_,
    ConnectionInfo,
    Disconnected,
    Draining,
    Event,
    HttpRequest,
    MessageIn,
    MessagesOut,
    OutputStalled,
    ProcessStarted,
    Rejected,
    Restarting,
    ServerError,
    ServerStarted,
    ServerStopping,
    SpawnFailed,
    StderrLine,
)

#: How many stderr lines and log entries are remembered; far more than any screen shows.
HISTORY = 500
#: Longer texts are cut when stored: no terminal shows more, and memory stays bounded.
MAX_TEXT = 1000
#: Longer stderr lines are cut when stored, saying by how much; the panes wrap what is kept.
MAX_STDERR = 4000
#: Length of the last-message preview shown per connection.
PREVIEW = 80
#: Messages (or reads of stdout) and stderr lines kept per connection for its own view
#: (behaviour E3); each entry costs O(1) to keep, so a flood costs the same as a trickle.
RECENT = 40
#: At most this many of one read's messages are kept, the last ones.
RECENT_BATCH = 16
#: A read of at most this many bytes is kept as it came; a larger one keeps only each message's
#: first ``RECENT_TEXT`` characters and its size. So one connection holds at most ~50 kB.
KEEP_WHOLE = 1024
RECENT_TEXT = 300


class Kind(Enum):
    """What a log entry is about; the dashboard picks its colour and mark from this."""

    SERVER = "server"
    CONNECT = "connect"
    DISCONNECT = "disconnect"
    FAILED = "failed"  # a connection whose program did not end cleanly
    RESTART = "restart"
    REJECT = "reject"
    STALL = "stall"
    ERROR = "error"


@dataclass(slots=True)
class LogEntry:
    wall: float
    kind: Kind
    text: str
    seq: int | None = None


@dataclass(slots=True)
class StderrEntry:
    wall: float
    seq: int
    line: str
    #: Whose connection wrote it: the console's name, else the address (behaviour E4).
    client: str = ""


@dataclass(slots=True)
class Traffic:
    """What went one way at one moment: a client's message, or the messages of one stdout read.

    ``messages`` are their starts (``bytes`` from the program, ``str`` or ``bytes`` from the
    client); ``sizes`` their full sizes in bytes when a start was cut, else None.
    """

    at: float  # the tally's clock
    direction: str  # "in" (client to program) or "out"
    messages: Sequence[str | bytes]
    sizes: Sequence[int] | None
    binary: bool


@dataclass(slots=True)
class ConnectionStats:
    """One live connection as the dashboard shows it; times come from the tally's clock."""

    info: ConnectionInfo
    connected_at: float
    last_activity: float
    pid: int | None = None
    messages_in: int = 0
    messages_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    stderr_lines: int = 0
    #: ``"in"`` or ``"out"``: which way the latest traffic went.
    last_direction: str = ""
    #: Bytes written without a newline for over a second (behaviour B9); 0 once output flows again.
    stalled_bytes: int = 0
    #: The latest messages both ways and stderr lines, oldest first, for the connection's view.
    recent: deque[Traffic] = field(default_factory=lambda: deque(maxlen=RECENT))
    stderr: deque[StderrEntry] = field(default_factory=lambda: deque(maxlen=RECENT))
    #: How it ended (``closed 1000 · exit 0 · 3.2s``) once it has; a view may outlive it.
    ended: str = ""

    @property
    def last_preview(self) -> str:
        """The start of the latest message, on one line."""
        if not self.recent or not self.recent[-1].messages:
            return ""
        last = self.recent[-1]
        size = last.sizes[-1] if last.sizes is not None else len(last.messages[-1])
        return _preview(last.messages[-1], last.binary, size)


@dataclass(slots=True)
class Totals:
    connections: int = 0  # ever accepted
    messages_in: int = 0
    messages_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    stderr_lines: int = 0
    restarts: int = 0
    rejected: int = 0
    errors: int = 0
    http_requests: int = 0


def clip(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def human_bytes(n: int) -> str:
    """``512 B``, ``1.2 kB``, ``34 MB``: short enough for a table cell."""
    if n < 1000:
        return f"{n} B"
    value = float(n)
    for unit in ("kB", "MB", "GB", "TB"):
        value /= 1000
        if value < 999.5:
            return f"{value:.1f} {unit}" if value < 9.95 else f"{value:.0f} {unit}"
    return f"{value:.0f} PB"


def version_label(generation: int, newest: int) -> str:
    """Which version of the program a connection runs (D2): ``v1`` before any save, and ``old``
    once a save has given new connections a newer one (under --reload=new it keeps running)."""
    label = f"v{generation + 1}"
    return f"{label} old" if generation < newest else label


def human_duration(seconds: float) -> str:
    """``0.4s``, ``12s``, ``3m05s``, ``2h07m``, ``3d04h``."""
    if seconds < 0:
        seconds = 0.0
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def _preview(data: str | bytes, binary: bool, size: int) -> str:
    if isinstance(data, bytes) and binary:
        head = data[: PREVIEW // 3].hex(" ")
        return f"[{size} bytes] {head}"
    if isinstance(data, bytes):
        data = data[:PREVIEW].decode("utf-8", "replace")
    return data[:PREVIEW].replace("\r", "").replace("\n", "⏎")


def _abnormal(code: int | None) -> bool:
    """Close codes that mean something went wrong (1011: the program failed, behaviour B2).

    1000 and 1001 are ordinary ends, 1005 a close without a code, 1012 a restart on edit, and
    3000 and up are the application's own.
    """
    return code is not None and 1002 <= code < 3000 and code not in (1005, 1012)


def _path_of(url: str) -> str:
    """``/chat?x=1`` of ``http://127.0.0.1:8080/chat?x=1``: the host is the same for all."""
    parts = urlsplit(url)
    if not parts.scheme:
        return url
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _batch(now: float, event: MessagesOut) -> Traffic:
    """The part of one stdout read a connection's view keeps: O(1) however large the read."""
    payloads = event.payloads
    if len(payloads) > RECENT_BATCH:
        payloads = payloads[-RECENT_BATCH:]
    if event.nbytes <= KEEP_WHOLE:  # no copy: the bridge made these for this event alone
        return Traffic(now, "out", payloads, None, event.binary)
    heads = [payload[:RECENT_TEXT] for payload in payloads]
    return Traffic(now, "out", heads, [len(payload) for payload in payloads], event.binary)


def _utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


class Tally:
    """Everything the dashboard shows, updated by ``handle`` (an ``EventBus`` subscriber).

    Read the attributes directly; they are only changed by ``handle``, which runs on the event
    loop, so a render on the same loop always sees a consistent state.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        history: int = HISTORY,
    ) -> None:
        self._clock = clock
        self._wall_clock = wall_clock
        self.started_at: float = clock()
        self.server: ServerStarted | None = None
        self.stopping: str | None = None
        self.totals = Totals()
        self._live: dict[str, ConnectionStats] = {}
        self.stderr: deque[StderrEntry] = deque(maxlen=history)
        self.log: deque[LogEntry] = deque(maxlen=history)
        #: Bumped by every event, so a view can tell whether anything changed since it drew.
        self.changes = 0
        #: The newest restart generation: what a new connection runs (D2).
        self.generation = 0

    @property
    def live(self) -> Mapping[str, ConnectionStats]:
        """Live connections by id, oldest first."""
        return self._live

    def uptime(self, now: float) -> float:
        return now - self.started_at

    def wall(self, at: float) -> float:
        """The wall-clock time of ``at``, a time of the tally's own clock."""
        return self._wall_clock() - (self._clock() - at)

    def handle(self, event: Event) -> None:
        self.changes += 1
        now = self._clock()
        totals = self.totals
        if isinstance(event, MessagesOut):
            totals.messages_out += len(event.payloads)
            totals.bytes_out += event.nbytes
            if stats := self._live.get(event.conn.id):
                stats.messages_out += len(event.payloads)
                stats.bytes_out += event.nbytes
                stats.last_activity = now
                stats.last_direction = "out"
                stats.stalled_bytes = 0
                stats.recent.append(_batch(now, event))
        elif isinstance(event, MessageIn):
            size = _utf8_len(event.data) if isinstance(event.data, str) else len(event.data)
            totals.messages_in += 1
            totals.bytes_in += size
            if stats := self._live.get(event.conn.id):
                stats.messages_in += 1
                stats.bytes_in += size
                stats.last_activity = now
                stats.last_direction = "in"
                data = event.data
                binary = isinstance(data, bytes)
                if len(data) <= RECENT_TEXT:
                    stats.recent.append(Traffic(now, "in", (data,), None, binary))
                else:
                    stats.recent.append(Traffic(now, "in", (data[:RECENT_TEXT],), (size,), binary))
        elif isinstance(event, StderrLine):
            totals.stderr_lines += 1
            line = event.line.replace("\r", "").replace("\n", " ")
            if len(line) > MAX_STDERR:
                line = f"{line[:MAX_STDERR]}… ({len(line) - MAX_STDERR} more characters)"
            entry = StderrEntry(self._wall_clock(), event.conn.seq, line, event.conn.client)
            self.stderr.append(entry)
            if stats := self._live.get(event.conn.id):
                stats.stderr_lines += 1
                stats.last_activity = now
                stats.stderr.append(entry)
        elif isinstance(event, Connected):
            self._connected(event.conn, now)
        elif isinstance(event, ProcessStarted):
            if stats := self._live.get(event.conn.id):
                stats.pid = event.pid
        elif isinstance(event, Disconnected):
            self._disconnected(event)
        elif isinstance(event, OutputStalled):
            self._stalled(event)
        elif isinstance(event, HttpRequest):
            totals.http_requests += 1
        else:
            self._notable(event)

    def _connected(self, conn: ConnectionInfo, now: float) -> None:
        self.totals.connections += 1
        self._live[conn.id] = ConnectionStats(
            conn, connected_at=now, last_activity=now, pid=conn.pid
        )
        where = conn.path + (f"?{conn.query}" if conn.query else "")
        via = " (console)" if conn.console else ""
        who = f"{conn.client_name} ({conn.remote})" if conn.client_name else conn.remote
        self.note(Kind.CONNECT, f"connected from {who} {where}{via}", conn.seq)

    def _disconnected(self, event: Disconnected) -> None:
        stats = self._live.pop(event.conn.id, None)
        closed = f"closed {event.code}" if event.code is not None else "dropped"
        ended = event.exit.describe() if event.exit is not None else ""
        parts = [closed, ended, human_duration(event.duration)]
        # The reason comes last: it is often long, and B2's reason repeats the exit status.
        if event.reason and event.reason != ended:
            parts.append(repr(event.reason))
        kind = Kind.FAILED if _abnormal(event.code) else Kind.DISCONNECT
        text = " · ".join(part for part in parts if part)
        if stats is not None:
            stats.ended = text
        self.note(kind, text, event.conn.seq)

    def _stalled(self, event: OutputStalled) -> None:
        stats = self._live.get(event.conn.id)
        if stats is None or stats.stalled_bytes:
            return  # already said so for this stall
        stats.stalled_bytes = max(1, event.pending_bytes)
        # Most often the program's stdout is block-buffered (behaviour B9): say so, briefly.
        text = f"no newline after {event.pending_bytes} bytes for 1s+ (flush stdout?)"
        self.note(Kind.STALL, text, event.conn.seq)

    def _notable(self, event: Event) -> None:
        """Events that only add to the log: server life, restarts, rejections, errors."""
        if isinstance(event, ServerStarted):
            self.server = event
            self.started_at = self._clock()
            self.note(Kind.SERVER, "serving " + " ".join(event.urls or event.console_urls))
        elif isinstance(event, Restarting):
            self.totals.restarts += 1
            self.generation = event.generation
            shown = ", ".join(event.changed[:3])
            if len(event.changed) > 3:
                shown += f" +{len(event.changed) - 3} more"
            some = f"{event.live} connection{'s' if event.live != 1 else ''}"
            closing = f", {some} kept open" if event.kept else f", closing {some}"
            self.note(Kind.RESTART, f"{shown} changed{closing if event.live else ''}")
        elif isinstance(event, Rejected):
            self.totals.rejected += 1
            origin = f" origin {event.origin}" if event.origin else ""
            where = f"{_path_of(event.url)} from {event.remote}{origin}"
            self.note(Kind.REJECT, f"{event.status} {where}: {event.reason}")
        elif isinstance(event, SpawnFailed):
            self.totals.errors += 1
            self.note(Kind.ERROR, f"could not start: {event.message}", event.conn.seq)
        elif isinstance(event, ConnectionError_):
            self.totals.errors += 1
            self.note(Kind.ERROR, event.message, event.conn.seq)
        elif isinstance(event, ServerError):
            self.totals.errors += 1
            self.note(Kind.ERROR, event.message)
        elif isinstance(event, ServerStopping):
            self.stopping = event.reason or "stopping"
            self.note(Kind.SERVER, f"stopping: {self.stopping}")
        elif isinstance(event, Draining):  # behaviour B12: the drain's countdown
            self.note(Kind.SERVER, f"draining: {event.live} left, 1001 in {event.seconds_left} s")

    def note(self, kind: Kind, text: str, seq: int | None = None) -> None:
        """Add a line to the event log (also for facts that come from outside the bus)."""
        self.log.append(LogEntry(self._wall_clock(), kind, clip(text), seq))
