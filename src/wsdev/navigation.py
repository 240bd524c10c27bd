"""Where the dashboard's user is (behaviour E3): the selected connection, how far the table is
scrolled, and which connection's own view is open. ``View.press`` applies one key.

The selection follows a connection, not a row: rows above it may come and go. When the selected
connection leaves, the selection moves to the next newer one (or the newest).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from wsdev.clientgroups import table_order
from wsdev.events import ConnectionInfo
from wsdev.keys import Key
from wsdev.tally import ConnectionStats, Tally


@dataclass
class View:
    #: Whether keys are read at all: the screen only offers them then.
    keys: bool = False
    selected: ConnectionInfo | None = None
    #: The connection whose own view is on screen; it stays open after the connection ends.
    opened: ConnectionStats | None = None
    #: The first table row in view, kept so the table scrolls only when the selection leaves it.
    top: int = 0
    #: How many rows the table last showed: Page Up and Page Down move by this.
    page: int = 10
    #: Under --lan, q flips whether the room's QR code is shown (it is, while nobody is live).
    room_toggled: bool = False

    def row(self, live: Sequence[ConnectionStats]) -> int | None:
        """The selected connection's row in ``live`` (oldest first), or None."""
        selected = self.selected
        if selected is None or not live:
            return None
        for index, stats in enumerate(live):
            if stats.info is selected:
                return index
        # It has left: a newer one of the same client takes its place (behaviour E4), else
        # its newer neighbour, else the newest.
        newer = [i for i, s in enumerate(live) if s.info.seq > selected.seq]
        same = [i for i in newer if live[i].info.client == selected.client]
        index = (same or newer or [len(live) - 1])[0]
        self.selected = live[index].info
        return index

    def window(self, count: int, rows: int, selected: int | None, lead: int = 0) -> int:
        """The first of ``rows`` table rows to show out of ``count``, the selection in view.

        Without a selection the table follows the newest connections, at the bottom. ``lead``
        rows above the selection belong with it (its client's row, behaviour E4): scrolling
        up to the selection shows them too.
        """
        self.page = max(rows, 1)
        top = count - rows if selected is None else self.top
        if selected is not None:
            if selected - lead < top:
                top = max(selected - lead, 0) if lead < rows else selected
            elif selected >= top + rows:
                top = selected - rows + 1
        self.top = max(0, min(top, count - rows))
        return self.top

    def press(self, key: Key, tally: Tally) -> None:
        if key is Key.ROOM:
            self.room_toggled = not self.room_toggled
            return
        live = table_order(tally.live.values())  # as the table shows them (behaviour E4)
        if self.opened is not None:
            self._in_connection(key, live)
            return
        if key is Key.ESCAPE:
            self.selected = None  # back to following the newest
            return
        if not live:
            return
        row = self.row(live)
        newest = len(live) - 1
        if key is Key.ENTER:
            stats = live[newest if row is None else row]
            self.selected, self.opened = stats.info, stats
            return
        if row is None:  # the first key selects the newest, which is in view
            row = 0 if key is Key.HOME else newest
        else:
            row += {
                Key.UP: -1,
                Key.DOWN: 1,
                Key.PAGE_UP: -self.page,
                Key.PAGE_DOWN: self.page,
                Key.HOME: -len(live),
                Key.END: len(live),
            }.get(key, 0)
        self.selected = live[max(0, min(row, newest))].info

    def _in_connection(self, key: Key, live: list[ConnectionStats]) -> None:
        opened = self.opened
        assert opened is not None
        if key is Key.ESCAPE:
            self.opened = None
            self.selected = opened.info
            return
        if key not in (Key.UP, Key.DOWN) or not live:
            return
        # The previous or next live connection's view, in the table's order, also when the
        # one on screen has ended meanwhile (then by age).
        seq = opened.info.seq
        index = next((i for i, s in enumerate(live) if s.info is opened.info), None)
        if index is not None:
            index += -1 if key is Key.UP else 1
            stats = live[max(0, min(index, len(live) - 1))]
        elif key is Key.UP:
            older = [s for s in live if s.info.seq < seq]
            stats = older[-1] if older else live[0]
        else:
            stats = next((s for s in live if s.info.seq > seq), live[-1])
        if stats.info.seq == seq:
            return
        self.selected, self.opened = stats.info, stats
