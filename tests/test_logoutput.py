"""``LogOutput``: a loop turn's lines go out in one write at the end of that turn, in order, and
nothing pending is lost at exit (behaviour A6)."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys

from conftest import ROOT, TurnCounter, timeout
from wsdev.logs import LogOutput


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


async def test_a_turns_lines_share_one_write_at_the_end_of_that_turn() -> None:
    stream = CountingStream()
    output = LogOutput(stream)
    turns = TurnCounter()
    for n in range(1000):  # a flood within one turn: one write, not one per line
        output.line(0.0, "ERROR", "stderr", "id:'1'", f"line {n}")
    assert stream.writes == 0  # nothing written in the middle of the turn
    logged_in = turns.turn
    await asyncio.sleep(0)  # the next turn
    turns.stop()
    assert stream.writes == 1
    assert turns.turn == logged_in + 1
    lines = stream.getvalue().splitlines()
    assert [line.rsplit(" | ", 1)[1] for line in lines] == [f"line {n}" for n in range(1000)]


async def test_lines_of_later_turns_are_not_held_back() -> None:
    stream = CountingStream()
    output = LogOutput(stream)
    output.line(0.0, "ACCESS", "session", "id:'1'", "CONNECT")
    await asyncio.sleep(0)
    output.line(0.0, "ACCESS", "session", "id:'1'", "DISCONNECT")
    await asyncio.sleep(0)
    assert stream.writes == 2
    lines = stream.getvalue().splitlines()
    assert [line.rsplit(" | ", 1)[1] for line in lines] == ["CONNECT", "DISCONNECT"]


async def test_flush_writes_what_is_pending_at_once() -> None:
    stream = CountingStream()
    output = LogOutput(stream)
    output.line(0.0, "INFO", "server", "", "Serving")
    output.flush()  # shutdown flushes without waiting
    assert stream.writes == 1 and stream.getvalue().endswith("| Serving\n")
    await asyncio.sleep(0)  # the scheduled flush finds nothing left to write
    assert stream.writes == 1


def test_without_a_loop_lines_are_written_at_once() -> None:
    stream = CountingStream()
    LogOutput(stream).line(0.0, "FATAL", "server", "", "cannot listen")
    assert stream.writes == 1


def test_lines_pending_when_the_interpreter_exits_are_written() -> None:
    # A line logged in the loop's last turn has a flush scheduled that never runs: the loop
    # stops at the end of that turn. configure_logging's exit hook writes it.
    program = (
        "import asyncio, sys\n"
        "from wsdev.config import Config\n"
        "from wsdev.logs import configure_logging\n"
        "output = configure_logging(Config(), stream=sys.stdout)\n"
        "loop = asyncio.new_event_loop()\n"
        "def last_turn():\n"
        "    output.line(0.0, 'INFO', 'server', '', 'the last words')\n"
        "    loop.stop()\n"
        "loop.call_soon(last_turn)\n"
        "loop.run_forever()\n"
        "loop.close()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT / "src")},
        timeout=timeout(30),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith("| the last words\n")
