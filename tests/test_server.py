"""Where wsdev listens and how it answers plain HTTP around the WebSocket endpoint (B7, A5, A6)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import aiohttp
import pytest
from websockets.asyncio.client import connect, unix_connect

from conftest import ScriptWriter, run_wsdev

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
        await server.wait_for_log(rf"Starting WebSocket server +: ws\+unix:{path}$")
        async with unix_connect(str(path), "ws://localhost/") as ws:
            await ws.send("over a unix socket")
            assert await ws.recv() == "over a unix socket"


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
