"""The room's QR code on the dashboard under --lan (behaviour B14): shown until the first
connection, and whenever q asks; a real QR code of the room's link."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from terminalqr import scan
from wsdev.config import Config
from wsdev.dashboard import render
from wsdev.events import Connected, ConnectionInfo, ProcessStarted, ServerStarted
from wsdev.keys import Key, parse
from wsdev.navigation import View
from wsdev.tally import Tally

LINK = "http://192.168.1.20:8080/?join=k7m2q9zx"
ROOM = Config(command=("/usr/bin/python3", "quiz.py"), command_display="quiz.py", lan=True)


def room_tally() -> Tally:
    tally = Tally()
    tally.handle(
        ServerStarted(
            urls=("ws://localhost:8080/?join=k7m2q9zx", "ws://192.168.1.20:8080/?join=k7m2q9zx"),
            console_urls=("http://localhost:8080/?join=k7m2q9zx", LINK),
            command="quiz.py",
            binary=False,
            watched=(),
        )
    )
    return tally


def screen(tally: Tally, config: Config, view: View | None = None) -> list[str]:
    console = Console(file=io.StringIO(), width=120, height=40, force_terminal=False)
    console.print(render(tally, config, 0.0, 120, 40, view))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(text, str)
    return text.splitlines()


def join(tally: Tally) -> None:
    info = ConnectionInfo(
        id="1", seq=1, remote="192.168.1.31", path="/", query="", url="", origin="", command="q"
    )
    tally.handle(Connected(info))
    tally.handle(ProcessStarted(info, 4001))


def test_the_code_shows_until_someone_joins_and_q_flips_it() -> None:
    tally, view = room_tally(), View(keys=True)
    waiting = "\n".join(screen(tally, ROOM, view))
    assert "join the room" in waiting and LINK in waiting
    assert "q: the room's QR code" in waiting
    join(tally)
    joined = "\n".join(screen(tally, ROOM, view))
    assert "join the room" not in joined and "192.168.1.31" in joined
    (key,) = parse(b"q")
    assert key is Key.ROOM
    view.press(key, tally)
    assert "join the room" in "\n".join(screen(tally, ROOM, view))
    view.press(key, tally)
    assert "join the room" not in "\n".join(screen(tally, ROOM, view))


def test_no_code_without_lan() -> None:
    plain = Config(command=ROOM.command, command_display="quiz.py")
    assert "join the room" not in "\n".join(screen(room_tally(), plain))


def test_the_dashboards_code_scans_to_the_room_link(tmp_path: Path) -> None:
    lines = screen(room_tally(), ROOM)
    # The code's rows: inside the pane's borders, made of half blocks and spaces only.
    rows = [line.strip("│").strip("\n") for line in lines if "▀" in line or "▄" in line]
    start = min(len(r) - len(r.lstrip(" ")) for r in rows)
    assert scan([r[start:].rstrip(" ") for r in rows], tmp_path) == LINK
