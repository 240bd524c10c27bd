"""Side by side with websocketd: the same scenario against both, and what a client sees compared.

Where they differ, they differ exactly as behaviour B says (a proper Close frame, the last line
without a newline, …); every such difference is asserted explicitly here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import websockets
from websockets.asyncio.client import connect

from conftest import (
    ScriptWriter,
    Transcript,
    converse,
    requires_websocketd,
    run_websocketd,
    run_wsdev,
)

pytestmark = [requires_websocketd, pytest.mark.websocketd]

# Differ by design: who we are, per-connection ids and ports, the CGI version websocketd 0.4.1
# still calls "websocketd-CGI/0.1" (its later releases say CGI/1.1, as we do).
EXPECTED_TO_DIFFER = {
    "SERVER_SOFTWARE",
    "UNIQUE_ID",
    "REMOTE_PORT",
    "SERVER_PORT",
    "GATEWAY_INTERFACE",
    "HTTP_SEC_WEBSOCKET_KEY",
    "HTTP_HOST",
}


async def both(
    script: Path, *flags: str, path: str = "/", send: tuple[str | bytes, ...] = ()
) -> tuple[Transcript, Transcript]:
    async with run_wsdev(*flags, str(script)) as server:
        ours = await converse(server.ws_url + path, send, origin="http://localhost")
    async with run_websocketd(*flags, str(script)) as server:
        theirs = await converse(server.ws_url + path, send, origin="http://localhost")
    return ours, theirs


def as_env(messages: list[str | bytes]) -> dict[str, str]:
    return dict(str(m).split("=", 1) for m in messages if "=" in str(m))


async def test_environment_matches(tmp_script: ScriptWriter) -> None:
    script = tmp_script("env.sh", "#!/bin/sh\nenv\n")
    ours, theirs = await both(script, path="/a%20b/c?x=%20y&z=1")
    our_env, their_env = as_env(ours.messages), as_env(theirs.messages)
    assert set(our_env) == set(their_env)
    differing = {k for k in their_env if our_env[k] != their_env[k]}
    assert differing <= EXPECTED_TO_DIFFER, {k: (our_env[k], their_env[k]) for k in differing}
    assert our_env["GATEWAY_INTERFACE"] == "CGI/1.1"
    assert our_env["SERVER_SOFTWARE"].startswith("wsdev/")
    for key in ("AUTH_TYPE", "CONTENT_LENGTH", "CONTENT_TYPE", "REMOTE_IDENT", "REMOTE_USER"):
        assert our_env[key] == ""


async def test_echo_unicode_empty_and_long_lines(tmp_script: ScriptWriter) -> None:
    script = tmp_script("echo.sh", "#!/bin/sh\nexec cat\n")
    messages = ("plain", "", "ünïcødé ✓ 🚀", "long " * 20000)
    async with run_wsdev(str(script)) as server:
        ours = await converse(server.ws_url + "/", messages, read=len(messages))
    async with run_websocketd(str(script)) as server:
        theirs = await converse(server.ws_url + "/", messages, read=len(messages))
    assert ours.messages == theirs.messages == list(messages)


async def test_crlf_empty_lines_and_exit(tmp_script: ScriptWriter) -> None:
    script = tmp_script("lines.sh", "#!/bin/sh\nprintf 'a\\r\\nb\\n\\n\\r\\nc\\n'\nexit 0\n")
    ours, theirs = await both(script)
    assert ours.messages == theirs.messages == ["a", "b", "", "", "c"]
    # B2: we close properly; websocketd 0.4.1 drops the TCP connection without a Close frame.
    assert (ours.close_code, ours.close_reason) == (1000, "exit 0")
    assert theirs.close_code is None


async def test_last_line_without_newline(tmp_script: ScriptWriter) -> None:
    script = tmp_script("partial.sh", "#!/bin/sh\nprintf 'one\\ntwo'\n")
    ours, theirs = await both(script)
    assert ours.messages[0] == theirs.messages[0] == "one"
    assert ours.messages == ["one", "two"]  # B1: nothing lost


async def test_nonzero_exit(tmp_script: ScriptWriter) -> None:
    script = tmp_script("fail.sh", "#!/bin/sh\necho bye\nexit 4\n")
    ours, theirs = await both(script)
    assert ours.messages == theirs.messages == ["bye"]
    assert (ours.close_code, ours.close_reason) == (1011, "exit 4")


async def test_binary_mode(tmp_script: ScriptWriter) -> None:
    script = tmp_script("echo.sh", "#!/bin/sh\nexec cat\n")
    payload = bytes(range(256)) * 64

    async def roundtrip(url: str) -> bytes:
        async with connect(url) as ws:
            await ws.send(payload)
            got = b""
            while len(got) < len(payload):
                chunk = await ws.recv()
                assert isinstance(chunk, bytes)
                got += chunk
            return got

    async with run_wsdev("--binary", str(script)) as server:
        ours = await roundtrip(server.ws_url + "/")
    async with run_websocketd("--binary", str(script)) as server:
        theirs = await roundtrip(server.ws_url + "/")
    assert ours == theirs == payload


async def test_dir_mapping(tmp_path: Path) -> None:
    root = tmp_path / "scripts"
    (root / "sub").mkdir(parents=True)
    script = root / "sub" / "show.sh"
    script.write_text('#!/bin/sh\necho "$SCRIPT_NAME|$PATH_INFO|$QUERY_STRING"\n')
    script.chmod(0o755)
    results: list[list[list[str | bytes | int]]] = []
    for start in (run_wsdev, run_websocketd):
        async with start(f"--dir={root}") as server:
            seen: list[list[str | bytes | int]] = []
            for path in ("/sub/show.sh", "/sub/show.sh/x/y?q=1"):
                seen.append(list((await converse(server.ws_url + path)).messages))
            for missing in ("/sub/none.sh", "/sub"):
                with pytest.raises(websockets.InvalidStatus) as refused:
                    await connect(server.ws_url + missing)
                seen.append([refused.value.response.status_code])
            results.append(seen)
    assert results[0] == results[1]
    assert results[0][1] == ["/sub/show.sh|/x/y|q=1"]


async def test_maxforks(tmp_script: ScriptWriter) -> None:
    script = tmp_script("echo.sh", "#!/bin/sh\nexec cat\n")
    statuses = []
    for start in (run_wsdev, run_websocketd):
        async with start("--maxforks=1", str(script)) as server:
            async with connect(server.ws_url + "/"):
                with pytest.raises(websockets.InvalidStatus) as refused:
                    await connect(server.ws_url + "/")
                statuses.append(refused.value.response.status_code)
    assert statuses == [429, 429]


def _normalise(line: str) -> str:
    """A log line without its time, ids, ports, pids and the server's name for the command."""
    line = re.sub(
        r"^[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4}", "TIME", line
    )
    line = re.sub(r"id:'\d+'", "id:ID", line)
    line = re.sub(r"pid:'\d+'", "pid:PID", line)
    line = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", line)
    return line


async def test_stderr_and_session_log_lines(tmp_script: ScriptWriter) -> None:
    script = tmp_script("err.sh", "#!/bin/sh\necho 'something broke' >&2\nsleep 0.2\n")
    logs = []
    for start in (run_wsdev, run_websocketd):
        async with start(str(script)) as server:
            await converse(server.ws_url + "/", origin="http://localhost")
            await server.wait_for_log(r"DISCONNECT")
            stderr_line = (await server.wait_for_log(r"\| stderr +\|.*something broke")).string
            connect_line = (await server.wait_for_log(r"\| CONNECT$")).string
            disconnect = (await server.wait_for_log(r"\| DISCONNECT$")).string
            logs.append([_normalise(stderr_line), _normalise(connect_line), _normalise(disconnect)])
    assert logs[0] == logs[1]


async def test_reverselookup_names_the_client(tmp_script: ScriptWriter) -> None:
    script = tmp_script("env.sh", "#!/bin/sh\nenv\n")
    ours, theirs = await both(script, "--reverselookup")
    our_host = as_env(ours.messages)["REMOTE_HOST"]
    assert our_host == as_env(theirs.messages)["REMOTE_HOST"]
    assert our_host != "127.0.0.1"  # the loopback address has a name (localhost) here
    without, _ = await both(script)
    assert as_env(without.messages)["REMOTE_HOST"] == "127.0.0.1"
