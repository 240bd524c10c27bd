"""systemd socket activation (behaviour B12): wsdev serves a listening socket it inherits at fd 3,
started the way a service manager starts it (the socket passed down, LISTEN_PID its own pid)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect, unix_connect

from conftest import ROOT, ScriptWriter, ServerProcess, timeout, wsdev_argv
from wsdev.activation import inherited_sockets
from wsdev.errors import ServeError

# What a service manager does between fork and exec: the socket to fd 3, LISTEN_PID its own pid
# (exec keeps it), LISTEN_FDS; then the program.
HAND_OVER = """
import os, sys
fd, listen_pid = int(sys.argv[1]), sys.argv[2]
os.dup2(fd, 3)
os.close(fd)
os.environ["LISTEN_PID"] = str(os.getpid()) if listen_pid == "self" else listen_pid
os.environ["LISTEN_FDS"] = "1"
os.execv(sys.argv[3], sys.argv[3:])
"""


@contextlib.asynccontextmanager
async def activated(
    listening: socket.socket, *args: str, listen_pid: str = "self"
) -> AsyncIterator[ServerProcess]:
    """wsdev started with ``listening`` handed over at fd 3, as systemd hands it."""
    fd = listening.fileno()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        HAND_OVER,
        str(fd),
        listen_pid,
        *wsdev_argv("--no-dashboard", "--no-reload", *args),
        pass_fds=(fd,),
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    server = ServerProcess(proc)
    assert proc.stdout is not None and proc.stderr is not None
    tasks = [
        asyncio.ensure_future(server._collect(proc.stdout, server.lines)),
        asyncio.ensure_future(server._collect(proc.stderr, server.stderr_lines)),
    ]
    try:
        yield server
    finally:
        await server.stop()
        await asyncio.gather(*tasks)


PROBE = """#!/bin/sh
# What a program started under socket activation inherits: no LISTEN_* and no fd 3.
read line
env | grep '^LISTEN_' || echo "no LISTEN variables"
if [ -e /proc/self/fd/3 ]; then echo "fd 3 open"; else echo "fd 3 closed"; fi
"""


async def test_serves_an_inherited_tcp_socket_and_binds_nothing(tmp_script: ScriptWriter) -> None:
    probe = tmp_script("probe.sh", PROBE)
    with socket.create_server(("127.0.0.1", 0)) as listening:
        port = listening.getsockname()[1]
        # The same address as the inherited socket: binding it again would fail as "in use".
        async with activated(listening, "--address=127.0.0.1", f"--port={port}", str(probe)) as s:
            await s.wait_for_log(rf"ws://127\.0\.0\.1:{port}/")
            listening.close()  # wsdev's copy alone serves from here on
            async with connect(f"ws://127.0.0.1:{port}/") as ws:
                await ws.send("go")
                assert await ws.recv() == "no LISTEN variables"
                assert await ws.recv() == "fd 3 closed"


async def test_serves_an_inherited_unix_socket(tmp_path: Path) -> None:
    path = tmp_path / "activated.sock"
    with socket.socket(socket.AF_UNIX) as listening:
        listening.bind(str(path))
        listening.listen()
        async with activated(listening, "cat") as server:
            await server.wait_for_log(f"unix socket at {path}")
            async with unix_connect(str(path), "ws://localhost/") as ws:
                await ws.send("through the manager's socket")
                assert await ws.recv() == "through the manager's socket"
        # The socket file is the manager's: wsdev leaves it in place.
        assert path.is_socket()


def test_sockets_passed_to_another_process_are_not_taken() -> None:
    # Only the process LISTEN_PID names may take the sockets (sd_listen_fds(3)).
    environ = {"LISTEN_PID": str(os.getpid() + 1), "LISTEN_FDS": "1"}
    assert inherited_sockets(environ) == []
    assert environ == {"LISTEN_PID": str(os.getpid() + 1), "LISTEN_FDS": "1"}


def test_the_variables_are_taken_and_a_bad_count_is_one_clear_error() -> None:
    environ = {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "0", "LISTEN_FDNAMES": ""}
    assert inherited_sockets(environ) == []
    assert environ == {}  # the programs wsdev starts never see them
    with pytest.raises(ServeError, match="LISTEN_FDS='three' is not a number"):
        inherited_sockets({"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "three"})


SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
def test_the_documented_units_pass_systemd_analyze(tmp_path: Path) -> None:
    """docs/deploy.md's socket and service units, read by systemd's own checker (only the path
    of wsdev changes, to this checkout's)."""
    text = (ROOT / "docs" / "deploy.md").read_text()
    units = re.findall(r"`/etc/systemd/system/([^`]+)`:\n\n```ini\n(.*?)```", text, re.DOTALL)
    assert sorted(name for name, _ in units) == ["wsdev-bot.service", "wsdev-bot.socket"]
    wsdev = Path(sys.executable).parent / "wsdev"
    for name, body in units:
        (tmp_path / name).write_text(body.replace("/usr/local/bin/wsdev", str(wsdev)))
    assert SYSTEMD_ANALYZE is not None
    checked = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", *(f"./{name}" for name, _ in units)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout(60),
        check=False,
    )
    # Any complaint (an unknown key, a missing program) is a line of output.
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, "")
