"""``--loglevel=trace`` logs every message, both ways, for a tool that follows the log."""

from __future__ import annotations

import asyncio
import json
import re
import sys

from websockets.asyncio.client import connect

from conftest import ScriptWriter, run_wsdev, timeout
from wsdev.msgtrace import describe

ECHO = """\
import sys
for line in sys.stdin:
    print(line.rstrip("\\n").upper(), flush=True)
"""
TRACE_LINE = re.compile(
    r"^\w{3}, \d\d \w{3} \d{4} [\d:]{8} [+-]\d{4} \| TRACE  \| websocket  \| "
    r"url:'[^']*' id:'(\d+)' remote:'127\.0\.0\.1' command:'[^']*' origin:'file:' pid:'\d+' \| "
    r"(IN|OUT) (\d+) bytes(?: \(first (\d+) characters\))?: (.*)$"
)


async def test_each_message_is_a_trace_line_with_its_length(tmp_script: ScriptWriter) -> None:
    script = tmp_script("echo.py", ECHO)
    async with run_wsdev("--loglevel=trace", sys.executable, str(script)) as server:
        async with connect(f"{server.ws_url}/") as ws:
            await ws.send('say "hi"\tthere')
            assert await asyncio.wait_for(ws.recv(), timeout(10)) == 'SAY "HI"\tTHERE'
            await ws.send("é" * 300)
            assert await asyncio.wait_for(ws.recv(), timeout(10)) == "É" * 300
        await server.wait_for_log(r"DISCONNECT")
        traced = [m for line in server.lines if (m := TRACE_LINE.match(line))]
    assert [(m.group(2), int(m.group(3))) for m in traced] == [
        ("IN", 14), ("OUT", 14), ("IN", 600), ("OUT", 600)
    ]  # fmt: skip
    assert len({m.group(1) for m in traced}) == 1  # one connection's id on every line
    assert json.loads(traced[0].group(5)) == 'say "hi"\tthere'
    assert traced[2].group(4) == "200" and json.loads(traced[2].group(5)) == "é" * 200


async def test_no_trace_lines_at_the_default_level(tmp_script: ScriptWriter) -> None:
    script = tmp_script("echo.py", ECHO)
    async with run_wsdev(sys.executable, str(script)) as server:
        async with connect(f"{server.ws_url}/") as ws:
            await ws.send("hello")
            await asyncio.wait_for(ws.recv(), timeout(10))
        await server.wait_for_log(r"DISCONNECT")
    assert not any("TRACE" in line for line in server.lines)


def test_binary_messages_are_shown_in_hex() -> None:
    assert describe("OUT", b"\x00\x01\xff", True) == "OUT 3 bytes (binary): 00 01 ff"
    long = describe("IN", bytes(100), True)
    assert long.startswith("IN 100 bytes (binary, first 64): ")
    assert long.split(": ")[1].split() == ["00"] * 64
