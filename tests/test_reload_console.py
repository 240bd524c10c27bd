"""The console in the edit loop, in a real headless Chromium (behaviour C4, D2): a restart brings
back a console whose program had died, but not one the user closed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext, Page, expect

import test_console
from conftest import run_wsdev
from test_console import ECHO_BOT, entries, open_console, send, write_program

# The console tests' browser, context and page fixtures.
browser = test_console.browser
context = test_console.context
page = test_console.page

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

RELOAD = "--no-reload=false"  # run_wsdev turns reload off by default

GOOD = """\
import sys
print("{version} ready", flush=True)
for line in sys.stdin:
    print("{version} " + line, end="", flush=True)
"""


async def test_fixed_save_brings_a_dead_console_back(page: Page, tmp_path: Path) -> None:
    bot = write_program(tmp_path, "bot.py", GOOD.format(version="v1"))
    async with run_wsdev(RELOAD, "./bot.py", cwd=tmp_path) as server:
        await server.wait_for_log(r"Restarting on changes to")
        await open_console(page, server.http_url + "/")
        await expect(entries(page, "recv").last).to_contain_text("v1 ready")

        # A broken save: the console follows the restart and shows the program's death.
        bot.write_text(f"#!{sys.executable}\nprint('oops'\n")
        await expect(entries(page, "stderr").last).to_contain_text("SyntaxError")
        await expect(page.locator("#status")).to_have_attribute("data-state", "closed")
        await expect(page.locator("#status-text")).to_contain_text("exit 1")

        # The fixed save brings it back without a key pressed.
        bot.write_text(f"#!{sys.executable}\n" + GOOD.format(version="v3"))
        await expect(entries(page, "recv").last).to_contain_text("v3 ready")
        await expect(page.locator("#status")).to_have_attribute("data-state", "open")
        await send(page, "hi")
        await expect(entries(page, "recv").last).to_contain_text("v3 hi")


async def test_restart_revives_ended_programs_not_closed_consoles(
    context: BrowserContext, page: Page, tmp_path: Path
) -> None:
    write_program(tmp_path, "bot.py", ECHO_BOT)
    async with run_wsdev(RELOAD, "./bot.py", cwd=tmp_path) as server:
        await server.wait_for_log(r"Restarting on changes to")
        await open_console(page, server.http_url + "/")
        await page.locator("#connect").click()  # the user closes this one
        await expect(page.locator("#status")).to_have_attribute("data-state", "closed")

        ended = await context.new_page()
        await open_console(ended, server.http_url + "/")
        await send(ended, "exit 0")  # this one's program ends by itself
        await expect(ended.locator("#status")).to_have_attribute("data-state", "closed")
        await expect(entries(ended, "close").last).to_contain_text("or save a change")

        (tmp_path / "helpers.py").write_text("ANSWER = 42\n")
        await expect(entries(ended, "connect")).to_have_count(2)
        await expect(ended.locator("#status")).to_have_attribute("data-state", "open")
        # The console the user closed had the same notice, and stayed closed.
        await expect(page.locator("#status")).to_have_attribute("data-state", "closed")
        assert await entries(page, "connect").count() == 1
        await ended.close()
