"""The newest entries of a pane, wrapped to the width the pane gets (behaviour E1).

A pane shows its newest entries at the bottom. Each entry is a tag (time, connection) and a
text; a text longer than the pane wraps under itself, after the tag, so a traceback's
``File "…", line 12`` or its last line is read whole rather than cut. The width is known only
when rich lays the screen out, so ``Tail`` wraps there, and only as many entries as fill it.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text

#: A tag wider than this share of the pane gets no hanging indent: the text needs the room.
MAX_INDENT_SHARE = 0.4


class Tail:
    """Renders the newest of ``entries`` (tag, text; oldest first) that fit ``height`` rows.

    Entries are shown whole: one that no longer fits above the others is left out, and only
    the newest, when it alone is taller than the pane, is shown by its end. No text is cut
    within a row.
    """

    def __init__(
        self,
        entries: Sequence[tuple[Text, Text]],
        height: int,
        *,
        empty: str = "",
    ) -> None:
        self.entries = entries
        self.height = height
        self.empty = empty

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = max(options.max_width, 1)
        if self.height <= 0:
            return
        if not self.entries:
            yield Text(self.empty, style="dim", no_wrap=True, overflow="ellipsis")
            return
        rows: list[Text] = []
        for tag, text in reversed(self.entries):
            entry = wrap_entry(console, tag, text, width)
            if len(rows) + len(entry) > self.height:
                if not rows:  # the newest alone is taller than the pane: its end
                    rows = entry[-self.height :]
                # An older entry that no longer fits is left out whole, not shown cut; the
                # newest stay at the bottom.
                rows[:0] = [Text()] * (self.height - len(rows))
                break
            rows[:0] = entry
        yield from rows


def wrap_entry(console: Console, tag: Text, text: Text, width: int) -> list[Text]:
    """``tag`` then ``text`` in rows of ``width`` cells, the text's further rows indented."""
    if tag.cell_len > width * MAX_INDENT_SHARE:
        # Too narrow for an indent: the tag starts the first row and the text flows on.
        text, tag = Text.assemble(tag, text), Text()
    indent = tag.cell_len
    lines = list(text.wrap(console, max(width - indent, 1), overflow="fold", no_wrap=False))
    rows = []
    for n, line in enumerate(lines or [Text()]):
        row = tag.copy() if n == 0 else Text(" " * indent)
        row.append_text(line)
        row.no_wrap = True
        row.overflow = "crop"
        rows.append(row)
    return rows
