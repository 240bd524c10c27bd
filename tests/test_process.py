"""Ending programs: the SIGINT/SIGTERM/SIGKILL escalation, process groups, shutdown (A4, B6, B8).

Signal timings are compared with websocketd itself when it is installed: the same recording
child runs under both and the offsets must agree within a tolerance.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import connect

from conftest import (
    ScriptWriter,
    ServerProcess,
    requires_websocketd,
    run_websocketd,
    run_wsdev,
    timeout,
)

RECORDER = f"""#!{sys.executable}
# Records when stdin reaches EOF and which signals arrive, then keeps running (heartbeats).
# Each record is one os.write to an O_APPEND descriptor: a buffered file would raise "reentrant
# call" when a signal handler writes while the heartbeat loop is inside its own write.
import os, signal, sys, time
out = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
ignore = len(sys.argv) > 2
def record(kind):
    os.write(out, f"{{kind}} {{time.monotonic()}}\\n".encode())
def on_signal(signum, frame):
    record(signal.Signals(signum).name)
    if not ignore:
        sys.exit(0)
signal.signal(signal.SIGINT, on_signal)
signal.signal(signal.SIGTERM, on_signal)
print("ready", flush=True)
sys.stdin.read()
record("EOF")
while True:
    time.sleep(0.005)
    record("ALIVE")
"""

# Scheduling on a loaded 2-core machine: generous, but far below the 250 ms between steps.
TOLERANCE_MS = 60 * float(os.environ.get("WSDEV_TEST_TIMEOUT_SCALE", "1"))


def offsets(record: Path) -> dict[str, float]:
    """Milliseconds from stdin EOF to each signal, and to the last heartbeat (the death)."""
    rows = [line.split() for line in record.read_text().splitlines() if line.strip()]
    eof = next(float(t) for kind, t in rows if kind == "EOF")
    result = {kind: (float(t) - eof) * 1000 for kind, t in rows if kind not in ("EOF", "ALIVE")}
    alive = [float(t) for kind, t in rows if kind == "ALIVE"]
    result["last_alive"] = (alive[-1] - eof) * 1000 if alive else 0.0
    return result


async def run_recorder(
    start: Callable[..., AbstractAsyncContextManager[ServerProcess]],
    script: Path,
    record: Path,
    *extra: str,
) -> dict[str, float]:
    async with start(
        *extra, str(script), str(record), *(["ignore"] if "ignore" in script.name else [])
    ) as server:
        async with connect(server.ws_url + "/") as ws:
            assert await ws.recv() == "ready"
        await server.wait_for_log(r"DISCONNECT")
        # The escalation ends at most 850 ms after EOF; wait for the recorder to stop writing.
        await _wait_until_dead(record)
    return offsets(record)


async def _wait_until_dead(record: Path) -> None:
    async def settle() -> None:
        size = -1
        while size != record.stat().st_size:
            size = record.stat().st_size
            await asyncio.sleep(0.2)  # no event tells us a process has stopped writing a file

    await asyncio.wait_for(settle(), timeout(10))


@pytest.fixture
def recorder(tmp_path: Path) -> Callable[[str], Path]:
    def make(name: str) -> Path:
        path = tmp_path / name
        path.write_text(RECORDER)
        path.chmod(0o755)
        return path

    return make


async def test_sigint_100ms_after_stdin_closes(
    recorder: Callable[[str], Path], tmp_path: Path
) -> None:
    record = tmp_path / "rec.txt"
    got = await run_recorder(run_wsdev, recorder("rec.py"), record)
    assert set(got) == {"SIGINT", "last_alive"}
    assert abs(got["SIGINT"] - 100) < TOLERANCE_MS


async def test_ignoring_child_gets_sigterm_then_sigkill(
    recorder: Callable[[str], Path], tmp_path: Path
) -> None:
    record = tmp_path / "rec.txt"
    got = await run_recorder(run_wsdev, recorder("rec-ignore.py"), record)
    assert abs(got["SIGINT"] - 100) < TOLERANCE_MS
    assert abs(got["SIGTERM"] - 350) < TOLERANCE_MS
    assert abs(got["last_alive"] - 850) < TOLERANCE_MS


async def test_closems_delays_every_step(recorder: Callable[[str], Path], tmp_path: Path) -> None:
    record = tmp_path / "rec.txt"
    got = await run_recorder(run_wsdev, recorder("rec-ignore.py"), record, "--closems=200")
    assert abs(got["SIGINT"] - 300) < TOLERANCE_MS
    assert abs(got["SIGTERM"] - 750) < TOLERANCE_MS
    assert abs(got["last_alive"] - 1450) < TOLERANCE_MS


@requires_websocketd
@pytest.mark.websocketd
@pytest.mark.parametrize("name", ["rec.py", "rec-ignore.py"])
async def test_signal_timings_match_websocketd(
    recorder: Callable[[str], Path], tmp_path: Path, name: str
) -> None:
    script = recorder(name)
    ours = await run_recorder(run_wsdev, script, tmp_path / "wsdev.txt")
    theirs = await run_recorder(run_websocketd, script, tmp_path / "websocketd.txt")
    assert set(ours) == set(theirs)
    for key in theirs:
        assert abs(ours[key] - theirs[key]) < TOLERANCE_MS, (key, ours, theirs)


GROUP_SCRIPT = """#!/bin/sh
# Starts a grandchild in the background, reports its pid, then waits for input.
sleep 300 &
echo "$!"
cat
"""


async def _grandchild_after_disconnect(start: Callable[..., Any], script: Path) -> int:
    async with start(str(script)) as server:
        async with connect(server.ws_url + "/") as ws:
            grandchild = int(await ws.recv())
        await server.wait_for_log(r"DISCONNECT")
        await _wait_gone(grandchild, within=3)
    return grandchild


async def _wait_gone(pid: int, within: float) -> bool:
    async def poll() -> None:
        while _alive(pid):
            await asyncio.sleep(0.05)  # no event for another process's exit

    try:
        await asyncio.wait_for(poll(), timeout(within))
    except asyncio.TimeoutError:
        return False
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie counts as gone: it has exited and only waits for its parent.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def test_grandchildren_end_with_the_connection(tmp_script: ScriptWriter) -> None:
    script = tmp_script("group.sh", GROUP_SCRIPT)
    grandchild = await _grandchild_after_disconnect(run_wsdev, script)
    assert not _alive(grandchild)


@requires_websocketd
@pytest.mark.websocketd
async def test_websocketd_leaves_grandchildren_running(tmp_script: ScriptWriter) -> None:
    """The documented difference (B8): websocketd signals only the direct child."""
    script = tmp_script("group.sh", GROUP_SCRIPT)
    async with run_websocketd(str(script)) as server:
        async with connect(server.ws_url + "/") as ws:
            grandchild = int(await ws.recv())
        await server.wait_for_log(r"DISCONNECT")
        gone = await _wait_gone(grandchild, within=1.5)
    if not gone:
        os.kill(grandchild, signal.SIGKILL)
    assert not gone


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_shutdown_closes_1001_and_leaves_no_process(
    tmp_script: ScriptWriter, sig: int
) -> None:
    script = tmp_script("group.sh", GROUP_SCRIPT)
    async with run_wsdev("--loglevel=debug", str(script)) as server:
        clients = [await connect(server.ws_url + "/") for _ in range(3)]
        grandchildren = [int(await c.recv()) for c in clients]
        index = 0
        children: list[int] = []
        while len(children) < len(clients):
            started = await server.wait_for_log(r"pid:'(\d+)' \| Process started", after=index)
            children.append(int(started.group(1)))
            index = server.lines.index(started.string) + 1
        server.proc.send_signal(sig)
        codes = []
        for client in clients:
            await asyncio.wait_for(client.wait_closed(), timeout(5))
            assert client.protocol.close_rcvd is not None
            codes.append(client.protocol.close_rcvd.code)
        status = await asyncio.wait_for(server.proc.wait(), timeout(5))
    assert codes == [1001, 1001, 1001]
    assert status == 0
    for pid in grandchildren + children:
        assert await _wait_gone(pid, within=2), pid


async def test_restart_closes_with_1012_and_serves_new_code(tmp_path: Path) -> None:
    script = tmp_path / "bot.sh"
    script.write_text("#!/bin/sh\necho v1\ncat\n")
    script.chmod(0o755)
    async with run_wsdev("--no-reload=false", str(script), cwd=tmp_path) as server:
        await server.wait_for_log(r"Restarting on changes to")
        async with connect(server.ws_url + "/") as ws:
            assert await ws.recv() == "v1"
            script.write_text("#!/bin/sh\necho v2\ncat\n")
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), timeout(10))
            assert ws.protocol.close_rcvd is not None
            assert ws.protocol.close_rcvd.code == 1012
        async with connect(server.ws_url + "/") as ws:
            assert await ws.recv() == "v2"
        await server.wait_for_log(r"Restarting: bot\.sh changed")
