"""The dashboard rendered to a string console at fixed sizes and times, and its redraw loop."""

from __future__ import annotations

import asyncio
import io
import itertools
import logging
import os
import re
import signal
import time

import pytest
from rich.console import Console

from conftest import timeout
from wsdev import __version__, dashboard
from wsdev.config import Config
from wsdev.dashboard import Dashboard, render
from wsdev.events import (
    Connected,
    ConnectionInfo,
    Disconnected,
    EventBus,
    ExitStatus,
    MessageIn,
    MessagesOut,
    OutputStalled,
    ProcessStarted,
    Rejected,
    Restarting,
    ServerStarted,
    ServerStopping,
    StderrLine,
)
from wsdev.keys import Key
from wsdev.navigation import View
from wsdev.tally import Tally

CONFIG = Config(command=("/usr/bin/python3", "bot.py"), command_display="bot.py")
WALL = 1_700_000_000.0


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def conn(
    seq: int, path: str = "/chat", query: str = "", remote: str = "127.0.0.1", name: str = ""
) -> ConnectionInfo:
    return ConnectionInfo(
        id=f"id-{seq}",
        seq=seq,
        remote=remote,
        client_name=name,
        path=path,
        query=query,
        url="",
        origin="",
        command="bot.py",
    )


def started(binary: bool = False) -> ServerStarted:
    return ServerStarted(
        urls=("ws://127.0.0.1:8080/",),
        console_urls=("http://127.0.0.1:8080/",),
        command="bot.py --fast",
        binary=binary,
        watched=("bot.py", "/home/dev/project"),
    )


def screen(tally: Tally, now: float, width: int = 120, height: int = 40) -> list[str]:
    """The dashboard as the lines a ``width`` x ``height`` terminal would show, without styles."""
    console = Console(file=io.StringIO(), width=width, height=height, force_terminal=False)
    console.print(render(tally, CONFIG, now, width, height))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(text, str)
    return text.splitlines()


def fits(lines: list[str], width: int, height: int) -> bool:
    return len(lines) <= height and all(len(line) <= width for line in lines)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def tally(clock: Clock) -> Tally:
    # Wall time is UTC-independent in the assertions below: they use time.strftime as render does.
    tally = Tally(clock=clock, wall_clock=lambda: WALL + clock.now)
    tally.handle(started())
    return tally


def busy(tally: Tally, clock: Clock, connections: int = 3) -> list[ConnectionInfo]:
    conns = [
        conn(seq, "/chat" if seq % 2 else "/", "room=1" if seq == 1 else "")
        for seq in range(1, connections + 1)
    ]
    for c in conns:
        tally.handle(Connected(c))
        tally.handle(ProcessStarted(c, 4000 + c.seq))
        clock.now += 1
        tally.handle(MessageIn(c, "hello"))
        tally.handle(MessagesOut(c, [b"HELLO", b"WORLD"], 10, False))
        tally.handle(StderrLine(c, f"debug: connection {c.seq} handled hello"))
    return conns


def test_header_shows_version_urls_command_mode_watch_uptime_and_totals(
    tally: Tally, clock: Clock
) -> None:
    busy(tally, clock, 2)
    lines = screen(tally, clock.now + 62)
    head = "\n".join(lines[:4])
    assert f"wsdev {__version__}" in lines[0] and "serving" in lines[0]
    assert lines[0].rstrip().endswith("up 1m04s")
    assert " ws://127.0.0.1:8080/   console" in head and "console http://127.0.0.1:8080/" in head
    assert "run bot.py --fast" in head and "text" in head
    assert "reload bot.py, /home/dev/project" in head
    assert "live 2" in head and "total 2" in head
    assert "in 2 · 10 B" in head and "out 4 · 20 B" in head and "stderr 2" in head


def test_header_before_start_and_while_stopping(clock: Clock) -> None:
    tally = Tally(clock=clock, wall_clock=lambda: WALL)
    lines = screen(tally, clock.now)
    assert "starting…" in lines[0]
    assert any("run bot.py" in line and "reload off" in line for line in lines)
    tally.handle(started(binary=True))
    tally.handle(ServerStopping("interrupted"))
    lines = screen(tally, clock.now)
    assert "stopping: interrupted" in lines[0]
    assert any("binary" in line for line in lines[:4])


def test_connections_appear_with_counters_and_leave(tally: Tally, clock: Clock) -> None:
    lines = screen(tally, clock.now)
    assert any("waiting for a client on ws://127.0.0.1:8080/" in line for line in lines)

    conns = busy(tally, clock, 2)
    clock.now += 5
    tally.handle(MessageIn(conns[0], "again"))
    lines = screen(tally, clock.now + 2)
    assert any("connections · 2 live" in line for line in lines)
    row1 = next(line for line in lines if "#1 " in line and "4001" in line)
    for cell in (
        "127.0.0.1",
        "/chat?room=1",
        "9.0s",
        "2 · 10 B",
        "2 · 10 B",
        "2.0s in again",
    ):
        assert cell in row1, (cell, row1)
    row2 = next(line for line in lines if "#2 " in line and "4002" in line)
    assert "1 · 5 B" in row2 and "2 · 10 B" in row2 and "out WORLD" in row2

    tally.handle(Disconnected(conns[0], 1000, "exit 0", ExitStatus(code=0), 8.25))
    lines = screen(tally, clock.now)
    assert any("connections · 1 live" in line for line in lines)
    assert not any("4001" in line for line in lines)
    assert any("- #1 closed 1000 · exit 0 · 8.2s" in line for line in lines)


def test_stderr_pane_tags_lines_with_their_connection(tally: Tally, clock: Clock) -> None:
    conns = busy(tally, clock, 3)
    tally.handle(StderrLine(conns[1], "Traceback (most recent call last):"))
    lines = screen(tally, clock.now)
    pane = [line for line in lines if "debug: connection" in line or "Traceback" in line]
    stamp = time.strftime("%H:%M:%S", time.localtime(WALL + 1001))
    assert f"{stamp} #1 debug: connection 1 handled hello" in pane[0]
    assert "#2 debug: connection 2" in pane[1] and "#3 debug: connection 3" in pane[2]
    assert "#2 Traceback (most recent call last):" in pane[3]


def squash(text: str) -> str:
    """``text`` without spaces and box lines: what a wrapped line reads as, joined again."""
    return re.sub(r"[\s│╭╮╰╯─]", "", text)


def left_pane(lines: list[str], width: int = 120) -> str:
    """The left half of the bottom panes (stderr, side by side with events)."""
    top = next(i for i, line in enumerate(lines) if "─ stderr " in line)
    return "\n".join(line[: width // 2] for line in lines[top:])


def test_stderr_lines_wrap_whole_and_cannot_move_the_cursor(tally: Tally, clock: Clock) -> None:
    c = busy(tally, clock, 1)[0]
    long_line = "\x1b[31mred\x1b[0m \x1b[2J\x07bell\tand " + "long " * 30 + "END"
    tally.handle(StderrLine(c, long_line))
    console = Console(file=io.StringIO(), width=120, height=40, force_terminal=True)
    console.print(render(tally, CONFIG, clock.now, 120, 40))
    raw = console.file.getvalue()  # type: ignore[attr-defined]
    assert "\x1b[2J" not in raw and "\x07" not in raw
    lines = screen(tally, clock.now, 120, 40)
    pane = left_pane(lines)
    assert squash("red bell and " + "long " * 30 + "END") in squash(pane)
    assert "…" not in pane
    # Its further rows start under the text, not under the time and connection tag.
    first = next(i for i, line in enumerate(lines) if "red bell" in line)
    tag_width = lines[first].index("red")
    assert lines[first + 1][:tag_width].strip(" │") == ""
    assert fits(lines, 120, 40)


TRACEBACK = [
    "Traceback (most recent call last):",
    '  File "/home/student/projects/websocket-course/week3/examples/bot.py", line 23, in <module>',
    "    n = int(line)",
    "        ^^^^^^^^^",
    "ValueError: invalid literal for int() with base 10: 'twelve please, or maybe thirteen'",
]


def test_a_traceback_reads_whole_at_120_columns(tally: Tally, clock: Clock) -> None:
    c = busy(tally, clock, 3)[1]
    for line in TRACEBACK:
        tally.handle(StderrLine(c, line))
    lines = screen(tally, clock.now, 120, 35)
    pane = squash(left_pane(lines))
    for line in TRACEBACK:
        assert squash(f"#2 {line}") in pane, line
    assert "…" not in left_pane(lines)


def test_a_line_taller_than_the_pane_shows_its_end(tally: Tally, clock: Clock) -> None:
    c = busy(tally, clock, 1)[0]
    tally.handle(StderrLine(c, "start " + "word " * 700 + "END"))
    lines = screen(tally, clock.now, 80, 24)
    text = "\n".join(lines)
    assert "END" in text and "start" not in text
    assert fits(lines, 80, 24)
    tally.handle(StderrLine(c, "x" * 5000))
    text = "\n".join(screen(tally, clock.now, 80, 24))
    assert "… (1000 more characters)" in text  # stored cut, and said so


def test_event_log_shows_exit_status_restart_and_rejections(tally: Tally, clock: Clock) -> None:
    a, b = busy(tally, clock, 2)
    tally.handle(Disconnected(a, 1011, "exit 3", ExitStatus(code=3), 2.5))
    tally.handle(Restarting(("bot.py",), 1))
    tally.handle(Disconnected(b, 1012, "service restart", ExitStatus(signal=2), 3.0))
    tally.handle(Rejected(403, "origin not allowed", "/", "10.0.0.7", "http://evil.example"))
    tally.handle(Rejected(429, "too many children", "/", "127.0.0.1"))
    text = "\n".join(screen(tally, clock.now, 200, 40))
    assert "- #1 closed 1011 · exit 3 · 2.5s" in text
    assert "↻ bot.py changed, closing 1 connection" in text
    assert "- #2 closed 1012 · signal SIGINT · 3.0s · 'service restart'" in text
    assert "x 403 / from 10.0.0.7 origin http://evil.example: origin not allowed" in text
    assert "x 429 / from 127.0.0.1: too many children" in text


def test_buffered_output_hint(tally: Tally, clock: Clock) -> None:
    c = busy(tally, clock, 1)[0]
    tally.handle(OutputStalled(c, 17))
    text = "\n".join(screen(tally, clock.now, 160))
    assert "17 B without newline" in text
    assert "! #1 no newline after 17 bytes for 1s+ (flush stdout?)" in text


def test_wide_terminal_puts_stderr_and_events_side_by_side(tally: Tally, clock: Clock) -> None:
    busy(tally, clock, 2)
    lines = screen(tally, clock.now, 160, 40)
    assert any("stderr" in line and "events" in line for line in lines)
    assert fits(lines, 160, 40) and len(lines) == 40


@pytest.mark.parametrize(("width", "height"), [(80, 24), (40, 24), (40, 12), (20, 10)])
def test_small_terminals_fit(tally: Tally, clock: Clock, width: int, height: int) -> None:
    busy(tally, clock, 6)
    lines = screen(tally, clock.now, width, height)
    assert fits(lines, max(width, 20), height), "\n".join(lines)
    assert "wsdev" in lines[0]
    if height >= 24:
        assert any("#6" in line for line in lines)  # the newest connection is in view
        assert any("connection 6 handled hello" in line for line in lines)


def test_80x24_shows_every_part(tally: Tally, clock: Clock) -> None:
    busy(tally, clock, 3)
    lines = screen(tally, clock.now, 80, 24)
    text = "\n".join(lines)
    for part in ("ws://127.0.0.1:8080/", "connections · 3 live", "stderr", "events", "#3"):
        assert part in text
    header = next(line for line in lines if "pid" in line)
    for column in ("#", "path", "pid", "age", "in", "out"):
        assert column in header.split()


def test_narrow_terminal_keeps_the_essential_columns(tally: Tally, clock: Clock) -> None:
    busy(tally, clock, 2)
    lines = screen(tally, clock.now, 40, 24)
    header = next(line for line in lines if " # " in line and "path" in line).split()
    assert header[1:] == ["#", "path", "in", "out", "│"][: len(header) - 1]
    row = next(line for line in lines if "#2 " in line and "/" in line)
    assert "1" in row.split() and "2" in row.split()


def rows_shown(lines: list[str]) -> list[int]:
    return [int(m.group(1)) for line in lines if (m := re.match(r"│ *#(\d+) +127\.0\.0\.1", line))]


def test_many_connections_show_the_newest_and_say_how_many_more(tally: Tally, clock: Clock) -> None:
    busy(tally, clock, 40)
    lines = screen(tally, clock.now, 100, 24)
    shown = rows_shown(lines)
    assert shown == list(range(41 - len(shown), 41))
    assert any(f"connections · 40 live · {41 - len(shown)}–40 shown" in line for line in lines)
    assert any(f"↑ {40 - len(shown)} more" in line for line in lines)


def test_thirty_connections_at_120x35_scroll_with_the_selection(tally: Tally, clock: Clock) -> None:
    busy(tally, clock, 30)
    view = View(keys=True)

    def draw() -> list[str]:
        console = Console(file=io.StringIO(), width=120, height=35, force_terminal=False)
        console.print(render(tally, CONFIG, clock.now, 120, 35, view))
        return console.file.getvalue().splitlines()  # type: ignore[attr-defined,no-any-return]

    lines = draw()
    page = len(rows_shown(lines))
    assert rows_shown(lines)[-1] == 30 and 8 <= page < 30
    assert any("↑↓: select" in line for line in lines)

    view.press(Key.UP, tally)  # the first key selects the newest, in view
    assert view.selected is not None and view.selected.seq == 30
    seen = set()
    for expected in range(29, 0, -1):
        view.press(Key.UP, tally)
        assert view.selected.seq == expected
        shown = rows_shown(draw())
        assert expected in shown and len(shown) == page
        seen.update(shown)
    assert seen == set(range(1, 31))  # every connection could be seen
    lines = draw()
    assert rows_shown(lines)[0] == 1 and any(f"↓ {30 - page} more" in line for line in lines)

    view.press(Key.PAGE_DOWN, tally)
    assert view.selected.seq == 1 + page and 1 + page in rows_shown(draw())
    view.press(Key.END, tally)
    assert rows_shown(draw())[-1] == 30
    view.press(Key.HOME, tally)
    assert rows_shown(draw())[0] == 1
    view.press(Key.ESCAPE, tally)  # no selection: the table follows the newest again
    assert view.selected is None and rows_shown(draw())[-1] == 30


def test_the_selected_row_is_highlighted_and_follows_its_connection(
    tally: Tally, clock: Clock
) -> None:
    conns = busy(tally, clock, 5)
    view = View(keys=True)
    view.press(Key.UP, tally)
    view.press(Key.UP, tally)
    assert view.selected is conns[3]
    console = Console(file=io.StringIO(), width=120, height=35, force_terminal=True)
    console.print(render(tally, CONFIG, clock.now, 120, 35, view))
    raw = console.file.getvalue()  # type: ignore[attr-defined]
    row = next(line for line in raw.splitlines() if "4004" in line)
    assert "\x1b[7m" in row or ";7m" in row or ";7;" in row  # reverse video
    # The selected connection leaves: its newer neighbour is selected, not a row number.
    tally.handle(Disconnected(conns[3], 1000, "exit 0", ExitStatus(code=0), 1.0))
    screen_lines = screen(tally, clock.now, 120, 35)
    assert screen_lines
    assert view.row(list(tally.live.values())) == 3 and view.selected is conns[4]


def test_any_size_renders(tally: Tally, clock: Clock) -> None:
    busy(tally, clock, 12)
    tally.handle(OutputStalled(conn(12), 3))
    for width in range(1, 220, 13):
        for height in range(1, 70, 6):
            lines = screen(tally, clock.now, width, height)
            assert fits(lines, max(width, 20), height), (width, height)


# ---------------------------------------------------------------- the driver


def terminal(width: int = 100, height: int = 30) -> Console:
    return Console(
        file=io.StringIO(), width=width, height=height, force_terminal=True, color_system=None
    )


def output(console: Console) -> str:
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(text, str)
    return text


class Draws:
    """Counts and timestamps the dashboard's draws and lets a test wait for the next one."""

    def __init__(self, dash: Dashboard) -> None:
        self.times: list[float] = []
        self._event = asyncio.Event()
        original = dash._draw

        def draw() -> None:
            self.times.append(time.monotonic())  # before drawing: draws vary in length
            original()
            self._event.set()

        dash._draw = draw  # type: ignore[method-assign]

    async def next(self) -> None:
        self._event.clear()
        await asyncio.wait_for(self._event.wait(), timeout(10))

    async def until(self, predicate: object, console: Console) -> str:
        async def wait() -> str:
            while not callable(predicate) or not predicate(output(console)):
                await self.next()
            return output(console)

        return await asyncio.wait_for(wait(), timeout(10))


async def test_start_draws_on_the_other_screen_and_stop_restores(clock: Clock) -> None:
    bus = EventBus()
    console = terminal()
    dash = Dashboard(bus, CONFIG, console=console)
    draws = Draws(dash)
    dash.start()
    bus.publish(started())
    c = conn(1)
    bus.publish(Connected(c))
    bus.publish(StderrLine(c, "hello from the program"))
    text = await draws.until(lambda out: "#1 hello from the program" in out, console)
    assert "\x1b[?1049h" in text  # the alternate screen, so the shell's screen comes back
    assert "connections · 1 live" in text

    await asyncio.wait_for(dash.stop(), timeout(5))
    text = output(console)
    assert text.rfind("\x1b[?1049l") > text.rfind("#1 hello")
    summary = text[text.rfind("\x1b[?1049l") :].strip()
    assert re.search(r"wsdev served 1 connection in \d\.\ds: 0 messages in, 0 out$", summary)
    # Unsubscribed: later events no longer reach the tally.
    changes = dash.tally.changes
    bus.publish(Connected(conn(2)))
    assert dash.tally.changes == changes
    await dash.stop()  # twice is harmless


async def test_not_a_terminal_draws_nothing_but_works() -> None:
    bus = EventBus()
    console = Console(file=io.StringIO(), width=80, height=24, force_terminal=False)
    dash = Dashboard(bus, CONFIG, console=console)
    draws = Draws(dash)
    dash.start()
    bus.publish(started())
    await draws.next()
    await dash.stop()
    assert "\x1b[?1049h" not in output(console)


async def test_redraws_at_most_four_times_a_second_under_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bus = EventBus()
    dash = Dashboard(bus, CONFIG, console=terminal())
    draws = Draws(dash)
    dash.start()
    c = conn(1)
    bus.publish(Connected(c))
    begin = time.monotonic()
    published = 0
    while time.monotonic() - begin < 1.2:
        bus.publish(MessagesOut(c, [b"x"] * 10, 10, False))
        published += 1
        await asyncio.sleep(0)
    elapsed = time.monotonic() - begin
    await dash.stop()
    assert published > 100
    assert dash.tally.totals.messages_out == published * 10
    during = [t for t in draws.times if begin <= t <= begin + elapsed]
    assert len(during) <= elapsed / dashboard.MIN_INTERVAL + 2
    gaps = [b - a for a, b in itertools.pairwise(during)]
    assert all(gap >= dashboard.MIN_INTERVAL * 0.9 for gap in gaps), gaps


async def test_idle_redraws_once_a_second() -> None:
    bus = EventBus()
    dash = Dashboard(bus, CONFIG, console=terminal())
    draws = Draws(dash)
    dash.start()
    for _ in range(3):
        await draws.next()
    await dash.stop()
    gaps = [b - a for a, b in itertools.pairwise(draws.times)]
    assert all(gap >= dashboard.MAX_INTERVAL * 0.9 for gap in gaps[:2]), gaps


async def test_stop_right_after_an_event_does_not_hang(monkeypatch: pytest.MonkeyPatch) -> None:
    # The loop waits for the next event; an event and stop() in the same tick must still stop it.
    monkeypatch.setattr(dashboard, "MIN_INTERVAL", 0.0)
    for _ in range(20):
        bus = EventBus()
        dash = Dashboard(bus, CONFIG, console=terminal())
        draws = Draws(dash)
        dash.start()
        await draws.next()
        for _ in range(3):
            await asyncio.sleep(0)
        bus.publish(ServerStopping("interrupted"))
        await asyncio.wait_for(dash.stop(), timeout(5))


async def test_a_failing_render_is_shown_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> None:
        raise ValueError("bad state")

    monkeypatch.setattr(dashboard, "render", broken)
    console = terminal()
    dash = Dashboard(EventBus(), CONFIG, console=console)
    draws = Draws(dash)
    dash.start()
    await draws.next()
    await dash.stop()
    assert "wsdev dashboard cannot draw: ValueError('bad state')" in output(console)


async def test_log_records_go_to_the_event_log() -> None:
    console = terminal()
    dash = Dashboard(EventBus(), CONFIG, console=console)
    draws = Draws(dash)
    log = logging.getLogger("wsdev.test_dashboard")
    log.addHandler(dash.log_handler)
    log.propagate = False
    try:
        dash.start()
        log.warning("watcher lost %s", "bot.py")
        log.info("not shown")
        await asyncio.get_running_loop().run_in_executor(None, log.error, "from a thread")
        text = await draws.until(lambda out: "from a thread" in out, console)
    finally:
        log.removeHandler(dash.log_handler)
        log.propagate = True
        await dash.stop()
    assert "! watcher lost bot.py" in text and "not shown" not in text


@pytest.mark.skipif(not hasattr(signal, "SIGWINCH"), reason="no SIGWINCH on this platform")
async def test_terminal_resize_redraws_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dashboard, "MIN_INTERVAL", 0.0)
    monkeypatch.setattr(dashboard, "MAX_INTERVAL", 60.0)
    dash = Dashboard(EventBus(), CONFIG, console=terminal())
    draws = Draws(dash)
    dash.start()
    try:
        await draws.next()
        os.kill(os.getpid(), signal.SIGWINCH)
        await draws.next()  # long before the 60 s clock tick
    finally:
        await dash.stop()


# ---------------------------------------------------------------- one connection's view


def draw(tally: Tally, clock: Clock, view: View, width: int = 120, height: int = 35) -> str:
    console = Console(file=io.StringIO(), width=width, height=height, force_terminal=False)
    console.print(render(tally, CONFIG, clock.now, width, height, view))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(text, str) and fits(text.splitlines(), width, height)
    return text


def test_enter_opens_a_connections_traffic_and_stderr_and_escape_goes_back(
    tally: Tally, clock: Clock
) -> None:
    conns = busy(tally, clock, 3)
    second = conns[1]
    tally.handle(MessageIn(second, '{"cmd": "count", "n": "' + "9" * 500 + '"}'))
    tally.handle(MessagesOut(second, [b"one", b"two"], 6, False))
    for line in TRACEBACK:
        tally.handle(StderrLine(second, line))
    tally.handle(StderrLine(conns[2], "not from #2"))
    view = View(keys=True)
    for key in (Key.UP, Key.UP, Key.ENTER):
        view.press(key, tally)
    text = draw(tally, clock, view)
    assert "#2 / · 127.0.0.1 · pid 4002 · up" in text
    assert "connections ·" not in text  # the table gave way to the connection
    rows = [line for line in text.splitlines() if re.search(r"\d\d:\d\d:\d\d (in|out) ", line)]
    assert [re.search(r" (in|out) ", row).group(1) for row in rows] == [  # type: ignore[union-attr]
        "in", "out", "out", "in", "out", "out"
    ]  # fmt: skip
    assert "in      5 B hello" in rows[0] and "out     5 B WORLD" in rows[2]
    assert 'in    525 B {"cmd"' in rows[3] and "…" in text  # cut when kept, and its size said
    assert "out     3 B two" in rows[-1]
    assert "in 2 · 530 B   out 4 · 16 B" in text
    for line in TRACEBACK:
        assert line.strip() in text  # at full width, each on its row
    assert "not from #2" not in text and "Esc: back" in text

    # It ends while on screen: the view stays, saying how it ended.
    tally.handle(Disconnected(second, 1011, "exit 1", ExitStatus(code=1), 4.0))
    assert "#2 / · 127.0.0.1 · pid 4002 · closed 1011 · exit 1 · 4.0s" in draw(tally, clock, view)
    view.press(Key.UP, tally)  # the previous live connection's view
    assert view.opened is not None and view.opened.info is conns[0]
    view.press(Key.DOWN, tally)
    assert view.opened is not None and view.opened.info is conns[2]
    view.press(Key.ESCAPE, tally)
    text = draw(tally, clock, view)
    assert view.opened is None and "connections · 2 live" in text


def test_recent_traffic_stays_bounded_under_a_flood(tally: Tally, clock: Clock) -> None:
    from wsdev import tally as tally_module

    c = busy(tally, clock, 1)[0]
    for n in range(5000):
        tally.handle(MessagesOut(c, [b"x" * 30] * 20, 600, False))
        tally.handle(MessagesOut(c, [b"y" * 5000, b"z" * 2], 5002, False))
        tally.handle(MessageIn(c, f"{n}" * 2000))
        tally.handle(StderrLine(c, f"err {n}"))
    stats = tally.live[c.id]
    assert len(stats.recent) == tally_module.RECENT and len(stats.stderr) == tally_module.RECENT
    assert all(len(t.messages) <= tally_module.RECENT_BATCH for t in stats.recent)
    kept = [m for t in stats.recent for m in t.messages]
    assert max(len(m) for m in kept) <= tally_module.RECENT_TEXT
    assert stats.recent[-1].sizes == (len(f"{4999}" * 2000),)
    assert stats.recent[-2].sizes == [5000, 2] and stats.stderr[-1].line == "err 4999"


# ---------------------------------------------------------------- keys from a terminal


async def test_keys_from_a_terminal_select_open_and_go_back_then_the_terminal_is_restored(
    clock: Clock,
) -> None:
    import termios

    controller, terminal_fd = os.openpty()
    before = termios.tcgetattr(terminal_fd)
    bus = EventBus()
    console = terminal(120, 35)
    dash = Dashboard(bus, CONFIG, console=console, clock=clock, keys_fd=terminal_fd)
    draws = Draws(dash)
    try:
        dash.start()
        assert dash.view.keys
        during = termios.tcgetattr(terminal_fd)
        assert not during[3] & termios.ICANON and not during[3] & termios.ECHO
        assert during[3] & termios.ISIG  # Ctrl+C still stops wsdev
        bus.publish(started())
        conns = [conn(seq) for seq in (1, 2, 3)]
        for c in conns:
            bus.publish(Connected(c))
        bus.publish(MessageIn(conns[1], "from the second"))
        await draws.until(lambda out: "connections · 3 live" in out, console)

        os.write(controller, b"\x1b[A\x1b[A")  # two presses of the up arrow, in one read
        await draws.until(lambda out: "Enter: open" in out, console)
        assert dash.view.selected is conns[1]
        os.write(controller, b"\r")
        await draws.until(lambda out: "in     15 B from the second" in out, console)
        os.write(controller, b"\x1b")
        await draws.until(lambda out: dash.view.opened is None, console)
    finally:
        await dash.stop()
    assert termios.tcgetattr(terminal_fd) == before
    os.close(controller)
    os.close(terminal_fd)


async def test_no_keys_when_stdin_is_not_a_terminal() -> None:
    read_end, write_end = os.pipe()
    dash = Dashboard(EventBus(), CONFIG, console=terminal(), keys_fd=read_end)
    dash.start()
    await dash.stop()
    assert not dash.view.keys
    os.close(read_end)
    os.close(write_end)


def test_the_connection_view_fits_any_size(tally: Tally, clock: Clock) -> None:
    conns = busy(tally, clock, 3)
    for line in TRACEBACK:
        tally.handle(StderrLine(conns[2], line))
    tally.handle(MessagesOut(conns[2], [bytes(range(256))], 256, True))
    view = View(keys=True)
    view.press(Key.ENTER, tally)
    assert view.opened is not None and view.opened.info is conns[2]
    assert "out   256 B 00 01 02" in draw(tally, clock, view)  # binary as hex
    for width in range(1, 220, 17):
        for height in range(1, 70, 7):
            draw(tally, clock, view, width, height)  # fits, or draw() fails
