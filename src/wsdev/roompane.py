"""The room's link and QR code on the dashboard (behaviour B14, E1).

Under ``--lan`` the dashboard is what the teacher puts on the projector: until the first
connection it shows the room's link and a QR code of it where the connection table will be, and
the ``q`` key brings the code back (or hides it) at any time.
"""

from __future__ import annotations

from rich.align import Align
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.text import Text

from wsdev.config import Config
from wsdev.lan import qr_lines, room_link
from wsdev.tally import Tally


def link_of(tally: Tally, config: Config) -> str | None:
    """The room's link, once the server listens under --lan."""
    if not config.lan or tally.server is None:
        return None
    return room_link(tally.server.console_urls)


def room_panel(link: str, width: int, height: int) -> Panel | None:
    """The link and its QR code in a pane of ``height`` rows, or None when the code won't fit."""
    code = qr_lines(link)
    # Two rows of borders, the code, a blank row and the link.
    if len(code) + 4 > height or len(code[0]) + 4 > width:
        return None
    # Dark modules on light: every phone camera reads that, whatever the terminal's colours.
    drawn = Text("\n".join(code), style="black on white", no_wrap=True)
    caption = Text(link, style="bold cyan", no_wrap=True, overflow="ellipsis")
    body: RenderableType = Group(Align.center(drawn), Text(""), Align.center(caption))
    return Panel(
        body,
        title="[bold]join the room[/] · scan or type the link",
        subtitle="q: show or hide",
        subtitle_align="right",
        height=height,
        border_style="cyan",
    )
