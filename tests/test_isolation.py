"""What one client can make a program see, and what it can see of other connections.

- Header names that are valid HTTP tokens but not valid shell names (``X.Dot``, ``X~T``) become
  ``HTTP_*`` variables as websocketd makes them; none can set or override a variable that is not
  ``HTTP_*`` (``Path``, ``Remote-Addr``); names that are not tokens at all are refused with 400
  (``test_bad_input.py``). Header values never carry CR or LF into the environment.
- No client reads another connection's stderr: each console sees its own program's stderr only,
  and plain clients see none, while several run side by side.
"""

from __future__ import annotations

import asyncio
import json
import sys
from urllib.parse import quote

from websockets.asyncio.client import connect
from websockets.typing import Origin

from conftest import (
    ScriptWriter,
    Transcript,
    converse,
    requires_websocketd,
    run_websocketd,
    run_wsdev,
    timeout,
)
from rawhttp import upgrade_headers
from test_console_ws import each_line

ENV_JSON = f"#!{sys.executable}\nimport json, os\nprint(json.dumps(dict(os.environ)))\n"

ODD_HEADERS = [
    ("X.Dot", "dot"),
    ("X~Tilde", "tilde"),
    ("X!Bang", "bang"),
    ("X_Under", "underscore"),
    ("X-Under", "dash"),
    ("Path", "/evil/bin"),
    ("Remote-Addr", "203.0.113.9"),
    ("Query-String", "evil=1"),
    ("Content-Length", "99"),
    ("X-Encoded", "a%0d%0ab"),
    ("X-Tab", "a\tb"),
    ("X-Latin", "caf\xe9"),
]


async def environment(port: int) -> dict[str, str]:
    """The environment a program gets for an upgrade carrying ODD_HEADERS, sent byte-exact."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = ["GET /p?q=1 HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{name}: {value}" for name, value in [*upgrade_headers(), *ODD_HEADERS]]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout(10))
        assert head.startswith(b"HTTP/1.1 101"), head
        _, second = await asyncio.wait_for(reader.readexactly(2), timeout(10))
        size = second & 0x7F
        if size == 126:
            size = int.from_bytes(await reader.readexactly(2), "big")
        payload = await reader.readexactly(size)
    finally:
        writer.close()
    environ: dict[str, str] = json.loads(payload)
    return environ


async def test_odd_header_names_become_http_variables_and_nothing_else(
    tmp_script: ScriptWriter,
) -> None:
    script = tmp_script("env.py", ENV_JSON)
    async with run_wsdev(str(script)) as server:
        env = await environment(server.port)
    assert env["HTTP_X.DOT"] == "dot"
    assert env["HTTP_X~TILDE"] == "tilde"
    assert env["HTTP_X!BANG"] == "bang"
    # Two names that map to one variable are joined, as repeated headers are (A2).
    assert env["HTTP_X_UNDER"] == "underscore, dash"
    # Headers named like CGI variables stay under HTTP_: the real ones are untouched.
    assert env["HTTP_PATH"] == "/evil/bin" and env["PATH"] != "/evil/bin"
    assert env["HTTP_REMOTE_ADDR"] == "203.0.113.9" and env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["HTTP_QUERY_STRING"] == "evil=1" and env["QUERY_STRING"] == "q=1"
    assert env["CONTENT_LENGTH"] == ""
    assert env["HTTP_X_ENCODED"] == "a%0d%0ab"  # left as sent: nothing decodes a header value
    # The byte as sent (not UTF-8: Python shows it as a surrogate escape).
    assert env["HTTP_X_LATIN"].encode("utf-8", "surrogateescape") == b"caf\xe9"
    for name, value in env.items():
        assert "=" not in name and "\0" not in name, name
        assert "\r" not in value and "\n" not in value, (name, value)


@requires_websocketd
async def test_odd_header_names_map_to_the_same_variables_as_websocketd(
    tmp_script: ScriptWriter,
) -> None:
    script = tmp_script("env.py", ENV_JSON)
    async with run_wsdev(str(script)) as server:
        ours = await environment(server.port)
    async with run_websocketd(str(script)) as server:
        theirs = await environment(server.port)
    names = {name for name in theirs if name.startswith("HTTP_")}
    assert names == {name for name in ours if name.startswith("HTTP_")}
    differing = {name for name in names if ours[name] != theirs[name]}
    # websocketd passes X_Under and X-Under as two HTTP_X_UNDER entries (a program sees the
    # first); wsdev joins them as it joins a repeated header.
    assert differing <= {"HTTP_SEC_WEBSOCKET_KEY", "HTTP_X_UNDER"}, {
        n: (ours[n], theirs[n]) for n in differing
    }


# ---------------------------------------------------------------------- stderr isolation

TALKER = (
    "#!/bin/sh\n"
    'echo "out $UNIQUE_ID"\necho "err $UNIQUE_ID" >&2\n'
    'read line\necho "err2 $UNIQUE_ID $line" >&2\necho "done $UNIQUE_ID"\n'
)


async def console_session(port: int, said: str) -> tuple[str, list[dict[str, object]]]:
    """One console connection: its program's id, and every envelope the console received."""
    url = f"ws://127.0.0.1:{port}/_wsdev/ws?path={quote('/')}&query="
    envelopes: list[dict[str, object]] = []
    async with connect(url, origin=Origin(f"http://127.0.0.1:{port}"), compression=None) as ws:
        async for raw in ws:
            for envelope in each_line(json.loads(raw)):
                envelopes.append(envelope)
                if envelope.get("type") == "stdout" and str(envelope["data"]).startswith("out "):
                    await ws.send(said)
    uid = next(
        str(e["data"]).split()[1]
        for e in envelopes
        if e.get("type") == "stdout" and str(e["data"]).startswith("out ")
    )
    return uid, envelopes


async def test_no_client_reads_another_connections_stderr(tmp_script: ScriptWriter) -> None:
    script = tmp_script("talker.sh", TALKER)
    async with run_wsdev(str(script)) as server:
        consoles = [console_session(server.port, f"console{i}") for i in range(4)]
        plains = [converse(server.ws_url + "/", [f"plain{i}"]) for i in range(4)]
        results = await asyncio.wait_for(asyncio.gather(*consoles, *plains), timeout(20))
    for index, result in enumerate(results[:4]):
        assert isinstance(result, tuple)
        uid, envelopes = result
        stderr = [str(e["data"]) for e in envelopes if e.get("type") == "stderr"]
        assert stderr == [f"err {uid}", f"err2 {uid} console{index}"], stderr
    for plain in results[4:]:
        assert isinstance(plain, Transcript)
        assert [str(m).split()[0] for m in plain.messages] == ["out", "done"]
