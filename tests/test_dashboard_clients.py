"""The dashboard grouped by client (behaviour E4), rendered to a string console: a row per
client with its count, the keys walking the table's order, and stderr filtered to the selected
connection's client."""

from __future__ import annotations

import io
import re

from rich.console import Console

from test_dashboard import CONFIG, Clock, conn, started
from wsdev.dashboard import render
from wsdev.events import Connected, ConnectionInfo, Disconnected, ProcessStarted, StderrLine
from wsdev.keys import Key
from wsdev.navigation import View
from wsdev.tally import Tally


def draw(tally: Tally, clock: Clock, view: View, width: int = 120, height: int = 40) -> list[str]:
    console = Console(file=io.StringIO(), width=width, height=height, force_terminal=False)
    console.print(render(tally, CONFIG, clock.now, width, height, view))
    lines = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert len(lines) <= height and all(len(line) <= width for line in lines)
    return lines  # type: ignore[no-any-return]


def room(clients: list[tuple[str, str]]) -> tuple[Tally, Clock, list[ConnectionInfo]]:
    """A tally with one connection per (address, name), in that order, each with a stderr line."""
    clock = Clock()
    tally = Tally(clock=clock, wall_clock=lambda: 1_700_000_000.0 + clock.now)
    tally.handle(started())
    conns = []
    for seq, (remote, name) in enumerate(clients, start=1):
        c = conn(seq, "/quiz", remote=remote, name=name)
        tally.handle(Connected(c))
        tally.handle(ProcessStarted(c, 4000 + seq))
        tally.handle(StderrLine(c, f"debug: from #{seq}"))
        clock.now += 1
        conns.append(c)
    return tally, clock, conns


def table_lines(lines: list[str]) -> list[str]:
    """The table's rows, a client's as ``client`` and a connection's as ``#N``."""
    rows = []
    for line in lines:
        if m := re.match(r"│ *▾ +(\S+(?: \S+)*?) +(\d+) connections?", line):
            rows.append(f"{m.group(1)}:{m.group(2)}")
        elif m := re.match(r"│ *(#\d+) ", line):
            rows.append(m.group(1))
    return rows


ROOM = [
    ("10.0.0.5", "ada"),
    ("10.0.0.6", ""),
    ("10.0.0.5", "ada"),
    ("10.0.0.7", "Grace Hopper"),
    ("10.0.0.6", ""),
]


def test_connections_sit_under_their_client_with_its_count() -> None:
    tally, clock, _ = room(ROOM)
    lines = draw(tally, clock, View())
    assert table_lines(lines) == [
        "ada:2", "#1", "#3",
        "10.0.0.6:2", "#2", "#5",
        "#4",  # one connection: its own row names its client, no heading above it
    ]  # fmt: skip
    row = next(line for line in lines if re.match(r"│ *#4 ", line))
    assert "Grace Hopper · 10.0.0.7" in row  # a named connection shows its name and address
    assert any("connections · 5 live" in line for line in lines)
    wide = draw(tally, clock, View(), width=200)
    assert any("#4 connected from Grace Hopper (10.0.0.7) /quiz" in line for line in wide)


def test_one_client_alone_gets_no_group_row() -> None:
    tally, clock, _ = room([("127.0.0.1", "")] * 3)
    assert table_lines(draw(tally, clock, View())) == ["#1", "#2", "#3"]


def test_keys_walk_the_table_as_grouped_and_stderr_follows_the_client() -> None:
    tally, clock, conns = room(ROOM)
    view = View(keys=True)
    walked = []
    for _ in range(5):
        view.press(Key.UP, tally)
        assert view.selected is not None
        walked.append(view.selected.seq)
    assert walked == [4, 5, 2, 3, 1]  # bottom row first, then up the table as shown

    # #1 is ada's: the stderr pane shows ada's lines only, and says so.
    lines = draw(tally, clock, view)
    text = "\n".join(lines)
    assert "stderr · ada" in text
    assert "debug: from #1" in text and "debug: from #3" in text
    for other in (2, 4, 5):
        assert f"debug: from #{other}" not in text

    view.press(Key.DOWN, tally)  # #3, ada's too
    view.press(Key.DOWN, tally)  # #2, from 10.0.0.6 with no name
    text = "\n".join(draw(tally, clock, view))
    assert "stderr · 10.0.0.6" in text
    assert "debug: from #2" in text and "debug: from #5" in text and "from #1" not in text

    # When it ends, the selection moves to its client's next connection, and the client's
    # lines stay, the ended connection's too.
    tally.handle(Disconnected(conns[1], 1000, "exit 0", None, 1.0))
    text = "\n".join(draw(tally, clock, view))
    assert view.selected is conns[4]
    assert "stderr · 10.0.0.6" in text and "debug: from #2" in text

    view.press(Key.ESCAPE, tally)  # no selection: every client's lines again
    text = "\n".join(draw(tally, clock, view))
    assert "stderr · " not in text
    assert all(f"debug: from #{seq}" in text for seq in range(1, 6))


def test_a_room_of_thirty_scrolls_with_the_selection_through_the_groups() -> None:
    clients = [(f"10.0.0.{n}", f"student{n}") for n in range(1, 7)]
    tally, clock, _ = room([clients[i % 6] for i in range(30)])
    view = View(keys=True)
    lines = draw(tally, clock, view, height=35)
    first = table_lines(lines)
    assert first[-1] == "#30" and len(first) < 36  # the newest group's end, at the bottom
    assert any("↑" in line and "more" in line for line in lines)

    seen: set[int] = set()
    for _ in range(40):  # more presses than rows: the top stays the top
        view.press(Key.UP, tally)
        assert view.selected is not None
        shown = table_lines(draw(tally, clock, view, height=35))
        assert f"#{view.selected.seq}" in shown  # the selection is always in view
        seen.update(int(row[1:]) for row in shown if row.startswith("#"))
    assert seen == set(range(1, 31))
    assert (
        view.selected is not None and view.selected.seq == 1
    )  # student1's first connection, the table's first
    shown = table_lines(draw(tally, clock, view, height=35))
    assert shown[:2] == ["student1:5", "#1"]


def test_the_connections_own_view_names_its_person() -> None:
    tally, clock, _ = room(ROOM)
    view = View(keys=True)
    for key in (Key.HOME, Key.ENTER):
        view.press(key, tally)
    assert any("#1 /quiz · ada · 10.0.0.5 · pid 4001" in line for line in draw(tally, clock, view))
