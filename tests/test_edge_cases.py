"""Behaviours from behaviour A and B at their edges that no other test pins down.

Unusual request targets and headers compared with websocketd's environment byte for byte, no
descriptor or zombie leak under rapid connect/disconnect, the second Ctrl+C, children that close
stdout early or leave it to a grandchild, and the stdout line limit at its exact boundary.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys

import pytest
from websockets.asyncio.client import connect

from conftest import ScriptWriter, converse, requires_websocketd, run_websocketd, run_wsdev, timeout
from procfs import children

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

KEY_HEADERS = (
    b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
)


async def _env_over_raw_socket(port: int, target: bytes, headers: bytes) -> dict[str, str]:
    """Upgrade by hand (so headers go out exactly as written) and collect `env` from the frames."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET " + target + b" HTTP/1.1\r\n" + headers + KEY_HEADERS + b"\r\n")
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    env: dict[str, str] = {}
    while True:
        try:
            first, second = await reader.readexactly(2)
        except asyncio.IncompleteReadError:
            break  # websocketd 0.4.1 ends without a Close frame
        size = second & 0x7F
        if size == 126:
            size = int.from_bytes(await reader.readexactly(2), "big")
        elif size == 127:
            size = int.from_bytes(await reader.readexactly(8), "big")
        payload = await reader.readexactly(size)
        if first & 0x0F == 8:
            break
        name, _, value = payload.decode().partition("=")
        env[name] = value
    writer.close()
    return env


REQUESTS = [
    (b"/a%2Fb/c%20d?x=1%202&y=+&z", b"Host: 127.0.0.1\r\n"),
    (b"/%E2%9C%93/caf%C3%A9?q=%E2%9C%93", b"Host: 127.0.0.1\r\n"),
    (b"/p+q?", b"Host: [::1]:9999\r\n"),
    (b"/v6", b"Host: [::1]\r\n"),
    (b"/rep", b"Host: example.com\r\nX-Rep: a\r\nX-Rep: b\r\nX-Dash-Name: v\r\nX-Empty:\r\n"),
    (b"/utf", b"Host: 127.0.0.1\r\nX-Utf: caf\xc3\xa9\r\n"),
]
# Differ by design: who serves, per-connection ids and ports, websocketd 0.4.1's old CGI name.
DIFFER = {"SERVER_SOFTWARE", "UNIQUE_ID", "REMOTE_PORT", "GATEWAY_INTERFACE"}


@requires_websocketd
async def test_environment_matches_websocketd_for_unusual_requests(
    tmp_script: ScriptWriter,
) -> None:
    script = tmp_script("env.sh", "#!/bin/sh\nenv\n")
    # A Host that is not this machine needs --allow-host on loopback (behaviour B10).
    ours_running = run_wsdev("--allow-host=example.com", str(script))
    async with ours_running as ours, run_websocketd(str(script)) as theirs:
        for target, headers in REQUESTS:
            mine = await _env_over_raw_socket(ours.port, target, headers)
            ref = await _env_over_raw_socket(theirs.port, target, headers)
            assert set(mine) == set(ref), (target, set(mine) ^ set(ref))
            differing = {k: (mine[k], ref[k]) for k in ref if mine[k] != ref[k]}
            assert differing.keys() <= DIFFER, (target, headers, differing)


def _fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _children(pid: int) -> list[str]:
    """The state letter of every program ``pid`` runs (``procfs.children``)."""
    return list(children(pid).values())


@linux_only
async def test_rapid_connect_disconnect_leaks_nothing(tmp_script: ScriptWriter) -> None:
    script = tmp_script("cat.sh", "#!/bin/sh\nexec cat\n")
    async with run_wsdev(str(script)) as server:
        pid = server.proc.pid
        assert (await converse(server.ws_url + "/", ["warm"], read=1)).messages == ["warm"]
        await server.wait_for_log(r"\| DISCONNECT$")
        fds_before = _fd_count(pid)

        async def one(i: int) -> None:
            ws = await connect(server.ws_url + "/", open_timeout=timeout(10))
            if i % 2:
                await ws.send("hi")
                ws.transport.abort()  # vanish without a Close
            else:
                await ws.close()

        count = 120
        await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(count))), timeout(10))

        async def all_disconnected() -> None:
            while sum(line.endswith("| DISCONNECT") for line in server.lines) < count + 1:
                server._changed.clear()
                await server._changed.wait()

        await asyncio.wait_for(all_disconnected(), timeout(10))
        assert _children(pid) == []  # every child reaped: none running, no zombie
        assert _fd_count(pid) == fds_before
        assert not [line for line in server.lines if "| ERROR" in line]


async def test_second_ctrl_c_exits_at_once_and_kills_stubborn_children(
    tmp_script: ScriptWriter,
) -> None:
    script = tmp_script(
        "stubborn.sh", "#!/bin/sh\ntrap '' INT TERM\necho $$\nwhile :; do sleep 1; done\n"
    )
    async with run_wsdev("--closems=5000", str(script)) as server:
        clients = [await connect(server.ws_url + "/") for _ in range(3)]
        pids = [int(await asyncio.wait_for(ws.recv(), timeout(10))) for ws in clients]
        server.proc.send_signal(signal.SIGINT)
        await server.wait_for_log("Shutting down")
        server.proc.send_signal(signal.SIGINT)
        # With closems=5000 the clean path would take > 5 s; the second Ctrl+C must not wait.
        await asyncio.wait_for(server.proc.wait(), timeout(3))
        assert server.proc.returncode != 0

        async def all_gone() -> None:
            while any(_running(p) for p in pids):
                await asyncio.sleep(0.02)  # no event tells us an unrelated process ended

        await asyncio.wait_for(all_gone(), timeout(3))
        assert not [line for line in server.stderr_lines if "Traceback" in line]


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


async def test_child_closing_stdout_but_running_is_ended(tmp_script: ScriptWriter) -> None:
    # behaviour A4: stdout at EOF → lines sent, then the escalation, then the Close (B2).
    script = tmp_script("half.sh", "#!/bin/sh\necho hello\nexec 1>&-\nexec sleep 30\n")
    async with run_wsdev(str(script)) as server:
        seen = await converse(server.ws_url + "/", within=5)
    assert seen.messages == ["hello"]
    assert (seen.close_code, seen.close_reason) == (1011, "signal SIGINT")


async def test_grandchild_holding_stdout_does_not_hang_the_connection(
    tmp_script: ScriptWriter,
) -> None:
    # The child exits 0 but an escaped (setsid) grandchild keeps stdout open: websocketd waits
    # for the grandchild; wsdev sends what arrived and closes with the child's status.
    script = tmp_script(
        "escape.sh",
        "#!/bin/sh\necho hi\nsetsid sh -c 'echo late; exec sleep 30' 2>/dev/null &\n"
        # The pause lets the grandchild leave the group before the child exits; otherwise the
        # group's SIGINT (behaviour B8) rightly ends it first.
        "echo pid=$!\nsleep 0.3\nexit 0\n",
    )
    async with run_wsdev(str(script)) as server:
        seen = await converse(server.ws_url + "/", within=8)
    pids = [int(str(m)[4:]) for m in seen.messages if str(m).startswith("pid=")]
    for pid in pids:
        # wsdev's shutdown already ended it (adopted as an orphan, behaviour B6); make sure anyway.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert seen.messages[0] == "hi"
    assert sorted(map(str, seen.messages[1:])) == sorted(["late", f"pid={pids[0]}"])
    assert (seen.close_code, seen.close_reason) == (1000, "exit 0")


async def test_line_exactly_at_the_limit_passes_and_one_more_byte_closes_1009(
    tmp_script: ScriptWriter,
) -> None:
    script = tmp_script(
        "long.sh", '#!/bin/sh\necho before\nhead -c "$QUERY_STRING" /dev/zero | tr "\\0" y\necho\n'
    )
    async with run_wsdev("--max-line-bytes=1000", str(script)) as server:
        at_limit = await converse(server.ws_url + "/?1000")
        over = await converse(server.ws_url + "/?1001")
        await server.wait_for_log(r"ERROR .*longer than 1000 bytes")
    assert at_limit.messages == ["before", "y" * 1000]
    assert at_limit.close_code == 1000
    assert over.messages == ["before"]
    assert over.close_code == 1009
