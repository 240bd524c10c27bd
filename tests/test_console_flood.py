"""A program flooding stderr, as the console's socket carries it (behaviour C6, C3).

The lines of one read of a pipe (stdout or stderr) go to the console as one envelope, in order;
a single line keeps the one-line form. The browser side of a flood is in ``test_console.py``.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import sys

from conftest import ScriptWriter, run_wsdev, timeout
from test_console_ws import console_session, console_url, each_line
from wsdev.sinks import ConsoleSink, PlainSink
from wsdev.streams import StderrReader


class Handler:
    """What a ``StderrReader`` reports, call by call (it reports nothing else)."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.ended = asyncio.Event()

    def on_stderr(self, lines: list[str]) -> None:
        self.calls.append(lines)

    def on_stderr_eof(self) -> None:
        self.ended.set()

    def on_lines(self, lines: list[bytes], nbytes: int, block: bytes | None = None) -> None:
        raise AssertionError("stdout from the stderr reader")

    def on_chunk(self, data: bytes) -> None:
        raise AssertionError("stdout from the stderr reader")

    def on_stdout_eof(self) -> None:
        raise AssertionError("stdout from the stderr reader")

    def on_stalled(self, pending: int) -> None:
        raise AssertionError("stdout from the stderr reader")

    def on_line_too_long(self) -> None:
        raise AssertionError("stdout from the stderr reader")

    def on_invalid_utf8(self) -> None:
        raise AssertionError("stdout from the stderr reader")


class Writes:
    """A sink's output: each ``write`` as it came."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, frames: bytes) -> None:
        self.writes.append(frames)


def text_payloads(frames: bytes) -> list[str]:
    """The payloads of a buffer of short unmasked text frames (as a server sends them)."""
    payloads = []
    while frames:
        assert frames[0] == 0x81 and frames[1] < 126, frames[:2]
        size = frames[1]
        payloads.append(frames[2 : 2 + size].decode())
        frames = frames[2 + size :]
    return payloads


async def read_pipe(data: bytes) -> Handler:
    """Everything ``data`` is, written into a real pipe before it is read, through a reader."""
    handler = Handler()
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 1 << 20)  # room for all of it before any read
    os.write(write_end, data)
    os.close(write_end)
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.connect_read_pipe(lambda: StderrReader(handler), pipe)
        await asyncio.wait_for(handler.ended.wait(), timeout(5))
        transport.close()
    return handler


async def test_the_lines_of_one_read_go_together() -> None:
    handler = await read_pipe(b"one\r\ntwo \xff\n\nthree, no newline")
    # One read: its complete lines at once (a carriage return dropped, bad UTF-8 replaced);
    # the end of the pipe brings the last line.
    assert handler.calls == [["one", "two \ufffd", ""], ["three, no newline"]]


async def test_a_very_long_line_comes_in_pieces_with_the_lines_before_it() -> None:
    handler = await read_pipe(b"short\n" + b"x" * (150 * 1024))
    piece = "x" * (64 * 1024)
    assert handler.calls == [["short", piece, piece], ["x" * (22 * 1024)]]


def test_console_sink_sends_the_lines_of_one_read_as_one_envelope() -> None:
    out = Writes()
    sink = ConsoleSink(out)
    sink.stderr(["a", 'b "quoted" ✓'])
    sink.lines([b"one", "two ✓".encode()])
    sink.lines([b"alone"])
    sink.stderr(["alone too"])
    sink.lines([])
    assert [[json.loads(p) for p in text_payloads(w)] for w in out.writes] == [
        [{"type": "stderr", "lines": ["a", 'b "quoted" ✓']}],
        [{"type": "stdout", "lines": ["one", "two ✓"]}],
        [{"type": "stdout", "data": "alone"}],
        [{"type": "stderr", "data": "alone too"}],
    ]


def test_plain_sink_sends_one_frame_per_line() -> None:
    plain, passing = Writes(), Writes()
    PlainSink(plain, passstderr=False).lines([b"one", b"two"])
    PlainSink(passing, passstderr=True).lines([b"one", b"two"])
    assert text_payloads(plain.writes[0]) == ["one", "two"]
    assert [json.loads(p) for p in text_payloads(passing.writes[0])] == [
        {"stream": "stdout", "data": "one"},
        {"stream": "stdout", "data": "two"},
    ]


def test_plain_sink_sends_stderr_lines_only_under_passstderr() -> None:
    passing, silent = Writes(), Writes()
    PlainSink(passing, passstderr=True).stderr(["a", "b"])
    PlainSink(silent, passstderr=False).stderr(["a", "b"])
    assert [json.loads(p) for p in text_payloads(passing.writes[0])] == [
        {"stream": "stderr", "data": "a"},
        {"stream": "stderr", "data": "b"},
    ]
    assert len(passing.writes) == 1 and silent.writes == []


FLOOD = """\
import sys
print("ready", flush=True)
sys.stderr.write("".join(f"err {i}\\n" for i in range(1, 20001)))
sys.stderr.flush()
print("done", flush=True)
"""


async def test_a_stderr_flood_reaches_the_console_whole_and_in_order(
    tmp_script: ScriptWriter,
) -> None:
    script = tmp_script("flood.py", f"#!{sys.executable}\n{FLOOD}")
    async with run_wsdev(str(script)) as server:
        batches, code = await console_session(console_url(server.ws_url, "/", ""), batches=True)
    envelopes = [line for batch in batches for line in each_line(batch)]
    stderr = [e["data"] for e in envelopes if e["type"] == "stderr"]
    assert stderr == [f"err {i}" for i in range(1, 20001)]
    assert [e["data"] for e in envelopes if e["type"] == "stdout"] == ["ready", "done"]
    assert envelopes[-1]["type"] == "exit" and code == 1000
    # Whole reads, not lines: a few envelopes carry the 20,000 lines.
    assert sum(1 for b in batches if b["type"] == "stderr") < 100
