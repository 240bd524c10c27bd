"""How a stderr line and a message look in the dashboard's panes: a tag (time, connection,
direction, size) and the text, ready for ``Tail`` to wrap.
"""

from __future__ import annotations

import re
import time

from rich.text import Text

from wsdev.conntable import seq_style
from wsdev.tally import StderrEntry, human_bytes

# Control characters other than ESC (colours are kept) and TAB would move the cursor about.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1a\x1c-\x1f\x7f]")
#: Bytes of a binary message shown, in hex.
HEX_BYTES = 32


def clean(text: str) -> str:
    """``text`` without the control characters that could move the cursor (colours stay)."""
    return _CONTROL.sub("", text)


def clock(wall: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(wall))


def stderr_entry(entry: StderrEntry, *, wide: bool, tagged: bool = True) -> tuple[Text, Text]:
    """A stderr line: its time (on a wide pane) and connection, then the line itself."""
    tag = Text()
    if wide:
        tag.append(clock(entry.wall) + " ", style="dim")
    if tagged:
        tag.append(f"#{entry.seq} ", style=f"bold {seq_style(entry.seq)}")
    # Keep the program's own colours, drop anything else that could move the cursor.
    return tag, Text.from_ansi(clean(entry.line))


def message_entry(
    wall: float, direction: str, message: str | bytes, size: int, binary: bool, *, wide: bool
) -> tuple[Text, Text]:
    """One message of a connection's traffic: when (on a wide pane), which way, how big, and
    its start.

    ``message`` may be the start of a longer one (``size`` says how long); the text then ends
    with ``…``.
    """
    tag = Text.assemble(
        (clock(wall) + " " if wide else "", "dim"),
        ("in  " if direction == "in" else "out ", "bold green" if direction == "in" else "cyan"),
        (f"{human_bytes(size):>7} ", "dim"),
    )
    cut = False
    if binary:
        data = message.encode() if isinstance(message, str) else message
        text = Text(data[:HEX_BYTES].hex(" "))
        cut = size > min(len(data), HEX_BYTES)
    else:
        data_text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
        shown = len(data_text.encode("utf-8", "surrogatepass"))
        text = Text(clean(data_text.replace("\r", "").replace("\n", "⏎")))
        cut = size > shown
    if cut:
        text.append("…", style="dim")
    return tag, text
