"""Regenerate the console's screenshots in screenshots/ from real sessions.

Starts ``python -m wsdev`` on a free port with a small chat bot written to a temporary folder,
drives the console in headless Chromium (a short conversation with JSON, stderr and a folded
reply), and saves a light and a dark screenshot; then serves ``examples/`` with ``--dir`` and
saves its root listing; then serves ``examples/room.py`` with ``--lan`` and saves the page a
visitor without the link sees (room-join.png) and the console's share view (room-share.png).
Run from the repository root:

    python scripts/screenshot_console.py [--chromium /usr/bin/chromium] [--out screenshots]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal

from playwright.async_api import Browser, Page, async_playwright, expect

ROOT = Path(__file__).resolve().parent.parent

BOT = """\
import json, os, sys
from urllib.parse import parse_qs

query = parse_qs(os.environ.get("QUERY_STRING", ""))
room = query.get("room", ["lobby"])[0]
user = query.get("user", ["guest"])[0]
print(json.dumps({"event": "welcome", "room": room, "user": user, "online": ["ann", "bob"]}))
for line in sys.stdin:
    text = line.rstrip("\\n")
    if text == "/stats":
        print(json.dumps({
            "room": room, "messages": 42, "uptime_s": 3.21,
            "users": [{"name": "ann", "idle_s": 0}, {"name": "bob", "idle_s": 12}],
            "flags": {"moderated": False, "history": True},
        }))
    elif text.startswith("/"):
        print(f"warning: unknown command {text!r}", file=sys.stderr)
        print(json.dumps({"error": "unknown command", "command": text}))
    else:
        print(f"[{room}] {user}: {text}")
"""

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
]


@contextlib.asynccontextmanager
async def serve(
    bot: Path, *, folder: bool = False, flags: tuple[str, ...] = ()
) -> AsyncIterator[int]:
    """Run wsdev on a free port for ``bot`` (or with ``--dir=bot``) and yield the port."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wsdev",
        "--port=0",
        "--address=127.0.0.1",
        "--no-dashboard",
        "--no-reload",
        *flags,
        f"--dir={bot}" if folder else f"./{bot.name}",
        cwd=bot if folder else bot.parent,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        port = 0
        while not port:
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            if not line:
                raise SystemExit("wsdev exited before it listened")
            if match := re.search(rb"ws://(?:127\.0\.0\.1|localhost):(\d+)/", line):
                port = int(match.group(1))
        # Keep reading the log so wsdev never blocks on a full pipe.
        drain = asyncio.ensure_future(_drain(proc.stdout))
        yield port
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()
    await drain


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


async def converse(page: Page, url: str) -> None:
    await page.goto(url)
    await expect(page.locator(".entry.connect")).to_contain_text("pid")
    await expect(page.locator(".entry.recv")).to_have_count(1)
    for count, text in enumerate(["hello everyone", "/stats", "/kick bob"], start=2):
        await page.locator("#input").fill(text)
        await page.locator("#input").press("Enter")
        await expect(page.locator(".entry.recv")).to_have_count(count)
    # Fold the welcome reply to show what a folded reply looks like.
    await page.locator(".entry.recv").first.locator(".json > details > summary").click()
    await page.locator("#input").fill("/whois bob")
    await page.mouse.move(0, 0)


async def shoot(browser: Browser, url: str, scheme: Literal["light", "dark"], out: Path) -> None:
    context = await browser.new_context(
        viewport={"width": 1120, "height": 840}, device_scale_factor=2, color_scheme=scheme
    )
    context.set_default_timeout(15000)
    page = await context.new_page()
    await converse(page, url)
    await page.screenshot(path=str(out))
    await context.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory() as folder:
        bot = Path(folder) / "chat.py"
        bot.write_text(f"#!{sys.executable}\n{BOT}")
        bot.chmod(0o755)
        async with serve(bot) as port:
            url = f"http://127.0.0.1:{port}/chat?room=lobby&user=ann"
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=args.chromium, args=CHROMIUM_ARGS
                )
                await shoot(browser, url, "light", args.out / "console.png")
                await shoot(browser, url, "dark", args.out / "console-dark.png")
                await browser.close()
    async with serve(ROOT / "examples", folder=True) as port, async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=args.chromium, args=CHROMIUM_ARGS
        )
        context = await browser.new_context(
            viewport={"width": 1120, "height": 600}, device_scale_factor=2
        )
        page = await context.new_page()
        await page.goto(f"http://127.0.0.1:{port}/")
        await expect(page.locator(".listing-entries li").first).to_be_visible()
        await page.screenshot(path=str(args.out / "dir-listing.png"))
        await browser.close()
    await shoot_room(args.chromium, args.out)
    print(
        "wrote console.png, console-dark.png, dir-listing.png, room-join.png and room-share.png"
        f" in {args.out}"
    )


async def shoot_room(chromium: str, out: Path) -> None:
    """A room under --lan: the page without the link, and the console's share view."""
    secret = "k7m2q9zx"
    flags = ("--lan", f"--token={secret}")
    room = ROOT / "examples" / "room.py"
    async with serve(room, flags=flags) as port, async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        context = await browser.new_context(
            viewport={"width": 1120, "height": 700}, device_scale_factor=2
        )
        context.set_default_timeout(15000)
        page = await context.new_page()
        await page.goto(f"http://127.0.0.1:{port}/")
        await expect(page.locator("h1")).to_have_text("Ask for the link")
        await page.screenshot(path=str(out / "room-join.png"))
        await page.goto(f"http://127.0.0.1:{port}/?join={secret}")
        await expect(page.locator(".entry.recv")).to_have_count(1)
        for count, text in enumerate(["name Ada", "ask", "answer 4"], start=2):
            await page.locator("#input").fill(text)
            await page.locator("#input").press("Enter")
            await expect(page.locator(".entry.recv")).to_have_count(count)
        await page.locator("#share").click()
        await expect(page.locator("#share-link")).to_contain_text(f"join={secret}")
        await page.mouse.move(0, 0)
        await page.screenshot(path=str(out / "room-share.png"))
        await browser.close()


if __name__ == "__main__":
    asyncio.run(main())
