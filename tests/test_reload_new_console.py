"""The console under ``--reload=new``, in a real headless Chromium (behaviour D2): after a save a
console whose program is older offers to reconnect to the new version; one that runs the newest
does not; the offer, clicked or pressed, reconnects to the same endpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import BrowserContext, Page, expect

import test_console
from conftest import run_wsdev
from test_console import entries, open_console, send, write_program

# The console tests' browser, context and page fixtures.
browser = test_console.browser
context = test_console.context
page = test_console.page

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

RELOAD_NEW = ("--no-reload=false", "--reload=new")  # run_wsdev turns reload off by default

BOT = """\
import os
import sys
print("{version} ready on " + os.environ["REQUEST_URI"], flush=True)
for line in sys.stdin:
    print("{version} " + line, end="", flush=True)
"""


async def test_an_old_console_offers_the_new_version(
    context: BrowserContext, page: Page, tmp_path: Path
) -> None:
    bot = write_program(tmp_path, "bot.py", BOT.format(version="v1"))
    offer = page.locator("#new-version")
    async with run_wsdev(*RELOAD_NEW, "./bot.py", cwd=tmp_path) as server:
        await server.wait_for_log(r"Reload mode +: new")
        await open_console(page, server.http_url + "/room?team=2")
        await expect(entries(page, "recv").last).to_contain_text("v1 ready on /room?team=2")
        await expect(offer).to_be_hidden()

        # A save: this console keeps its program, says why, and offers the edited one.
        bot.write_text(bot.read_text().replace("v1", "v2"))
        await expect(offer).to_be_visible()
        await expect(entries(page, "restart").last).to_contain_text(
            "keeps the version it started with"
        )
        await expect(page.locator("#status")).to_have_attribute("data-state", "open")
        await send(page, "hi")
        await expect(entries(page, "recv").last).to_contain_text("v1 hi")

        # A console opened after the save runs the newest program: no offer there.
        newer = await context.new_page()
        await open_console(newer, server.http_url + "/room?team=2")
        await expect(entries(newer, "recv").last).to_contain_text("v2 ready")
        await expect(newer.locator("#new-version")).to_be_hidden()

        # Clicking the offer runs the edited program on the same endpoint, and the offer goes.
        await offer.click()
        await expect(entries(page, "recv").last).to_contain_text("v2 ready on /room?team=2")
        await expect(offer).to_be_hidden()
        await send(page, "again")
        await expect(entries(page, "recv").last).to_contain_text("v2 again")

        await expect(newer.locator("#new-version")).to_be_hidden()  # its feed said v2 long ago

        # The next save: both are offered it; the keyboard reaches the offer too.
        bot.write_text(bot.read_text().replace("v2", "v3"))
        await expect(offer).to_be_visible()
        newer_offer = newer.locator("#new-version")
        await expect(newer_offer).to_be_visible()
        await newer_offer.focus()
        await newer.keyboard.press("Enter")
        await expect(entries(newer, "recv").last).to_contain_text("v3 ready on /room?team=2")
        await expect(newer_offer).to_be_hidden()
        await expect(offer).to_be_visible()  # the other console still runs v2, still offered
        await newer.close()
    assert not any("1012" in line for line in server.lines)
