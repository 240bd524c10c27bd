"""``LogOutput``: lines gathered for a few milliseconds go out in one write, in order."""

from __future__ import annotations

import asyncio
import io

from wsdev.logs import FLUSH_DELAY, LogOutput


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.written = asyncio.Event()

    def write(self, text: str) -> int:
        self.writes += 1
        self.written.set()
        return super().write(text)


async def test_lines_close_together_share_one_write() -> None:
    stream = CountingStream()
    output = LogOutput(stream)
    output.line(0.0, "ACCESS", "session", "id:'1'", "CONNECT")
    await asyncio.sleep(0)  # another loop turn: still within the delay
    output.line(0.0, "ACCESS", "session", "id:'1'", "DISCONNECT")
    assert stream.writes == 0
    await asyncio.wait_for(stream.written.wait(), FLUSH_DELAY * 50)
    assert stream.writes == 1
    lines = stream.getvalue().splitlines()
    assert [line.rsplit(" | ", 1)[1] for line in lines] == ["CONNECT", "DISCONNECT"]


async def test_flush_writes_what_is_pending_at_once() -> None:
    stream = CountingStream()
    output = LogOutput(stream)
    output.line(0.0, "INFO", "server", "", "Serving")
    output.flush()  # shutdown flushes without waiting
    assert stream.writes == 1 and stream.getvalue().endswith("| Serving\n")
    await asyncio.sleep(FLUSH_DELAY * 2)  # the scheduled flush finds nothing left to write
    assert stream.writes == 1


def test_without_a_loop_lines_are_written_at_once() -> None:
    stream = CountingStream()
    LogOutput(stream).line(0.0, "FATAL", "server", "", "cannot listen")
    assert stream.writes == 1
