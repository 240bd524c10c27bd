"""Where wsdev listens and how it answers plain HTTP around the WebSocket endpoint (B7, A5, A6)."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import aiohttp
import pytest
from websockets.asyncio.client import connect, unix_connect

from conftest import ROOT, ScriptWriter, run_wsdev, timeout, wsdev_argv

BASE = ("--no-dashboard", "--no-reload")


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


async def test_default_listens_on_localhost_only_and_prints_the_url() -> None:
    async with run_wsdev(*BASE, "--port=0", "cat", defaults=False) as server:
        match = await server.wait_for_log(r"Starting WebSocket server +: ws://localhost:(\d+)/$")
        port = int(match.group(1))
        await server.wait_for_log(rf"Console +: http://localhost:{port}/$")
        async with connect(f"ws://127.0.0.1:{port}/") as ws:
            await ws.send("v4")
            assert await ws.recv() == "v4"
        if has_ipv6_loopback():
            async with connect(f"ws://[::1]:{port}/") as ws:
                await ws.send("v6")
                assert await ws.recv() == "v6"


async def test_unix_socket(tmp_path: Path) -> None:
    path = tmp_path / "wsdev.sock"
    async with run_wsdev(*BASE, f"--unixsocket={path}", "cat", defaults=False) as server:
        await server.wait_for_log(rf"Starting WebSocket server +: unix socket at {path}$")
        async with unix_connect(str(path), "ws://localhost/") as ws:
            await ws.send("over a unix socket")
            assert await ws.recv() == "over a unix socket"


async def _refused_start(*args: str) -> tuple[int, str]:
    """Run a wsdev that must refuse to start: its exit status and its stderr."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = await asyncio.create_subprocess_exec(
        *wsdev_argv(*BASE, *args),
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(proc.communicate(), timeout(20))
    assert proc.returncode is not None
    return proc.returncode, stderr.decode()


async def test_a_live_unix_socket_is_refused_and_keeps_serving(tmp_path: Path) -> None:
    path = tmp_path / "wsdev.sock"
    async with run_wsdev(*BASE, f"--unixsocket={path}", "cat", defaults=False) as first:
        await first.wait_for_log(r"unix socket at")
        status, stderr = await _refused_start(f"--unixsocket={path}", "cat")
        assert status != 0
        lines = stderr.splitlines()
        assert len(lines) == 1 and "already in use" in lines[0] and str(path) in lines[0], stderr
        assert "Traceback" not in stderr
        # The running server still has its socket, and answers on it (behaviour A5).
        assert path.is_socket()
        async with unix_connect(str(path), "ws://localhost/") as ws:
            await ws.send("still mine")
            assert await ws.recv() == "still mine"


async def test_a_stale_unix_socket_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "wsdev.sock"
    # What a server killed with SIGKILL leaves behind: a socket file nobody listens on.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as left_behind:
        left_behind.bind(str(path))
    assert path.is_socket()
    async with run_wsdev(*BASE, f"--unixsocket={path}", "cat", defaults=False) as server:
        await server.wait_for_log(rf"Starting WebSocket server +: unix socket at {path}$")
        async with unix_connect(str(path), "ws://localhost/") as ws:
            await ws.send("fresh")
            assert await ws.recv() == "fresh"


async def test_a_file_that_is_not_a_socket_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("keep me\n")
    status, stderr = await _refused_start(f"--unixsocket={path}", "cat")
    assert status != 0
    assert len(stderr.splitlines()) == 1 and "not a socket" in stderr, stderr
    assert path.read_text() == "keep me\n"


async def test_plain_http_routes_and_access_log(tmp_script: ScriptWriter) -> None:
    script = tmp_script("echo.sh", "#!/bin/sh\nexec cat\n")
    async with run_wsdev("--header=X-Everywhere: 1", str(script)) as server:
        async with aiohttp.ClientSession() as http:
            async with http.get(server.http_url + "/any/path?x=1") as page:
                assert page.status == 200
                assert page.headers["Content-Type"].startswith("text/html")
                assert page.headers["X-Everywhere"] == "1"
                assert page.headers["Server"].startswith("wsdev/")
            async with http.get(server.http_url + "/_wsdev/nothing-here") as missing:
                assert missing.status == 404
                assert await missing.text() == "404 page not found\n"
                assert missing.headers["X-Everywhere"] == "1"
        await server.wait_for_log(
            r"\| ACCESS \| http +\| url:'http://127\.0\.0\.1:\d+/any/path\?x=1'.* \| CONSOLE$"
        )
        await server.wait_for_log(
            r"\| ACCESS \| http +\| url:'.*/_wsdev/nothing-here'.* \| NOT FOUND$"
        )


async def test_no_console_means_404(tmp_script: ScriptWriter) -> None:
    script = tmp_script("echo.sh", "#!/bin/sh\nexec cat\n")
    async with run_wsdev("--no-console", str(script)) as server:
        async with aiohttp.ClientSession() as http, http.get(server.http_url + "/") as page:
            assert page.status == 404
        assert not any("Console" in line for line in server.lines)


@pytest.mark.parametrize("method", ["POST", "PUT"])
async def test_non_get_upgrade_gets_a_clean_error(tmp_script: ScriptWriter, method: str) -> None:
    script = tmp_script("echo.sh", "#!/bin/sh\nexec cat\n")
    async with run_wsdev(str(script)) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(
            f"{method} / HTTP/1.1\r\nHost: [::1]\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            "Content-Length: 0\r\n\r\n".encode()
        )
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        writer.close()
    assert head.startswith("HTTP/1.1 405 ")
    assert head.count("HTTP/1.1") == 1  # no second status glued on (B5)
