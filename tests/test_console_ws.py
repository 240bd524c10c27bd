"""The console's WebSocket envelope and the tools' event feed (behaviour C3), at the protocol level.

The console talks to ``/_wsdev/ws?path=…&query=…``; its program must see exactly the environment
a plain client at that path would give it, and only the console sees its own stderr and exit.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import websockets
from websockets.asyncio.client import connect
from websockets.typing import Origin

from conftest import ScriptWriter, converse, run_wsdev, timeout

ENV_DUMP = "#!/bin/sh\nenv\necho 'to stderr' >&2\nsleep 0.2\nexit 2\n"

# Headers differ between two handshakes by nature; everything else must be equal.
PER_CONNECTION = {"UNIQUE_ID", "REMOTE_PORT", "HTTP_SEC_WEBSOCKET_KEY"}


def each_line(envelope: Any) -> list[Any]:
    """An envelope as one envelope per line: the lines of one read of a pipe come as one
    ``{"type":…,"lines":[…]}`` (behaviour C6), and how a program's output falls into reads is
    not what these tests check."""
    if isinstance(envelope, dict) and isinstance(envelope.get("lines"), list):
        return [{"type": envelope["type"], "data": line} for line in envelope["lines"]]
    return [envelope]


async def console_session(
    url: str, send: tuple[str, ...] = (), *, batches: bool = False
) -> tuple[list[Any], int | None]:
    """Every envelope the console's socket gives, one per line unless ``batches``."""
    envelopes: list[Any] = []
    # The console page's own origin: wsdev's routes answer its own pages only (behaviour B10).
    page = "http://" + urlsplit(url).netloc
    async with connect(url, origin=Origin(page), compression=None) as ws:
        for message in send:
            await ws.send(message)
        try:
            while True:
                raw = await asyncio.wait_for(ws.recv(), timeout(10))
                envelope = json.loads(raw) if isinstance(raw, str) else raw
                envelopes.extend([envelope] if batches else each_line(envelope))
        except websockets.ConnectionClosed:
            pass
        rcvd = ws.protocol.close_rcvd
        return envelopes, rcvd.code if rcvd else None


def console_url(base: str, path: str, query: str) -> str:
    return f"{base}/_wsdev/ws?path={quote(path, safe='')}&query={quote(query, safe='')}"


async def test_console_program_sees_a_plain_clients_environment(tmp_script: ScriptWriter) -> None:
    script = tmp_script("env.sh", ENV_DUMP)
    async with run_wsdev(str(script)) as server:
        plain = await converse(server.ws_url + "/room/7?user=ada&x=%20", origin=server.http_url)
        envelopes, _ = await console_session(
            console_url(server.ws_url, "/room/7", "user=ada&x=%20")
        )
    plain_env = dict(str(m).split("=", 1) for m in plain.messages)
    stdout = [e["data"] for e in envelopes if isinstance(e, dict) and e["type"] == "stdout"]
    console_env = dict(line.split("=", 1) for line in stdout)
    differing = {k for k in plain_env if plain_env[k] != console_env.get(k)}
    assert set(plain_env) == set(console_env)
    assert differing <= PER_CONNECTION, {k: (plain_env[k], console_env[k]) for k in differing}
    assert console_env["PATH_INFO"] == "/room/7"
    assert console_env["REQUEST_URI"] == "/room/7?user=ada&x=%20"


async def test_console_gets_hello_stderr_and_exit_in_order(tmp_script: ScriptWriter) -> None:
    script = tmp_script("env.sh", ENV_DUMP)
    async with run_wsdev(str(script)) as server:
        envelopes, code = await console_session(console_url(server.ws_url, "/p", "q=1"))
        plain = await converse(server.ws_url + "/p?q=1")
    kinds = [e["type"] for e in envelopes]
    assert kinds[0] == "hello"
    hello = envelopes[0]
    assert hello["env"]["PATH_INFO"] == "/p" and hello["env"]["QUERY_STRING"] == "q=1"
    assert isinstance(hello["pid"], int) and hello["seq"] >= 1
    assert {"type": "stderr", "data": "to stderr"} in envelopes
    assert envelopes[-1] == {"type": "exit", "status": "exit 2", "code": 2, "signal": None}
    assert code == 1011
    # A plain client never sees stderr or envelopes.
    assert all("to stderr" not in str(m) for m in plain.messages)
    assert all(not str(m).startswith("{") for m in plain.messages)


async def test_console_input_reaches_the_program(tmp_script: ScriptWriter) -> None:
    script = tmp_script("echo.sh", "#!/bin/sh\nhead -n 2\n")
    async with run_wsdev(str(script)) as server:
        envelopes, code = await console_session(
            console_url(server.ws_url, "/", ""), send=("one", "two ✓")
        )
    assert [e["data"] for e in envelopes if e["type"] == "stdout"] == ["one", "two ✓"]
    assert code == 1000


async def test_one_read_of_several_lines_is_one_envelope_and_one_line_keeps_data(
    tmp_script: ScriptWriter,
) -> None:
    # Each printf is one write, under PIPE_BUF, so each is one read of the pipe as long as the
    # next one waits: the program writes its single lines only once told to.
    script = tmp_script(
        "batch.sh",
        "#!/bin/sh\nprintf 'a\\nb ✓\\n'\nprintf 'e1\\ne2\\n' >&2\n"
        "read line\nprintf '%s\\n' \"$line\"\nprintf 'e3\\n' >&2\nread end\n",
    )
    async with run_wsdev(str(script)) as server:
        url = console_url(server.ws_url, "/", "")
        async with connect(url, origin=Origin(server.http_url), compression=None) as ws:

            async def next_lines(count: int) -> list[Any]:
                got: list[Any] = []
                while len(got) < count:
                    envelope = json.loads(await asyncio.wait_for(ws.recv(), timeout(10)))
                    if envelope["type"] in ("stdout", "stderr"):
                        got.append(envelope)
                return sorted(got, key=lambda e: str(e["type"]))

            assert await next_lines(2) == [
                {"type": "stderr", "lines": ["e1", "e2"]},
                {"type": "stdout", "lines": ["a", "b ✓"]},
            ]
            await ws.send("x")
            assert await next_lines(2) == [
                {"type": "stderr", "data": "e3"},
                {"type": "stdout", "data": "x"},
            ]


async def test_console_is_told_why_it_was_refused(tmp_script: ScriptWriter) -> None:
    script = tmp_script("echo.sh", "#!/bin/sh\nexec cat\n")
    async with run_wsdev("--maxforks=1", str(script)) as server:
        async with connect(server.ws_url + "/"):
            envelopes, code = await console_session(console_url(server.ws_url, "/", ""))
    assert envelopes[0]["type"] == "error" and envelopes[0]["status"] == 429
    assert code == 1013


async def test_console_restart_envelope_before_1012(tmp_path: Path) -> None:
    script = tmp_path / "bot.sh"
    script.write_text("#!/bin/sh\necho v1\nexec cat\n")
    script.chmod(0o755)
    async with run_wsdev("--no-reload=false", "./bot.sh", cwd=tmp_path) as server:
        await server.wait_for_log(r"Restarting on changes to")
        async with connect(console_url(server.ws_url, "/", "")) as ws:
            assert json.loads(await ws.recv())["type"] == "hello"
            assert json.loads(await ws.recv()) == {"type": "stdout", "data": "v1"}
            script.write_text("#!/bin/sh\necho v2\nexec cat\n")
            assert json.loads(await asyncio.wait_for(ws.recv(), timeout(10))) == {
                "type": "restart",
                "files": ["bot.sh"],
            }
            await asyncio.wait_for(ws.wait_closed(), timeout(10))
            assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 1012


async def test_event_feed_streams_every_connection(tmp_script: ScriptWriter) -> None:
    script = tmp_script("err.sh", "#!/bin/sh\necho out\necho oops >&2\n")
    async with run_wsdev(str(script)) as server:
        async with connect(server.ws_url + "/_wsdev/events") as feed:
            await converse(server.ws_url + "/x")
            seen: list[dict[str, Any]] = []
            while not any(e["type"] == "Disconnected" for e in seen):
                seen.append(json.loads(await asyncio.wait_for(feed.recv(), timeout(10))))
    kinds = [e["type"] for e in seen]
    assert kinds[0] == "Connected" and seen[0]["conn"]["path"] == "/x"
    assert {"MessagesOut", "StderrLine", "ProcessStarted"} <= set(kinds)
    stderr = next(e for e in seen if e["type"] == "StderrLine")
    assert stderr["line"] == "oops"
    done = seen[-1]
    assert done["exit"] == {"status": "exit 0", "code": 0, "signal": None}
