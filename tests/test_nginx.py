"""docs/deploy.md's nginx configuration, run for real: Debian's nginx on a loopback port in front
of three wsdev instances on Unix sockets (behaviour B12).

The configuration is the ``nginx`` block of docs/deploy.md with only its socket folder and port
changed, so the page cannot drift from what is tested.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import websockets
from websockets.asyncio.client import ClientConnection, connect

from conftest import ROOT, ScriptWriter, ServerProcess, free_port, run_wsdev, timeout

NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx", "/sbin/nginx") if os.access(p, os.X_OK)), None
)
pytestmark = pytest.mark.skipif(
    NGINX is None, reason="nginx is not installed (apt-get install -y nginx)"
)

INSTANCES = 3
# Says which instance it runs on and whom it was told the client is, then echoes.
PROGRAM = """#!/bin/sh
echo "instance $1 client $REMOTE_ADDR $REMOTE_PORT"
exec cat
"""


def documented_config() -> str:
    """The ``nginx`` block of docs/deploy.md."""
    text = (ROOT / "docs" / "deploy.md").read_text()
    match = re.search(r"```nginx\n(.*?)```", text, re.DOTALL)
    assert match, "docs/deploy.md has no nginx block"
    return match.group(1)


def nginx_conf(folder: Path, port: int) -> str:
    site = documented_config()
    assert "/run/wsdev/" in site and "listen 80;" in site
    site = site.replace("/run/wsdev/", f"{folder}/").replace(
        "listen 80;", f"listen 127.0.0.1:{port};"
    )
    temp = "\n".join(
        f"    {kind}_temp_path {folder}/{kind}_temp;"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # The workers reach the sockets in the test's private folder as the test's own user.
    user = "user root root;\n" if os.geteuid() == 0 else ""
    return (
        f"daemon off;\nworker_processes 1;\npid {folder}/nginx.pid;\nerror_log stderr notice;\n"
        f"{user}events {{ worker_connections 512; }}\n"
        f"http {{\n    access_log off;\n{temp}\n{site}\n}}\n"
    )


@dataclass
class Cluster:
    port: int
    instances: list[ServerProcess]

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"


async def wait_listening(port: int) -> None:
    async def attempt() -> None:
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.02)  # polling a port has no event to wait on
                continue
            writer.close()
            return

    await asyncio.wait_for(attempt(), timeout(15))


@contextlib.asynccontextmanager
async def cluster(folder: Path, program: Path) -> AsyncIterator[Cluster]:
    async with contextlib.AsyncExitStack() as stack:
        instances = []
        for n in range(1, INSTANCES + 1):
            server = await stack.enter_async_context(
                run_wsdev(
                    f"--unixsocket={folder}/{n}.sock",
                    "--trusted-proxy=unix",
                    "--drain=600",
                    "--no-dashboard",
                    "--no-reload",
                    str(program),
                    str(n),
                    defaults=False,
                )
            )
            await server.wait_for_log("unix socket at ")
            instances.append(server)
        port = free_port()
        conf = folder / "nginx.conf"
        conf.write_text(nginx_conf(folder, port))
        assert NGINX is not None
        nginx = await asyncio.create_subprocess_exec(
            NGINX,
            "-p",
            str(folder),
            "-c",
            str(conf),
            "-e",
            "stderr",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            await wait_listening(port)
            yield Cluster(port, instances)
        finally:
            with contextlib.suppress(ProcessLookupError):
                nginx.send_signal(signal.SIGQUIT)  # nginx's graceful stop
            try:
                await asyncio.wait_for(nginx.communicate(), timeout(10))
            except asyncio.TimeoutError:
                nginx.kill()
                await nginx.wait()


@dataclass
class Session:
    ws: ClientConnection
    instance: int


async def open_session(url: str, headers: dict[str, str] | None = None) -> Session:
    ws = await connect(url, additional_headers=headers)
    hello = str(await ws.recv())
    match = re.fullmatch(r"instance (\d) client (\S*) (\S*)", hello)
    assert match, hello
    # The program sees the client (this process), not nginx: its address and its own port.
    assert (match.group(2), match.group(3)) == ("127.0.0.1", str(ws.local_address[1])), hello
    return Session(ws, int(match.group(1)))


async def echoes(session: Session, text: str) -> None:
    await session.ws.send(text)
    assert await session.ws.recv() == text


async def test_three_instances_behind_nginx(tmp_path: Path, tmp_script: ScriptWriter) -> None:
    program = tmp_script("where.sh", PROGRAM)
    async with cluster(tmp_path, program) as nodes:
        sessions = [await open_session(nodes.url) for _ in range(3 * INSTANCES)]
        # Load is spread: every instance holds some of the sessions.
        assert {s.instance for s in sessions} == set(range(1, INSTANCES + 1))
        # A client that forges its address is not believed (nginx replaces Forwarded).
        forged = {"Forwarded": "for=192.0.2.66", "X-Forwarded-For": "192.0.2.66"}
        sessions.append(await open_session(nodes.url, forged))

        # A rolling deploy: one instance drains. New sessions go to the others (its 503 makes
        # nginx try the next one), its own sessions go on.
        victim = sessions[0].instance
        on_victim = [s for s in sessions if s.instance == victim]
        others = [s for s in sessions if s.instance != victim]
        # With the fewest sessions, the draining instance is the one nginx tries first.
        for session in on_victim[1:]:
            await session.ws.close()
        on_victim = on_victim[:1]
        draining = nodes.instances[victim - 1]
        draining.proc.send_signal(signal.SIGTERM)
        await draining.wait_for_log(r"draining: 1 connection left")
        fresh = [await open_session(nodes.url) for _ in range(2 * INSTANCES)]
        assert victim not in {s.instance for s in fresh}
        await draining.wait_for_log(r"server draining")  # it was asked, and said no
        for n, session in enumerate(on_victim):
            await echoes(session, f"draining but served {n}")
        # Then it goes down: its sessions get 1001, every other one goes on.
        draining.proc.send_signal(signal.SIGTERM)
        for session in on_victim:
            with pytest.raises(websockets.ConnectionClosed):
                await session.ws.recv()
            assert session.ws.close_code == 1001
        assert await draining.proc.wait() == 0
        for n, session in enumerate([*others, *fresh]):
            await echoes(session, f"still here {n}")
        for session in [*others, *fresh]:
            await session.ws.close()
            assert session.ws.close_code == 1000


async def test_console_through_nginx(tmp_path: Path, tmp_script: ScriptWriter) -> None:
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        pytest.skip("Chromium is not installed at /usr/bin/chromium")
    playwright_api = pytest.importorskip("playwright.async_api")
    program = tmp_script("where.sh", PROGRAM)
    async with cluster(tmp_path, program) as nodes:
        async with playwright_api.async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=str(chromium), args=["--no-sandbox", "--disable-gpu"]
            )
            try:
                page = await browser.new_page()
                expect = playwright_api.expect
                wait_ms = timeout(15) * 1000
                await page.goto(f"http://127.0.0.1:{nodes.port}/")
                status = page.locator("#status")
                await expect(status).to_have_attribute("data-state", "open", timeout=wait_ms)
                hello = page.locator("#transcript .entry.recv").first.locator(".body")
                await expect(hello).to_have_text(
                    re.compile(r"^instance \d client 127\.0\.0\.1 \d+$"), timeout=wait_ms
                )
                await page.locator("#input").fill("through the proxy")
                await page.locator("#input").press("Enter")
                reply = page.locator("#transcript .entry.recv").last.locator(".body")
                await expect(reply).to_have_text("through the proxy", timeout=wait_ms)
            finally:
                await browser.close()
