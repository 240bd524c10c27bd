"""The dashboard's connections table: one row per live connection, its columns dropped and its
cells cut to fit any width; and the colour of each connection, which the other panes reuse.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.cells import cell_len
from rich.console import JustifyMethod, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from wsdev.clientgroups import ClientHeader, table_rows
from wsdev.navigation import View
from wsdev.tally import ConnectionStats, Tally, human_bytes, human_duration, version_label

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


def seq_style(seq: int) -> str:
    return PALETTE[seq % len(PALETTE)]


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
    _Column("version", "v"),  # only after a save (D2)
    _Column("remote", "remote"),
    _Column("path", "path", min_width=10, max_share=0.3),
    _Column("pid", "pid", "right"),
    _Column("age", "age", "right"),
    _Column("in", "in", "right"),
    _Column("out", "out", "right"),
    _Column("last", "last", flexible=True, min_width=16),
)

# Narrow screens lose columns in this order, then the byte counts, until the table fits.
_DROP_ORDER = ("remote", "pid", "last", "age", "bytes", "version", "path")


def connections(
    tally: Tally, now: float, width: int, height: int, view: View | None = None
) -> Panel:
    """The table in a panel of ``height`` rows; it scrolls to keep ``view``'s selection in
    sight (behaviour E3) and otherwise shows the newest connections."""
    live = list(tally.live.values())
    title = f"connections · {len(live)} live" if live else "connections"
    if not live:
        url = tally.server.urls[0] if tally.server and tally.server.urls else ""
        hint = f"waiting for a client on {url}" if url else "waiting for clients"
        if tally.server and tally.server.console_urls:
            hint += f" (or open {tally.server.console_urls[0]})"
        body: RenderableType = Text(hint, style="dim", no_wrap=True, overflow="ellipsis")
        return Panel(body, title=title, title_align="left", height=height, border_style="blue")

    view = view if view is not None else View()
    count = len(live)
    # Grouped by client when there are several (behaviour E4); the keys walk the same order.
    shown_rows = table_rows(live)
    live = [row for row in shown_rows if isinstance(row, ConnectionStats)]
    selected = view.row(live)  # which also moves a selection whose connection has left
    selected_row = None
    if selected is not None:
        selected_row = next(i for i, row in enumerate(shown_rows) if row is live[selected])
    room = max(height - 3, 0)  # borders and column titles
    # A connection first under its client's row brings that row into view with it.
    lead = 1 if selected_row and isinstance(shown_rows[selected_row - 1], ClientHeader) else 0
    top_row = view.window(len(shown_rows), room, selected_row, lead)
    in_view = shown_rows[top_row : top_row + room]
    top = sum(isinstance(row, ConnectionStats) for row in shown_rows[:top_row])
    live = [row for row in in_view if isinstance(row, ConnectionStats)]
    if live and len(live) < count:
        title += f" · {top + 1}–{top + len(live)} shown"
    rows = [_cells(stats, now) | _version(stats, tally.generation) for stats in live]
    # A client's row must fit too: its name under "remote", its count under "path".
    sizing = rows + [_header_sizes(row) for row in in_view if isinstance(row, ClientHeader)]
    columns, short_bytes = _fit(sizing, width - 2, versions=tally.generation > 0)
    widths = {column.key: _natural(column, sizing, short_bytes, width) for column in columns}
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
    chosen = view.selected
    connection_cells = iter(rows)
    for stats in in_view:
        if isinstance(stats, ClientHeader):
            table.add_row(*_header_cells(stats, columns))
            continue
        cells = next(connection_cells)
        styles = {
            "seq": f"bold {seq_style(stats.info.seq)}",
            "last": "bold yellow" if stats.stalled_bytes else "",
            "version": "yellow" if stats.info.generation < tally.generation else "dim",
        }
        table.add_row(
            *(Text(cells[column.key], style=styles.get(column.key, "")) for column in columns),
            style="reverse" if stats.info is chosen else None,
        )
    return Panel(
        table,
        title=title,
        title_align="left",
        subtitle=_scroll_hint(top, len(live), count, view),
        subtitle_align="right",
        height=height,
        border_style="blue",
        padding=(0, 0),
    )


def _count_label(header: ClientHeader) -> str:
    return f"{header.count} connection{'s' if header.count != 1 else ''}"


def _header_sizes(header: ClientHeader) -> dict[str, str]:
    """What a client's row asks of each column's width."""
    blank = dict.fromkeys((column.key for column in _COLUMNS), "")
    return {**blank, "remote": header.client, "path": _count_label(header)}


def _header_cells(header: ClientHeader, columns: list[_Column]) -> list[Text]:
    """A client's row (behaviour E4): its name (or address) under "remote" and its count under
    "path"; both under "path" when the screen has no room for "remote"."""
    count = _count_label(header)
    keys = [column.key for column in columns]
    texts = {
        "seq": Text("▾", style="dim"),
        "remote": Text(header.client, style="bold"),
        "path": Text(count, style="dim"),
    }
    if "remote" not in keys:
        texts["path"] = Text.assemble((header.client, "bold"), (f" · {count}", "dim"))
    return [texts.get(key, Text("")) for key in keys]


def _scroll_hint(top: int, shown: int, count: int, view: View) -> Text | None:
    """What the bottom border says: rows out of sight, and the keys when they are read."""
    parts = []
    if top:
        parts.append(f"↑ {top} more")
    if count - top - shown:
        parts.append(f"↓ {count - top - shown} more")
    if view.keys:
        parts.append("Enter: open · Esc: unselect" if view.selected else "↑↓: select")
    return Text(" · ".join(parts), style="dim") if parts else None


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
        "remote": f"{info.client_name} · {info.remote}" if info.client_name else info.remote,
        "path": path,
        "pid": str(stats.pid) if stats.pid is not None else "-",
        "age": human_duration(now - stats.connected_at),
        "in": f"{stats.messages_in} · {human_bytes(stats.bytes_in)}",
        "out": f"{stats.messages_out} · {human_bytes(stats.bytes_out)}",
        "last": last,
    }


def _version(stats: ConnectionStats, newest: int) -> dict[str, str]:
    """The version cell: ``v3``, or ``v2 old`` for a program older than the newest save (D2)."""
    return {"version": version_label(stats.info.generation, newest)}


def _fit(
    rows: list[dict[str, str]], width: int, *, versions: bool = False
) -> tuple[list[_Column], bool]:
    """The columns that fit ``width`` and whether byte counts must be left out; the version
    column only when there has been a save (before one, every connection runs v1)."""
    columns = [c for c in _COLUMNS if versions or c.key != "version"]
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
