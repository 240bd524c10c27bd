"""The live terminal dashboard (SPEC E): a rich rendering of a ``Tally``, and its redraw loop.

``render`` is a pure function of a tally, the config, a time and a screen size, so it is tested
by rendering to a string. ``Dashboard`` subscribes a tally to the event bus and redraws the
screen at most a few times a second, only when an event arrived (or once a second, for the
clocks), so an idle wsdev costs next to nothing.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import re
import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from rich.cells import cell_len
from rich.console import Console, Group, JustifyMethod, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from wsdev import __version__
from wsdev.config import Config
from wsdev.events import Event, EventBus
from wsdev.tally import (
    ConnectionStats,
    Kind,
    LogEntry,
    StderrEntry,
    Tally,
    human_bytes,
    human_duration,
)

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

#: Redraw at most this often (seconds), however busy the connections are.
MIN_INTERVAL = 0.25
#: Redraw at least this often (seconds), so uptime and ages keep ticking.
MAX_INTERVAL = 1.0
#: From this width on, stderr and the event log sit side by side.
SIDE_BY_SIDE = 110

# One colour per connection, reused round-robin by ``seq``; red is kept for errors.
PALETTE = (
    "cyan",
    "magenta",
    "green",
    "yellow",
    "bright_blue",
    "bright_magenta",
    "bright_cyan",
    "bright_green",
    "orange3",
    "orchid",
)

_MARKS: dict[Kind, tuple[str, str]] = {
    Kind.SERVER: ("•", "blue"),
    Kind.CONNECT: ("+", "green"),
    Kind.DISCONNECT: ("-", ""),
    Kind.FAILED: ("-", "red"),
    Kind.RESTART: ("↻", "yellow"),
    Kind.REJECT: ("x", "red"),
    Kind.STALL: ("!", "yellow"),
    Kind.ERROR: ("!", "bold red"),
}

# Control characters other than ESC (colours are kept) and TAB would move the cursor about.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1a\x1c-\x1f\x7f]")


def seq_style(seq: int) -> str:
    return PALETTE[seq % len(PALETTE)]


def render(
    tally: Tally, config: Config, now: float, width: int = 100, height: int = 30
) -> RenderableType:
    """The whole dashboard for a ``width`` x ``height`` screen at monotonic time ``now``.

    Every part is cut to fit: the header and each pane line are single lines with an ellipsis,
    the panes get fixed heights and show their newest entries.
    """
    width = max(width, 20)
    height = max(height, 1)
    parts: list[RenderableType] = list(_header(tally, config, now, width)[:height])
    rest = height - len(parts)
    if rest < 3:
        return Group(*parts)

    wanted = 3 + len(tally.live) if tally.live else 3  # borders, column titles, rows
    connections_height = rest if rest < 10 else min(wanted, max(4, rest // 2))
    parts.append(_connections(tally, now, width, connections_height))
    bottom = rest - connections_height
    if bottom < 3:
        return Group(*parts)

    if width >= SIDE_BY_SIDE:
        grid = Table.grid(expand=True)
        grid.add_column(ratio=1)
        grid.add_column(ratio=1)
        grid.add_row(_stderr_pane(tally, bottom, wide=True), _events_pane(tally, bottom, wide=True))
        parts.append(grid)
    elif bottom >= 6:
        stderr_height = bottom - bottom // 2
        parts.append(_stderr_pane(tally, stderr_height, wide=width >= 60))
        parts.append(_events_pane(tally, bottom - stderr_height, wide=width >= 60))
    elif tally.stderr:
        parts.append(_stderr_pane(tally, bottom, wide=False))
    else:
        parts.append(_events_pane(tally, bottom, wide=False))
    return Group(*parts)


# ---------------------------------------------------------------- header


def _header(tally: Tally, config: Config, now: float, width: int) -> list[Text]:
    started = tally.server
    if tally.stopping is not None:
        status = Text(f"stopping: {tally.stopping}", style="bold yellow")
    elif started is None:
        status = Text("starting…", style="yellow")
    else:
        status = Text("serving", style="bold green")
    title = Text.assemble((f" wsdev {__version__} ", "bold"), "· ", status)
    uptime = Text(f"up {human_duration(tally.uptime(now))} ")
    bar = title.copy()
    gap = width - title.cell_len - uptime.cell_len
    if gap >= 1:
        bar.append(" " * gap)
        bar.append_text(uptime)
    bar.stylize("on grey23")
    lines = [_one_line(bar)]

    urls: list[Text] = []
    if started is not None:
        urls += [Text(url, style="bold cyan") for url in started.urls]
        urls += [Text.assemble(("console ", "dim"), (url, "cyan")) for url in started.console_urls]
    lines += _pack(urls, width)

    command = started.command if started is not None else _command(config)
    binary = started.binary if started is not None else config.binary
    watched: Sequence[str] = started.watched if started is not None else ()
    about = [
        Text.assemble(("run ", "dim"), (command or "-", "bold")),
        Text("binary" if binary else "text", style="magenta" if binary else ""),
        Text.assemble(("reload ", "dim"), ", ".join(watched))
        if watched
        else Text("reload off", style="dim"),
    ]
    lines += _pack(about, width)

    totals = tally.totals
    counts = [
        _count("live", len(tally.live), "bold"),
        _count("total", totals.connections),
        _count("in", f"{totals.messages_in} · {human_bytes(totals.bytes_in)}"),
        _count("out", f"{totals.messages_out} · {human_bytes(totals.bytes_out)}"),
    ]
    if totals.stderr_lines:
        counts.append(_count("stderr", totals.stderr_lines))
    if totals.restarts:
        counts.append(_count("restarts", totals.restarts, "yellow"))
    if totals.rejected:
        counts.append(_count("rejected", totals.rejected, "red"))
    if totals.errors:
        counts.append(_count("errors", totals.errors, "bold red"))
    if totals.http_requests:
        counts.append(_count("http", totals.http_requests))
    lines += _pack(counts, width)
    return lines


def _command(config: Config) -> str:
    if config.command_display:
        return config.command_display
    if config.command:
        return " ".join(config.command)
    return f"--dir={config.script_dir}" if config.script_dir is not None else ""


def _count(label: str, value: object, style: str = "") -> Text:
    return Text.assemble((f"{label} ", "dim"), (str(value), style))


def _pack(chunks: Iterable[Text], width: int, sep: str = "   ") -> list[Text]:
    """Lay ``chunks`` out left to right on as few lines as fit ``width``, one space of margin."""
    lines: list[Text] = []
    line: Text | None = None
    for chunk in chunks:
        if line is not None and line.cell_len + len(sep) + chunk.cell_len <= width - 1:
            line.append(sep)
            line.append_text(chunk)
            continue
        if line is not None:
            lines.append(_one_line(line))
        line = Text(" ")
        line.append_text(chunk)
    if line is not None:
        lines.append(_one_line(line))
    return lines


def _one_line(text: Text) -> Text:
    text.no_wrap = True
    text.overflow = "ellipsis"
    return text


# ---------------------------------------------------------------- connections


@dataclass(frozen=True)
class _Column:
    key: str
    title: str
    justify: JustifyMethod = "left"
    flexible: bool = False  # takes the spare width, cut with an ellipsis
    min_width: int = 0
    #: At most this share of the screen (paths can be long; the last message gets the rest).
    max_share: float = 1.0


_COLUMNS = (
    _Column("seq", "#", "right"),
    _Column("remote", "remote"),
    _Column("path", "path", min_width=10, max_share=0.3),
    _Column("pid", "pid", "right"),
    _Column("age", "age", "right"),
    _Column("in", "in", "right"),
    _Column("out", "out", "right"),
    _Column("last", "last", flexible=True, min_width=16),
)

# Narrow screens lose columns in this order, then the byte counts, until the table fits.
_DROP_ORDER = ("remote", "pid", "last", "age", "bytes", "path")


def _connections(tally: Tally, now: float, width: int, height: int) -> Panel:
    live = list(tally.live.values())
    title = f"connections · {len(live)} live" if live else "connections"
    if not live:
        url = tally.server.urls[0] if tally.server and tally.server.urls else ""
        hint = f"waiting for a client on {url}" if url else "waiting for clients"
        if tally.server and tally.server.console_urls:
            hint += f" (or open {tally.server.console_urls[0]})"
        body: RenderableType = Text(hint, style="dim", no_wrap=True, overflow="ellipsis")
        return Panel(body, title=title, title_align="left", height=height, border_style="blue")

    room = max(height - 3, 0)
    hidden = 0
    if len(live) > room:
        # Keep the newest connections in view and say how many older ones are hidden.
        hidden = len(live) - max(room - 1, 0)
        live = live[hidden:] if room > 1 else []
    rows = [_cells(stats, now) for stats in live]
    columns, short_bytes = _fit(rows, width - 2)
    widths = {column.key: _natural(column, rows, short_bytes, width) for column in columns}
    if short_bytes:
        for row in rows:
            row["in"], row["out"] = _count_only(row["in"]), _count_only(row["out"])

    table = Table(box=None, expand=True, padding=(0, 1), header_style="bold dim")
    for column in columns:
        table.add_column(
            column.title,
            justify=column.justify,
            no_wrap=True,
            overflow="ellipsis",
            ratio=1 if column.flexible else None,
            min_width=column.min_width or None,
            max_width=None if column.flexible else widths[column.key],
        )
    for stats, cells in zip(live, rows, strict=True):
        styles = {
            "seq": f"bold {seq_style(stats.info.seq)}",
            "last": "bold yellow" if stats.stalled_bytes else "",
        }
        table.add_row(
            *(Text(cells[column.key], style=styles.get(column.key, "")) for column in columns)
        )
    if hidden:
        # In the widest column that is surely there, so the "#" column stays narrow.
        label = Text(f"+{hidden} older", style="dim")
        where = "path" if any(column.key == "path" for column in columns) else "in"
        table.add_row(*(label if column.key == where else "" for column in columns))
    return Panel(
        table,
        title=title,
        title_align="left",
        height=height,
        border_style="blue",
        padding=(0, 0),
    )


def _cells(stats: ConnectionStats, now: float) -> dict[str, str]:
    info = stats.info
    path = info.path + (f"?{info.query}" if info.query else "")
    if info.console:
        path += " (console)"
    last = ""
    if stats.stalled_bytes:
        last = f"{stats.stalled_bytes} B without newline"
    elif stats.last_direction:
        last = f"{human_duration(now - stats.last_activity)} {stats.last_direction}"
        if stats.last_preview:
            last += f" {stats.last_preview}"
    return {
        "seq": f"#{info.seq}",
        "remote": info.remote,
        "path": path,
        "pid": str(stats.pid) if stats.pid is not None else "-",
        "age": human_duration(now - stats.connected_at),
        "in": f"{stats.messages_in} · {human_bytes(stats.bytes_in)}",
        "out": f"{stats.messages_out} · {human_bytes(stats.bytes_out)}",
        "last": last,
    }


def _fit(rows: list[dict[str, str]], width: int) -> tuple[list[_Column], bool]:
    """The columns that fit ``width`` and whether byte counts must be left out."""
    columns = list(_COLUMNS)
    short_bytes = False
    for drop in _DROP_ORDER:
        if sum(_natural(column, rows, short_bytes, width) + 2 for column in columns) <= width:
            break
        if drop == "bytes":
            short_bytes = True
        else:
            columns = [column for column in columns if column.key != drop]
    return columns, short_bytes


def _count_only(cell: str) -> str:
    """``12`` of ``12 · 1.2 kB``, for screens too narrow for byte counts."""
    return cell.split(" · ")[0]


def _natural(column: _Column, rows: list[dict[str, str]], short_bytes: bool, width: int) -> int:
    """The width ``column`` asks for: its widest cell, within its bounds."""
    if column.flexible:
        return column.min_width
    cells = [row[column.key] for row in rows]
    if short_bytes and column.key in ("in", "out"):
        cells = [_count_only(cell) for cell in cells]
    natural = max(cell_len(text) for text in [column.title, *cells])
    return max(column.min_width, min(natural, int(width * column.max_share)))


# ---------------------------------------------------------------- stderr and events


def _pane(title: str, lines: list[Text], height: int, empty: str) -> Panel:
    placeholder = Text(empty, style="dim", no_wrap=True, overflow="ellipsis")
    body: RenderableType = Group(*lines) if lines else placeholder
    return Panel(
        body,
        title=title,
        title_align="left",
        height=height,
        border_style="blue",
        padding=(0, 1),
    )


def _stderr_pane(tally: Tally, height: int, *, wide: bool) -> Panel:
    entries = _newest(tally.stderr, height - 2)
    lines = [_stderr_line(entry, wide) for entry in entries]
    return _pane("stderr", lines, height, "nothing on stderr yet")


def _stderr_line(entry: StderrEntry, wide: bool) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    if wide:
        text.append(_clock(entry.wall) + " ", style="dim")
    text.append(f"#{entry.seq} ", style=f"bold {seq_style(entry.seq)}")
    # Keep the program's own colours, drop anything else that could move the cursor.
    text.append_text(Text.from_ansi(_CONTROL.sub("", entry.line), no_wrap=True))
    return text


def _events_pane(tally: Tally, height: int, *, wide: bool) -> Panel:
    entries = _newest(tally.log, height - 2)
    lines = [_event_line(entry, wide) for entry in entries]
    return _pane("events", lines, height, "no events yet")


def _event_line(entry: LogEntry, wide: bool) -> Text:
    mark, style = _MARKS[entry.kind]
    text = Text(no_wrap=True, overflow="ellipsis")
    if wide:
        text.append(_clock(entry.wall) + " ", style="dim")
    text.append(f"{mark} ", style=style or "dim")
    if entry.seq is not None:
        text.append(f"#{entry.seq} ", style=f"bold {seq_style(entry.seq)}")
    text.append(entry.text, style=style if entry.kind not in (Kind.CONNECT, Kind.SERVER) else "")
    return text


def _newest(entries: Sequence[_T], count: int) -> list[_T]:
    if count <= 0:
        return []
    start = max(len(entries) - count, 0)
    return [entries[i] for i in range(start, len(entries))]


def _clock(wall: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(wall))


# ---------------------------------------------------------------- driver


class Dashboard:
    """Keeps the terminal showing ``render`` of a live tally until ``stop``.

    Call ``start`` from inside the running event loop, before the server publishes anything.
    """

    def __init__(
        self,
        bus: EventBus,
        config: Config,
        *,
        console: Console | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._bus = bus
        self._config = config
        self._console = console if console is not None else Console()
        self._clock = clock
        self.tally = Tally(clock=clock, wall_clock=wall_clock)
        self._dirty = asyncio.Event()
        self._live: Live | None = None
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._winch = False
        self._render_failed = False
        #: How many times the screen was drawn; for tests and the overhead bench.
        self.draws = 0
        #: Add this to the root logger while the dashboard is on: wsdev's own warnings and
        #: errors then appear in the event log instead of being written over the screen.
        self.log_handler: logging.Handler = _LogToTally(self)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.get_ident()

    def start(self) -> None:
        if self._live is not None:
            return
        self._unsubscribe = self._bus.subscribe(self._on_event)
        self._live = Live(
            console=self._console,
            screen=self._console.is_terminal,
            auto_refresh=False,
            # A stray write to stdout/stderr is overdrawn at the next redraw; redirecting it
            # would only scroll the screen.
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._live.start()
        # A process that ends without ``stop`` must not leave the terminal on the other screen.
        atexit.register(self.close)
        loop = self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        with contextlib.suppress(AttributeError, NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGWINCH, self._dirty.set)
            self._winch = True
        self._task = loop.create_task(self._run(), name="wsdev-dashboard")

    async def stop(self) -> None:
        """Stop redrawing, restore the terminal and print a one-line summary."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.close()

    def close(self) -> None:
        """Restore the terminal at once (safe to call twice, and from a signal path)."""
        task, self._task = self._task, None
        if task is not None:
            with contextlib.suppress(RuntimeError):  # at exit, the loop may be closed already
                task.cancel()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._winch:
            self._winch = False
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_signal_handler(signal.SIGWINCH)
        atexit.unregister(self.close)
        live, self._live = self._live, None
        if live is not None:
            live.stop()
            if live.console.is_terminal:
                live.console.print(self._summary(), highlight=False)

    def _summary(self) -> Text:
        totals = self.tally.totals
        return Text.assemble(
            ("wsdev ", "bold"),
            f"served {totals.connections} connection{'s' if totals.connections != 1 else ''}"
            f" in {human_duration(self.tally.uptime(self._clock()))}: "
            f"{totals.messages_in} messages in, {totals.messages_out} out",
            f", {totals.errors} errors" if totals.errors else "",
        )

    def _on_event(self, event: Event) -> None:
        self.tally.handle(event)
        self._dirty.set()

    def note_error(self, text: str) -> None:
        """Show ``text`` in the event log as an error; safe from any thread."""
        if threading.get_ident() == self._thread:
            self.tally.note(Kind.ERROR, text)
            self._dirty.set()
        elif self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.note_error, text)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self._live is not None:
            self._dirty.clear()
            self._draw()
            await asyncio.sleep(MIN_INTERVAL)
            if self._dirty.is_set():
                continue
            # A timer rather than asyncio.wait_for: on Python < 3.12 wait_for can swallow a
            # cancel that arrives as the event fires (cpython#86296), and stop() would hang.
            tick = loop.call_later(MAX_INTERVAL - MIN_INTERVAL, self._dirty.set)
            try:
                await self._dirty.wait()
            finally:
                tick.cancel()

    def _draw(self) -> None:
        if self._live is None:
            return
        width, height = self._console.size
        try:
            renderable = render(self.tally, self._config, self._clock(), width, height)
        except Exception as exc:  # a view must never take the server down
            if not self._render_failed:
                self._render_failed = True
                logger.debug("dashboard render failed", exc_info=True)
            renderable = Text(f"wsdev dashboard cannot draw: {exc!r}", style="red")
        self._live.update(renderable, refresh=True)
        self.draws += 1


class _LogToTally(logging.Handler):
    """Routes wsdev's own warnings and errors into the dashboard's event log."""

    def __init__(self, dashboard: Dashboard) -> None:
        super().__init__(logging.WARNING)
        self._dashboard = dashboard

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:
            self.handleError(record)
            return
        self._dashboard.note_error(text.splitlines()[0] if text else record.levelname.lower())
