"""Hostile and unlucky situations, each once a real failure: NUL in a path, a client gone while
stdin is full, parallel upgrades against --maxforks, a closed log pipe, escaped grandchildren.

Every test names the SPEC item it holds wsdev to and what websocketd 0.4.1 does in the same spot.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import struct
import sys
from pathlib import Path

import websockets

from conftest import ROOT, ScriptWriter, converse, run_wsdev, timeout, wsdev_argv

UPGRADE = (
    "GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n\r\n"
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_nul_in_path_is_a_clean_spawn_failure(tmp_script: ScriptWriter) -> None:
    # SPEC F / A2: PATH_INFO "/\0" cannot go into an environment. websocketd logs "Could not
    # launch process … environment variable contains NUL" and DISCONNECT; wsdev raised
    # ValueError out of posix_spawn: no Close frame (1006), no DISCONNECT, an aiohttp error line.
    script = tmp_script("env.sh", "#!/bin/sh\nenv\n")
    async with run_wsdev(str(script)) as server:
        seen = await converse(server.ws_url + "/%00")
        assert seen.close_code == 1011
        await server.wait_for_log(r"\| DISCONNECT$")
        assert not [line for line in server.lines if "Error handling request" in line]


async def test_client_gone_before_101_is_not_an_error(tmp_script: ScriptWriter) -> None:
    # SPEC F: a client that hangs up during its own handshake is not wsdev's mistake; wsdev
    # logged "ERROR | server | Error handling request" (a traceback at --loglevel=debug).
    script = tmp_script("cat.sh", "#!/bin/sh\nexec cat\n")
    async with run_wsdev(str(script)) as server:
        for _ in range(5):
            _, writer = await asyncio.open_connection("127.0.0.1", server.port)
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.write(UPGRADE.format(target="/", port=server.port).encode())
            await writer.drain()
            writer.transport.abort()
        # A later, complete session: its DISCONNECT comes after whatever the aborted ones logged.
        seen = await converse(server.ws_url + "/last", ["x"], read=1)
        assert seen.messages == ["x"]
        await server.wait_for_log(r"/last'.*\| DISCONNECT$")
        assert not [line for line in server.lines if "Error handling request" in line]


async def test_program_started_for_a_client_gone_mid_handshake_is_ended(
    tmp_script: ScriptWriter,
    tmp_path: Path,
) -> None:
    # SPEC A4: wsdev starts the program before its 101 goes out. A client that hangs up in
    # between must not leave that program behind, whichever side of the 101 wsdev noticed it.
    pids = tmp_path / "pids"
    script = tmp_script("stay.sh", f"#!/bin/sh\necho $$ >> {pids}\nexec sleep 60\n")
    async with run_wsdev(str(script)) as server:
        for _ in range(10):
            _, writer = await asyncio.open_connection("127.0.0.1", server.port)
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.write(UPGRADE.format(target="/", port=server.port).encode())
            await writer.drain()
            writer.transport.abort()

        async def all_ended() -> list[int]:
            while True:
                started = [int(pid) for pid in pids.read_text().split()] if pids.exists() else []
                if started and not any(map(_alive, started)):
                    return started
                await asyncio.sleep(0.05)  # no event announces another process's death

        started = await asyncio.wait_for(all_ended(), timeout(10))
        assert started
        assert not [line for line in server.lines if "Error handling request" in line]


async def test_maxforks_holds_for_parallel_upgrades_with_reverselookup(
    tmp_script: ScriptWriter,
) -> None:
    # SPEC A5: an upgrade over N live children gets 429. _admit counts children before the
    # reverse lookup awaits, and the Bridge is registered only after: ten at once all got in.
    script = tmp_script("cat.sh", "#!/bin/sh\nexec cat\n")
    async with run_wsdev("--maxforks=2", "--reverselookup", str(script)) as server:

        async def attempt() -> object:
            try:
                return await websockets.connect(server.ws_url + "/", open_timeout=timeout(10))
            except websockets.InvalidStatus as exc:
                return exc.response.status_code

        results = await asyncio.wait_for(
            asyncio.gather(*(attempt() for _ in range(10))), timeout(10)
        )
        accepted = [r for r in results if not isinstance(r, int)]
        for ws in accepted:
            await ws.close()  # type: ignore[attr-defined]
        assert len(accepted) == 2
        assert sorted(r for r in results if isinstance(r, int)) == [429] * 8


async def test_pingms_drops_a_vanished_client_while_stdin_is_full(tmp_script: ScriptWriter) -> None:
    # SPEC A3/A4: --pingms drops a client silent for two intervals, then the child gets the
    # escalation. While the child's stdin pipe is full the receive loop waits in _to_stdin
    # forever: the ping timer aborts the socket but nothing ends the Bridge or the child.
    script = tmp_script("deaf.sh", "#!/bin/sh\necho ready\nexec sleep 60\n")
    async with run_wsdev("--pingms=200", str(script)) as server:
        ws = await websockets.connect(server.ws_url + "/", ping_interval=None, max_size=None)
        assert await ws.recv() == "ready"
        await ws.send("z" * 512 * 1024)  # far more than a pipe holds (64 KiB)
        ws.transport.abort()
        match = await server.wait_for_log(r"pid:'(\d+)' \| DISCONNECT$", within=4)
        pid = int(match.group(1))
        assert not _alive(pid) or _is_zombie(pid)


async def test_client_close_is_answered_while_stdin_is_full(tmp_script: ScriptWriter) -> None:
    # SPEC A4: a client's Close is answered at once. While stdin is full wsdev does not read the
    # socket, so the Close is never seen (websocketd 0.4.1 has the same flaw; SPEC B4 promises
    # bounded memory, not a deaf server). Reading control frames while stdin is blocked fixes it.
    script = tmp_script("deaf.sh", "#!/bin/sh\necho ready\nexec sleep 60\n")
    async with run_wsdev(str(script)) as server:
        ws = await websockets.connect(
            server.ws_url + "/", ping_interval=None, max_size=None, close_timeout=timeout(3)
        )
        assert await ws.recv() == "ready"
        await ws.send("z" * 512 * 1024)
        await ws.close(4002)
        assert ws.protocol.close_rcvd is not None
        assert ws.protocol.close_rcvd.code == 4002


async def test_closed_log_pipe_gives_no_traceback(tmp_script: ScriptWriter) -> None:
    # SPEC F: no traceback unless --loglevel=debug. `wsdev … | head -3` then Ctrl+C: logging
    # into the closed pipe printed "--- Logging error ---" and a traceback on stderr.
    script = tmp_script("cat.sh", "#!/bin/sh\nexec cat\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = await asyncio.create_subprocess_exec(
        *wsdev_argv(
            "--port=0", "--address=127.0.0.1", "--no-dashboard", "--no-reload", str(script)
        ),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:

        async def until_listening() -> None:
            while b"ws://" not in await proc.stdout.readline():  # type: ignore[union-attr]
                pass

        await asyncio.wait_for(until_listening(), timeout(10))
        # Close our end of wsdev's stdout, as `head` does once it has its lines.
        proc.stdout._transport.close()  # type: ignore[attr-defined]
        proc.send_signal(signal.SIGTERM)
        stderr = await asyncio.wait_for(proc.stderr.read(), timeout(10))
        await asyncio.wait_for(proc.wait(), timeout(10))
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert b"Traceback" not in stderr, stderr.decode(errors="replace")
    assert b"Logging error" not in stderr


async def test_daemonized_grandchild_does_not_outlive_shutdown(
    tmp_script: ScriptWriter, tmp_path: Path
) -> None:
    # SPEC B6: on shutdown "no child or grandchild outlives it". A grandchild that calls setsid
    # leaves the child's process group, so killpg misses it (websocketd misses it too). A
    # subreaper (prctl PR_SET_CHILD_SUBREAPER on Linux) plus a final sweep would catch it.
    script = tmp_script(
        "daemon.sh", "#!/bin/sh\nsetsid sleep 30 </dev/null >/dev/null 2>&1 &\necho $!\nexec cat\n"
    )
    grandchild = 0
    try:
        async with run_wsdev(str(script)) as server:
            ws = await websockets.connect(server.ws_url + "/")
            grandchild = int(await asyncio.wait_for(ws.recv(), timeout(10)))
            assert _alive(grandchild)
            await asyncio.wait_for(_own_session(grandchild), timeout(5))
            assert await server.stop(signal.SIGTERM) == 0

        async def gone() -> None:
            while _alive(grandchild) and not _is_zombie(grandchild):
                await asyncio.sleep(0.05)  # no event tells us another process ended

        try:
            await asyncio.wait_for(gone(), timeout(3))
        except asyncio.TimeoutError:
            raise AssertionError(f"grandchild {grandchild} outlived wsdev") from None
    finally:
        if grandchild:
            with contextlib.suppress(ProcessLookupError):
                os.kill(grandchild, signal.SIGKILL)


async def _own_session(pid: int) -> None:
    """Wait until ``pid`` has called setsid (the shell reports $! before the exec happens)."""
    while os.getsid(pid) != pid:
        await asyncio.sleep(0.01)  # no event announces another process's setsid


def _is_zombie(pid: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"
