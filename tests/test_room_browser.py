"""A room in a real headless Chromium (behaviour B14): the link lets a browser in and keeps it
in, the page without it asks for the link, and the share button gives the room's LAN link."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

import test_console
from conftest import run_wsdev
from test_console import ECHO_BOT, entries, open_console, send, write_program
from wsdev.lan import lan_addresses

# The console tests' browser, context and page fixtures.
browser = test_console.browser
context = test_console.context
page = test_console.page

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

SECRET = "r00m7e5t"
FLAGS = ("--port=0", "--no-dashboard", "--no-reload", "--lan", f"--token={SECRET}")


async def test_the_link_lets_a_browser_in_and_the_share_button_gives_the_lan_link(
    page: Page, tmp_path: Path
) -> None:
    if not lan_addresses():
        pytest.skip("this machine has no LAN address for --lan to show")
    bot = write_program(tmp_path, "bot.py", ECHO_BOT)
    async with run_wsdev(*FLAGS, str(bot), defaults=False) as server:
        port = (await server.wait_for_log(r"Console +: http://localhost:(\d+)/")).group(1)
        link = (await server.wait_for_log(r"Room link \(type or scan\) *: (\S+)")).group(1)

        # Without the link: the page that says to ask for it, and nothing else (in a page of
        # its own: the browser reports the 403 it was given as an error of that page).
        stranger = await page.context.new_page()
        refused = await stranger.goto(f"http://127.0.0.1:{port}/")
        assert refused is not None and refused.status == 403
        await expect(stranger.locator("h1")).to_have_text("Ask for the link")
        await stranger.close()

        # With it: the console, and the secret gone from the address bar.
        await open_console(page, f"http://127.0.0.1:{port}/?join={SECRET}")
        assert page.url == f"http://127.0.0.1:{port}/"
        await send(page, "hello room")
        await expect(entries(page, "recv").last).to_contain_text("echo: hello room")

        # A reload keeps working: the cookie carries the secret.
        await page.reload()
        await expect(page.locator("#status")).to_have_attribute("data-state", "open")

        await page.locator("#share").click()
        await expect(page.locator("#share-link")).to_have_text(link)
        assert "localhost" not in link and "127.0.0.1" not in link
        loaded = await page.locator("#share-qr img").evaluate(
            "img => img.complete && img.naturalWidth"
        )
        assert loaded > 0, "the QR code did not render"


async def test_no_share_button_without_a_room(page: Page, tmp_path: Path) -> None:
    bot = write_program(tmp_path, "bot.py", ECHO_BOT)
    async with run_wsdev(str(bot)) as server:
        await open_console(page, server.http_url + "/")
        await expect(page.locator("#share-menu")).to_be_hidden()


PID_BOT = """\
import os, sys
print(f"ready {os.getpid()}", flush=True)
for line in sys.stdin:
    print(f"{os.getpid()} heard {line.strip()}", flush=True)
"""
ROOM_SIZE = 30


async def test_thirty_consoles_each_get_a_program_of_their_own(page: Page, tmp_path: Path) -> None:
    bot = write_program(tmp_path, "bot.py", PID_BOT)
    # The thirty pages share one browser, so one address: the room's per-client cap (8 by
    # default) is lifted to let them all in.
    flags = (*FLAGS, "--address=127.0.0.1", f"--max-per-client={ROOM_SIZE}")
    async with run_wsdev(*flags, str(bot), defaults=False) as server:
        port = (await server.wait_for_log(r"Console +: http://localhost:(\d+)/")).group(1)
        room = f"http://127.0.0.1:{port}/?join={SECRET}"
        pages = [page, *[await page.context.new_page() for _ in range(ROOM_SIZE - 1)]]
        try:
            for student in pages:
                await student.goto(room)
            pids = set()
            for index, student in enumerate(pages):
                await expect(student.locator("#status")).to_have_attribute("data-state", "open")
                await send(student, f"student {index}")
                reply = entries(student, "recv").filter(has_text=f"heard student {index}")
                await expect(reply).to_have_count(1)
                heard = re.search(r"(\d+) heard student", await reply.inner_text())
                assert heard is not None
                pids.add(heard.group(1))
        finally:
            for student in pages[1:]:
                await student.close()
    assert len(pids) == ROOM_SIZE, f"{ROOM_SIZE} consoles shared {len(pids)} programs"
