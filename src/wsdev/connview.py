"""One connection's own view in the dashboard (behaviour E3): what it is, its recent traffic both
ways and its stderr, each pane wrapped to the screen's width.
"""

from __future__ import annotations

from rich.console import RenderableType
from rich.panel import Panel
from rich.text import Text

from wsdev.conntable import seq_style
from wsdev.entries import message_entry, stderr_entry
from wsdev.tail import Tail
from wsdev.tally import ConnectionStats, Tally, human_bytes, human_duration, version_label


def connection_view(
    stats: ConnectionStats, tally: Tally, now: float, width: int, height: int
) -> list[RenderableType]:
    """The panes of ``stats``'s view for ``height`` rows below the header."""
    if height < 3:
        return []
    stderr_height = 0
    if height >= 8:
        # As tall as its lines need (they may wrap: a guess), at most half the room.
        stderr_height = min(height // 2, max(3, len(stats.stderr) + 3))
    traffic_height = height - stderr_height
    parts: list[RenderableType] = [
        Panel(
            Tail(
                _traffic(stats, tally, traffic_height - 2, wide=width >= 60),
                traffic_height - 2,
                empty="no messages yet",
            ),
            title=_title(stats, now, tally.generation),
            title_align="left",
            subtitle=_counts(stats),
            subtitle_align="right",
            height=traffic_height,
            border_style=seq_style(stats.info.seq),
            padding=(0, 1),
        )
    ]
    if stderr_height:
        entries = [stderr_entry(e, wide=width >= 60, tagged=False) for e in stats.stderr]
        parts.append(
            Panel(
                Tail(entries, stderr_height - 2, empty="nothing on stderr"),
                title=f"#{stats.info.seq} stderr",
                title_align="left",
                subtitle=Text("Esc: back · ↑↓: other connections", style="dim"),
                subtitle_align="right",
                height=stderr_height,
                border_style="blue",
                padding=(0, 1),
            )
        )
    return parts


def _title(stats: ConnectionStats, now: float, newest: int) -> Text:
    info = stats.info
    where = info.path + (f"?{info.query}" if info.query else "")
    title = Text.assemble(
        (f"#{info.seq} ", f"bold {seq_style(info.seq)}"),
        (where, "bold"),
        " (console)" if info.console else "",
        f" · {info.client_name} · {info.remote}" if info.client_name else f" · {info.remote}",
        f" · pid {stats.pid}" if stats.pid is not None else "",
    )
    if newest:  # after a save: which version it runs (D2)
        old = info.generation < newest
        title.append(f" · {version_label(info.generation, newest)}", style="yellow" if old else "")
    if stats.ended:
        title.append(f" · {stats.ended}", style="yellow")
    else:
        title.append(f" · up {human_duration(now - stats.connected_at)}")
    return title


def _counts(stats: ConnectionStats) -> Text:
    return Text(
        f"in {stats.messages_in} · {human_bytes(stats.bytes_in)}   "
        f"out {stats.messages_out} · {human_bytes(stats.bytes_out)}",
        style="dim",
    )


def _traffic(
    stats: ConnectionStats, tally: Tally, rows: int, *, wide: bool
) -> list[tuple[Text, Text]]:
    """The newest messages both ways, oldest first; at most ``rows`` (each takes a row or more)."""
    entries: list[tuple[Text, Text]] = []
    for traffic in reversed(stats.recent):
        wall = tally.wall(traffic.at)
        for index in range(len(traffic.messages) - 1, -1, -1):
            message = traffic.messages[index]
            if traffic.sizes is not None:
                size = traffic.sizes[index]
            elif isinstance(message, bytes):
                size = len(message)
            else:
                size = len(message.encode("utf-8", "surrogatepass"))
            entry = message_entry(wall, traffic.direction, message, size, traffic.binary, wide=wide)
            entries.append(entry)
            if len(entries) >= rows:
                return entries[::-1]
    return entries[::-1]
