"""The dashboard's screen as a pure function: ``render`` lays a ``Tally`` out as rich renderables
(header, connections table, stderr and event panes) for a given time and screen size.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from wsdev import __version__
from wsdev.clientgroups import table_rows
from wsdev.config import Config
from wsdev.conntable import connections, seq_style
from wsdev.connview import connection_view
from wsdev.entries import clock, stderr_entry
from wsdev.navigation import View
from wsdev.roompane import link_of, room_panel
from wsdev.tail import Tail
from wsdev.tally import Kind, LogEntry, StderrEntry, Tally, human_bytes, human_duration

_T = TypeVar("_T")

#: From this width on, stderr and the event log sit side by side.
SIDE_BY_SIDE = 110

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


def render(
    tally: Tally,
    config: Config,
    now: float,
    width: int = 100,
    height: int = 30,
    view: View | None = None,
) -> RenderableType:
    """The whole dashboard for a ``width`` x ``height`` screen at monotonic time ``now``.

    Every part fits: the header and the table's cells are single lines cut with an ellipsis,
    the panes get fixed heights and show their newest entries, wrapped to the pane (behaviour
    E1). ``view`` is where the keys have taken the user (behaviour E3): a selection in the
    table, or one connection's own view; ``render`` keeps its scroll position current.
    """
    width = max(width, 20)
    height = max(height, 1)
    parts: list[RenderableType] = list(_header(tally, config, now, width)[:height])
    rest = height - len(parts)
    if rest < 3:
        return Group(*parts)
    if view is not None and view.opened is not None:
        parts += connection_view(view.opened, tally, now, width, rest)
        return Group(*parts)
    link = link_of(tally, config)
    if link is not None and (not tally.live) != (view is not None and view.room_toggled):
        # Under --lan, the room's QR code until someone joins, and whenever q asks (B14).
        room = room_panel(link, width, rest)
        if room is not None:
            parts.append(room)
            return Group(*parts)

    # Borders, column titles, rows (a client's own row among them, behaviour E4).
    wanted = 3 + len(table_rows(tally.live.values()))
    connections_height = rest if rest < 10 else min(wanted, max(4, rest // 2))
    parts.append(connections(tally, now, width, connections_height, view))
    bottom = rest - connections_height
    if bottom < 3:
        return Group(*parts)

    if width >= SIDE_BY_SIDE:
        grid = Table.grid(expand=True)
        grid.add_column(ratio=1)
        grid.add_column(ratio=1)
        grid.add_row(
            _stderr_pane(tally, bottom, view, wide=True), _events_pane(tally, bottom, wide=True)
        )
        parts.append(grid)
    elif bottom >= 6:
        stderr_height = bottom - bottom // 2
        parts.append(_stderr_pane(tally, stderr_height, view, wide=width >= 60))
        parts.append(_events_pane(tally, bottom - stderr_height, wide=width >= 60))
    elif tally.stderr:
        parts.append(_stderr_pane(tally, bottom, view, wide=False))
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
        if config.lan and config.console:
            urls.append(Text("q: the room's QR code", style="dim"))
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
    if watched:  # what a save does to open connections (D2)
        keeps = config.reload_mode == "new"
        about.append(Text(f"--reload={config.reload_mode}", style="yellow" if keeps else "dim"))
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


# ---------------------------------------------------------------- stderr and events


def _pane(title: str, body: RenderableType, height: int) -> Panel:
    return Panel(
        body,
        title=title,
        title_align="left",
        height=height,
        border_style="blue",
        padding=(0, 1),
    )


def _stderr_pane(tally: Tally, height: int, view: View | None, *, wide: bool) -> Panel:
    # Wrapped, never cut (behaviour E1): a traceback's file, line and error are what matter.
    lines: Sequence[StderrEntry] = tally.stderr
    title, empty = "stderr", "nothing on stderr yet"
    selected = view.selected if view is not None else None
    if selected is not None:
        # With a connection selected, the lines of its client only (behaviour E4).
        client = selected.client
        lines = [entry for entry in lines if entry.client == client]
        title, empty = f"stderr · {client}", f"nothing on stderr from {client} yet"
    entries = [stderr_entry(entry, wide=wide) for entry in _newest(lines, height - 2)]
    return _pane(title, Tail(entries, height - 2, empty=empty), height)


def _events_pane(tally: Tally, height: int, *, wide: bool) -> Panel:
    lines = [_event_line(entry, wide) for entry in _newest(tally.log, height - 2)]
    empty = Text("no events yet", style="dim", no_wrap=True, overflow="ellipsis")
    return _pane("events", Group(*lines) if lines else empty, height)


def _event_line(entry: LogEntry, wide: bool) -> Text:
    mark, style = _MARKS[entry.kind]
    text = Text(no_wrap=True, overflow="ellipsis")
    if wide:
        text.append(clock(entry.wall) + " ", style="dim")
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
