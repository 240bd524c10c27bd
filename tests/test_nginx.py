"""docs/deploy.md's nginx configuration, run for real: Debian's nginx on a loopback port in front
of three wsdev instances on Unix sockets (behaviour B12).

The configuration is the ``nginx`` block of docs/deploy.md with only its socket folder and port
changed, so the page cannot drift from what is tested.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import websockets

from conftest import ScriptWriter, timeout
from proxied import (
    DOCUMENTED_FOLDER,
    INSTANCES,
    PROGRAM,
    Cluster,
    cluster,
    documented_block,
    echoes,
    find_tool,
    open_session,
)

NGINX = find_tool("nginx")
pytestmark = pytest.mark.skipif(
    NGINX is None, reason="nginx is not installed (apt-get install -y nginx)"
)


def nginx_conf(folder: Path, port: int) -> str:
    """docs/deploy.md's block inside the least an nginx.conf needs to run from ``folder``."""
    site = documented_block("nginx").replace(DOCUMENTED_FOLDER, f"{folder}/")
    assert "listen 80;" in site
    site = site.replace("listen 80;", f"listen 127.0.0.1:{port};")
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


@contextlib.asynccontextmanager
async def behind_nginx(folder: Path, program: Path) -> AsyncIterator[Cluster]:
    def start(port: int) -> list[str]:
        conf = folder / "nginx.conf"
        conf.write_text(nginx_conf(folder, port))
        assert NGINX is not None
        return [NGINX, "-p", str(folder), "-c", str(conf), "-e", "stderr"]

    async with cluster(folder, program, start, "--drain=600") as nodes:
        yield nodes


async def test_three_instances_behind_nginx(tmp_path: Path, tmp_script: ScriptWriter) -> None:
    program = tmp_script("where.sh", PROGRAM)
    async with behind_nginx(tmp_path, program) as nodes:
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
    async with behind_nginx(tmp_path, program) as nodes:
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
