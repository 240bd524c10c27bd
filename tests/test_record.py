"""``--record DIR`` (behaviour H1): real wsdev, real WebSocket clients, real programs."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from conftest import ScriptWriter, converse, local_config, run_wsdev, timeout
from test_replay import wsdev_test
from wsdev.config import Config
from wsdev.events import EventBus
from wsdev.recorder import Recorder
from wsdev.server import Server
from wsdev.transcript import load

CHAT = """\
#!/usr/bin/env python3
import os, sys
print("hello " + os.environ["QUERY_STRING"], flush=True)
for line in sys.stdin:
    line = line.rstrip("\\n")
    print("echo: " + line, flush=True)
    print("seen " + line, file=sys.stderr, flush=True)
    if line == "bye":
        sys.exit(3)
"""


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@contextlib.asynccontextmanager
async def recording(
    config: Config, folder: Path, before_start: Callable[[Recorder], object] = lambda r: None
) -> AsyncIterator[tuple[int, Recorder]]:
    """wsdev's server with a recorder into ``folder``, in this loop: (its port, the recorder).
    On leaving, the server closes, then the recorder, as wsdev's shutdown does."""
    bus = EventBus()
    recorder = Recorder(bus, config, folder)
    before_start(recorder)
    server = Server(config, bus)
    await server.start()
    try:
        yield server.port, recorder
    finally:
        await server.close()
        recorder.close()


async def test_every_connection_writes_its_transcript(
    tmp_script: ScriptWriter, tmp_path: Path
) -> None:
    script = tmp_script("chat.py", CHAT)
    out = tmp_path / "recorded"
    async with run_wsdev("--record", str(out), str(script), cwd=tmp_path) as server:
        first = await converse(f"{server.ws_url}/chat?room=1", ["hi", "bye"])
        assert first.messages == ["hello room=1", "echo: hi", "echo: bye"]
        second = await converse(f"{server.ws_url}/", ["x"], read=2)
        assert second.messages == ["hello ", "echo: x"]
        await server.wait_for_log("DISCONNECT", after=0)
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 2
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d_001_chat\.jsonl", names[0])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d_002_root\.jsonl", names[1])

    lines = _lines(out / names[0])
    header = lines[0]
    assert header["command"] == str(script)
    assert (header["mode"], header["path"], header["query"]) == ("text", "/chat", "room=1")
    assert ["Host", f"127.0.0.1:{server.port}"] in header["headers"]  # type: ignore[operator]
    events = [{k: v for k, v in line.items() if k != "t"} for line in lines[1:]]

    def kind(name: str) -> list[dict[str, object]]:
        return [e for e in events if name in e]

    # The client sent both at once: only each kind's own order is fixed, and each echo follows
    # its message.
    assert kind("sent") == [{"sent": "hi"}, {"sent": "bye"}]
    assert kind("received") == [
        {"received": "hello room=1"},
        {"received": "echo: hi"},
        {"received": "echo: bye"},
    ]
    assert kind("stderr") == [{"stderr": "seen hi"}, {"stderr": "seen bye"}]
    assert events.index({"sent": "hi"}) < events.index({"received": "echo: hi"})
    assert events[-2:] == [{"close": 1011, "reason": "exit 3", "by": "program"}, {"exit": 3}]
    offsets = [float(line["t"]) for line in lines[1:] if "t" in line]  # type: ignore[arg-type]
    assert offsets == sorted(offsets)

    ending = [line for line in _lines(out / names[1]) if "close" in line or "exit" in line]
    assert [(e.get("close"), e.get("by"), e.get("exit")) for e in ending] == [
        (1000, "client", None),
        (None, None, 0),
    ]


async def test_binary_messages_are_base64_and_read_back(tmp_path: Path) -> None:
    config = local_config(Path("/bin/cat"), "--binary")
    async with recording(config, tmp_path) as (port, recorder):
        payload = bytes(range(256))
        seen = await converse(f"ws://127.0.0.1:{port}/b", [payload], read=1)
        assert seen.messages == [payload]
    (path,) = recorder.written
    raw = _lines(path)
    assert raw[0]["mode"] == "binary"
    sent = next(line for line in raw if "sent" in line)
    assert sent["binary"] is True and base64.b64decode(str(sent["sent"])) == payload
    transcript = load(path)
    assert [s.data for s in transcript.steps if s.kind in ("sent", "received")] == [payload] * 2


async def test_text_that_needs_escaping_survives_a_flood(
    tmp_script: ScriptWriter, tmp_path: Path
) -> None:
    # Quotes, backslashes, control characters and non-ASCII take the line-by-line path; plain
    # lines the batched one: both must read back as they were sent.
    script = tmp_script(
        "flood.py",
        "#!/usr/bin/env python3\n"
        "import sys\n"
        "for i in range(3000):\n"
        "    print(f'line {i}')\n"
        "sys.stdout.write('crlf\\r\\n')\n"
        "print('quote \" back \\\\ tab \\t é ✓')\n"
        "sys.stdout.flush()\n",
    )
    async with recording(local_config(script), tmp_path) as (port, recorder):
        seen = await converse(f"ws://127.0.0.1:{port}/", within=timeout(20))
    received = [s.data for s in load(recorder.written[0]).steps if s.kind == "received"]
    assert received == seen.messages
    assert received[-1] == 'quote " back \\ tab \t é ✓'


async def test_a_recorded_session_replays_and_fails_after_an_edit(
    tmp_script: ScriptWriter, tmp_path: Path
) -> None:
    script = tmp_script("chat.py", CHAT)
    out = tmp_path / "t"
    async with run_wsdev("--record", str(out), str(script), cwd=tmp_path) as server:
        await _one_at_a_time(f"{server.ws_url}/chat?room=7", ["one", "bye"])
    passed = await wsdev_test(tmp_path, str(out))
    assert passed.returncode == 0, passed.output
    assert "1 passed" in passed.output

    script.write_text(CHAT.replace('"echo: "', '"Echo: "'))
    failed = await wsdev_test(tmp_path, str(out))
    assert failed.returncode == 1
    assert 'message 2, after sent "one":' in failed.output
    assert 'expected: "echo: one"' in failed.output
    assert 'got:      "Echo: one"' in failed.output
    assert "0 passed, 1 failed" in failed.output


async def _one_at_a_time(url: str, messages: list[str]) -> None:
    """A person at the console: read the greeting, then send each message after its answer."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    async with connect(url, open_timeout=timeout(10)) as ws:
        await asyncio.wait_for(ws.recv(), timeout(10))
        for message in messages:
            await ws.send(message)
            try:
                await asyncio.wait_for(ws.recv(), timeout(10))
            except ConnectionClosed:
                break
        await asyncio.wait_for(ws.wait_closed(), timeout(10))


def test_record_flag_and_its_variable(tmp_path: Path) -> None:
    from wsdev.cli import build_config, parse_args
    from wsdev.errors import ConfigError

    made = tmp_path / "new" / "dir"
    config = build_config(parse_args(["--record", str(made), "cat"]))
    assert config.record == made.resolve() and made.is_dir()
    from_env = build_config(parse_args(["cat"]), environ={"WSDEV_RECORD": str(tmp_path)})
    assert from_env.record == tmp_path.resolve()
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match=r"--record=.*cannot make the folder"):
        build_config(parse_args(["--record", str(tmp_path / "file"), "cat"]))


async def test_a_stalled_writer_never_holds_a_connection_back(
    tmp_script: ScriptWriter, tmp_path: Path
) -> None:
    # The writer process stopped (a disk that does not answer): the flood, several times what
    # the pipe holds, still reaches the client at once; once the writer runs again, the
    # transcript is whole.
    config = local_config(tmp_script("flood.sh", "#!/bin/sh\nexec seq 1 200000\n"))
    out = tmp_path / "t"
    out.mkdir()

    def stop_the_writer(recorder: Recorder) -> None:
        os.kill(recorder.writer_pid, signal.SIGSTOP)

    async with recording(config, out, stop_the_writer) as (port, recorder):
        try:
            seen = await converse(f"ws://127.0.0.1:{port}/", within=timeout(30))
            assert len(seen.messages) == 200000
            assert recorder.written == []  # nothing written while the flood was served
        finally:
            os.kill(recorder.writer_pid, signal.SIGCONT)
    (path,) = recorder.written
    received = [s.data for s in load(path).steps if s.kind == "received"]
    assert received == [str(i) for i in range(1, 200001)]


async def test_a_transcript_that_cannot_be_written_is_reported_and_the_connection_goes_on(
    tmp_script: ScriptWriter, tmp_path: Path
) -> None:
    script = tmp_script("chat.py", CHAT)
    out = tmp_path / "t"
    async with run_wsdev("--record", str(out), str(script), cwd=tmp_path) as server:
        out.rmdir()  # the folder is gone: the transcript cannot be made
        seen = await converse(f"{server.ws_url}/", ["hi", "bye"])
        assert seen.messages == ["hello ", "echo: hi", "echo: bye"]
        await server.wait_for_log(r"cannot record connection #1: .*No such file")
        out.mkdir()
        again = await converse(f"{server.ws_url}/", ["bye"])
        assert again.messages == ["hello ", "echo: bye"]
        await server.wait_for_log("DISCONNECT", after=0)
    assert len(list(out.iterdir())) == 1


async def test_recording_stops_with_one_line_if_the_writer_dies(
    tmp_script: ScriptWriter, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def kill_the_writer(recorder: Recorder) -> None:
        os.kill(recorder.writer_pid, signal.SIGKILL)

    config = local_config(tmp_script("chat.py", CHAT))
    async with recording(config, tmp_path, kill_the_writer) as (port, recorder):
        for _ in range(2):
            seen = await converse(f"ws://127.0.0.1:{port}/", ["bye"])
            assert seen.messages == ["hello ", "echo: bye"]
    assert recorder.written == []
    stopped = [r.getMessage() for r in caplog.records if "recording stopped" in r.getMessage()]
    assert len(stopped) == 1, caplog.text


def test_the_writer_process_reads_frames_however_they_are_cut(tmp_path: Path) -> None:
    import io
    import threading

    from wsdev.recordwriter import FRAME, run

    def frame(kind: bytes, t: float, payload: bytes) -> bytes:
        return FRAME.pack(kind, 7, t, len(payload)) + payload

    header = b'{"wsdev":"0","format":1,"command":"x","path":"/"}\n'
    frames = b"".join(
        [
            frame(b"O", 0.0, b"a.jsonl\0" + header),
            frame(b"T", 0.5, b'one\ntwo "quoted"\n'),
            frame(b"S", 0.75, "é".encode()),
            frame(b"B", 1.0, b"\x00\xff"),
            frame(b"E", 1.25, b"oops"),
            frame(b"X", 1.5, b'{"t":1.5,"close":1000,"reason":"","by":"client"}\n'),
        ]
    )
    read_end, write_end = os.pipe()

    def feed() -> None:
        for at in range(0, len(frames), 7):  # cut everywhere, headers included
            os.write(write_end, frames[at : at + 7])
        os.close(write_end)

    feeder = threading.Thread(target=feed)
    feeder.start()
    reports = io.BytesIO()
    run(tmp_path, read_end, reports)
    feeder.join()
    os.close(read_end)
    assert json.loads(reports.getvalue()) == {"opened": str(tmp_path / "a.jsonl")}
    steps = [(s.kind, s.data) for s in load(tmp_path / "a.jsonl").steps]
    assert steps == [
        ("received", "one"),
        ("received", 'two "quoted"'),
        ("sent", "é"),
        ("received", b"\x00\xff"),
        ("stderr", "oops"),
        ("close", 1000),
    ]
