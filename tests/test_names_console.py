"""A name given in the console, in a real headless Chromium (behaviour C9, E4): typed, kept in
the browser, sent with each connection, shown in the dashboard, and given to the program only
under ``--names``."""

from __future__ import annotations

import asyncio
import io
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect
from rich.console import Console

import test_console
from conftest import local_config, timeout
from test_console import entries, open_console, send
from wsdev.config import Config
from wsdev.dashboard import render
from wsdev.events import Connected, Event, EventBus
from wsdev.navigation import View
from wsdev.server import Server
from wsdev.tally import Tally

# The console tests' browser, context and page fixtures.
browser = test_console.browser
context = test_console.context
page = test_console.page

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

# Greets with the query it was given, then echoes.
QUERY_BOT = f"""#!{sys.executable}
import os, sys
print("query=[" + os.environ["QUERY_STRING"] + "] uri=" + os.environ["REQUEST_URI"], flush=True)
for line in sys.stdin:
    print("echo: " + line, end="", flush=True)
"""


class Room:
    """An in-process wsdev whose dashboard tally the test can draw, and who connected."""

    def __init__(self, server: Server, config: Config, tally: Tally) -> None:
        self.server, self.config, self.tally = server, config, tally
        self.names: asyncio.Queue[str] = asyncio.Queue()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}/"

    def on_event(self, event: Event) -> None:
        self.tally.handle(event)
        if isinstance(event, Connected):
            self.names.put_nowait(event.conn.client_name)

    async def next_name(self) -> str:
        return await asyncio.wait_for(self.names.get(), timeout(15))

    def dashboard(self, view: View | None = None) -> str:
        console = Console(file=io.StringIO(), width=140, height=40, force_terminal=False)
        console.print(render(self.tally, self.config, 0.0, 140, 40, view))
        return console.file.getvalue()  # type: ignore[attr-defined,no-any-return]


@asynccontextmanager
async def room(tmp_path: Path, *flags: str) -> AsyncIterator[Room]:
    bot = tmp_path / "quiz.py"
    bot.write_text(QUERY_BOT)
    bot.chmod(0o755)
    config = local_config(bot, "--no-reload", *flags)
    bus = EventBus()
    server = Server(config, bus)
    wsdev_room = Room(server, config, Tally())
    bus.subscribe(wsdev_room.on_event, messages=False)
    await server.start()
    try:
        yield wsdev_room
    finally:
        await server.close()


async def give_name(page: Page, name: str) -> None:
    await page.locator("#name").fill(name)
    await page.locator("#name").press("Enter")


async def test_a_name_is_kept_sent_and_shown_but_not_given_to_the_program(
    page: Page, tmp_path: Path
) -> None:
    async with room(tmp_path) as wsdev:
        await open_console(page, wsdev.url)
        assert await wsdev.next_name() == ""  # no name yet
        await expect(entries(page, "recv").last).to_have_text(re.compile(r"query=\[\] uri=/$"))

        await give_name(page, "  Ada\tLovelace  ")
        # Cleaned as wsdev cleans it, kept in the browser, and a new connection carries it.
        await expect(page.locator("#name")).to_have_value("AdaLovelace")
        assert await wsdev.next_name() == "AdaLovelace"
        stored = await page.evaluate("localStorage.getItem('wsdev.name')")
        assert stored == "AdaLovelace"
        await expect(entries(page, "info").last).to_contain_text("Your name is now AdaLovelace")
        await expect(entries(page, "connect")).to_have_count(2)
        await expect(entries(page, "connect").last).to_contain_text("as AdaLovelace")
        await expect(page.locator("#status")).to_have_attribute("data-state", "open")
        # The program was not told: its query and request URI are as a plain client's.
        await expect(entries(page, "recv").last).to_have_text(re.compile(r"query=\[\] uri=/$"))
        await send(page, "hi")
        await expect(entries(page, "recv").last).to_contain_text("echo: hi")

        # The dashboard shows who it is.
        screen = wsdev.dashboard()
        assert "AdaLovelace · 127.0.0.1" in screen

        # A reload keeps the name, in the field and on the wire.
        await page.reload()
        await expect(page.locator("#name")).to_have_value("AdaLovelace")
        assert await wsdev.next_name() == "AdaLovelace"

        # Cleared, the next connection is anonymous again.
        await give_name(page, "")
        assert await wsdev.next_name() == ""
        assert await page.evaluate("localStorage.getItem('wsdev.name')") is None


async def test_with_names_the_program_sees_who_it_talks_to(
    browser: Browser, page: Page, tmp_path: Path
) -> None:
    async with room(tmp_path, "--names") as wsdev:
        await open_console(page, wsdev.url + "quiz?room=1")
        assert await wsdev.next_name() == ""
        await give_name(page, "Grace H.")
        assert await wsdev.next_name() == "Grace H."
        await expect(entries(page, "recv").last).to_contain_text(
            "query=[room=1&name=Grace%20H.] uri=/quiz?room=1&name=Grace%20H."
        )

        # Another person (another browser profile) is grouped apart in the dashboard.
        other_context = await browser.new_context()
        try:
            other = await other_context.new_page()
            await open_console(other, wsdev.url + "quiz")
            assert await wsdev.next_name() == ""
            await give_name(other, "Alan")
            assert await wsdev.next_name() == "Alan"
            await expect(entries(other, "recv").last).to_contain_text(
                "query=[name=Alan] uri=/quiz?name=Alan"
            )
            screen = wsdev.dashboard()
            assert "Grace H." in screen and "Alan · 127.0.0.1" in screen
            # One connection each: no heading rows, each row names its person.
            assert "1 connection " not in screen and "Grace H. · 127.0.0.1" in screen
        finally:
            await other_context.close()
