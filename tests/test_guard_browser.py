"""Behaviour B10 in a real headless Chromium: what a page of another site can do to a wsdev on
this machine, what a rebound name gets, and that the console's own page keeps working.

Chromium resolves every ``*.test`` name to 127.0.0.1 here (``--host-resolver-rules``), so a page
at ``http://evil.test:PORT/`` is what a site whose visitor runs wsdev looks like, and a page at
``http://rebind.test:PORT/`` what a DNS-rebinding attack looks like, without any real DNS.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web

from conftest import ScriptWriter, run_wsdev, timeout
from rawhttp import serve

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists() and not os.environ.get("CI"):
    pytest.skip("Chromium is not installed at /usr/bin/chromium", allow_module_level=True)
if not os.environ.get("CI"):
    pytest.importorskip("playwright")

from playwright.async_api import Browser, Page, async_playwright, expect  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--host-resolver-rules=MAP *.test 127.0.0.1",
]
WAIT_MS = timeout(15) * 1000
CAT = "#!/bin/sh\nexec cat\n"
CGI = '#!/bin/sh\necho ran >> "$MARKER"\nprintf "Content-Type: text/plain\\n\\nran\\n"\n'

# Run in a page: try each WebSocket URL and say whether it opened.
PROBE = """async (urls) => {
  const one = (url) => new Promise((resolve) => {
    const ws = new WebSocket(url);
    ws.onopen = () => { ws.close(); resolve("open"); };
    ws.onerror = () => resolve("refused");
  });
  const out = {};
  for (const [name, url] of Object.entries(urls)) out[name] = await one(url);
  return out;
}"""


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context()
    context.set_default_timeout(WAIT_MS)
    try:
        yield await context.new_page()
    finally:
        await context.close()


@pytest_asyncio.fixture(loop_scope="module")
async def other_site() -> AsyncIterator[int]:
    """A web server that is not wsdev (the port of "another site")."""

    async def page(_: web.Request) -> web.Response:
        return web.Response(
            text="<!doctype html><title>another site</title>", content_type="text/html"
        )

    app = web.Application()
    app.router.add_get("/", page)
    async with serve(app) as port:
        yield port


async def test_a_page_of_another_site_reaches_nothing(
    page: Page, other_site: int, tmp_script: ScriptWriter, tmp_path: Path
) -> None:
    cat = tmp_script("cat.sh", CAT)
    cgi = tmp_path / "cgi"
    cgi.mkdir()
    (cgi / "act.sh").write_text(CGI)
    (cgi / "act.sh").chmod(0o755)
    marker = tmp_path / "ran"
    env = {"MARKER": str(marker)}
    async with run_wsdev(f"--cgidir={cgi}", "--passenv=PATH,MARKER", str(cat), env=env) as server:
        ws = server.ws_url
        urls = {
            "program": ws + "/",
            "console": ws + "/_wsdev/ws?path=/",
            "events": ws + "/_wsdev/events",
        }

        await page.goto(f"http://evil.test:{other_site}/")
        assert await page.evaluate(PROBE, urls) == dict.fromkeys(urls, "refused")
        # The classic drive-by request: a cross-site POST that needs no answer to do harm.
        await page.evaluate(
            "(url) => fetch(url, {method: 'POST', mode: 'no-cors', body: 'x'}).catch(() => null)",
            server.http_url + "/act.sh",
        )
        await server.wait_for_log(r"url:'http://127\.0\.0\.1:\d+/act\.sh' .* \| 403 Origin ")
        assert not marker.exists()

        # Another page on this machine (another dev server) may use the program, not the feed.
        await page.goto(f"http://127.0.0.1:{other_site}/")
        assert await page.evaluate(PROBE, urls) == {
            "program": "open",
            "console": "refused",
            "events": "refused",
        }
        # wsdev's own page may use everything.
        await page.goto(server.http_url + "/_wsdev/")
        assert await page.evaluate(PROBE, urls) == dict.fromkeys(urls, "open")
    lines = "\n".join(server.lines)
    assert re.search(
        r"origin:'http://evil\.test:\d+' \| 403 .*--origin=http://evil\.test:\d+", lines
    )


async def test_a_rebound_name_gets_403_and_an_allowed_one_the_console(
    page: Page, tmp_script: ScriptWriter
) -> None:
    cat = tmp_script("cat.sh", CAT)
    async with run_wsdev("--allow-host=myapp.test", str(cat)) as server:
        refused = await page.goto(f"http://rebind.test:{server.port}/")
        assert refused is not None and refused.status == 403
        assert "--allow-host=rebind.test" in await refused.text()
        await open_console(page, f"http://myapp.test:{server.port}/")


async def test_the_console_works_beyond_loopback_under_any_name(
    page: Page, tmp_script: ScriptWriter
) -> None:
    cat = tmp_script("cat.sh", CAT)
    flags = ("--port=0", "--address=0.0.0.0", "--no-dashboard", "--no-reload")
    async with run_wsdev(*flags, str(cat), defaults=False) as server:
        port = (await server.wait_for_log(r"ws://localhost:(\d+)/")).group(1)
        # As a colleague reaches the developer's machine by its network name.
        await open_console(page, f"http://wsdev.test:{port}/")
        await page.locator("#input").fill("hello")
        await page.locator("#input").press("Enter")
        await expect(page.locator(".entry.recv").last).to_contain_text("hello", timeout=WAIT_MS)


async def open_console(page: Page, url: str) -> None:
    response = await page.goto(url)
    assert response is not None and response.status == 200
    await expect(page.locator("#status")).to_have_attribute("data-state", "open", timeout=WAIT_MS)
    await expect(page.locator(".entry.connect").last).to_contain_text("pid", timeout=WAIT_MS)
