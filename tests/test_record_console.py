"""The console's "save as test" and transcript download (behaviour C8), in a real Chromium
against a real wsdev, then replayed by ``wsdev test``."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from conftest import ScriptWriter, run_wsdev, timeout
from test_replay import wsdev_test

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists() and not os.environ.get("CI"):
    pytest.skip("Chromium is not installed at /usr/bin/chromium", allow_module_level=True)
if not os.environ.get("CI"):
    pytest.importorskip("playwright")

from playwright.async_api import Dialog, Page, async_playwright, expect  # noqa: E402

pytestmark = [pytest.mark.browser]
WAIT_MS = timeout(15) * 1000

BOT = """\
#!/usr/bin/env python3
import os, sys
print("welcome to " + os.environ["PATH_INFO"], flush=True)
for line in sys.stdin:
    print("echo: " + line.rstrip("\\n"), flush=True)
"""


@pytest_asyncio.fixture
async def page() -> AsyncIterator[Page]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            context = await browser.new_context(accept_downloads=True)
            context.set_default_timeout(WAIT_MS)
            yield await context.new_page()
        finally:
            await browser.close()


async def test_save_as_test_then_replay(
    page: Page, tmp_script: ScriptWriter, tmp_path: Path
) -> None:
    script = tmp_script("bot.py", BOT)
    async with run_wsdev(str(script), cwd=tmp_path) as server:
        await page.goto(f"{server.http_url}/chat?room=1")
        await expect(page.locator(".entry.connect").last).to_contain_text("pid", timeout=WAIT_MS)
        await expect(page.locator("#transcript .entry.recv").last).to_contain_text("welcome")
        await page.locator("#input").fill("hi")
        await page.locator("#input").press("Enter")
        await expect(page.locator("#transcript .entry.recv").last).to_contain_text("echo: hi")

        async def answer(dialog: Dialog) -> None:
            await dialog.accept("tests/chat")

        page.once("dialog", answer)
        await page.locator("#export").click()
        await page.locator('[data-export="save-test"]').click()
        await expect(page.locator("#toast")).to_contain_text("Saved as tests/chat.jsonl")

        await page.locator("#export").click()
        async with page.expect_download() as waiting:
            await page.locator('[data-export="download-test"]').click()
        downloaded = Path(await (await waiting.value).path())
        header = json.loads(downloaded.read_text().splitlines()[0])
        assert (header["path"], header["query"], header["mode"]) == ("/chat", "room=1", "text")

        # Saving writes files: a request from another origin is refused.
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{server.http_url}/_wsdev/transcript/x/save",
                json={"folder": "tests", "name": "evil"},
                headers={"Origin": "http://evil.example"},
            ) as refused:
                assert refused.status == 403
    saved = tmp_path / "tests" / "chat.jsonl"
    kinds = [
        next(k for k in json.loads(line) if k != "t") for line in saved.read_text().splitlines()
    ]
    assert kinds[:4] == ["wsdev", "received", "sent", "received"]
    assert not (tmp_path / "tests" / "evil.jsonl").exists()

    passed = await wsdev_test(tmp_path)
    assert passed.returncode == 0, passed.output
    script.write_text(BOT.replace("echo: ", "ECHO: "))
    failed = await wsdev_test(tmp_path)
    assert failed.returncode == 1
    assert 'got:      "ECHO: hi"' in failed.output
