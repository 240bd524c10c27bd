"""Regenerate screenshots/dashboard.png, dashboard-connection.png and dashboard-room.png from
real sessions in a real terminal.

Runs ``python -m wsdev`` in a tmux pane on a small chat bot written to a temporary folder, drives
it with real WebSocket clients (a conversation, an edit that restarts the bot, a crash with a
real traceback, a ``--maxforks`` rejection, a reply that lacks its newline), captures the pane
with its colours (``tmux capture-pane -e``); then presses ↑ ↑ Enter to open one connection's
view and captures that too. Then a workshop: ``examples/room.py`` under ``--lan`` with thirty
named consoles from thirty addresses, captured with the table grouped by student. Each capture
becomes an SVG with rich and a PNG with headless Chromium. Run from the repository root:

    python scripts/screenshot_dashboard.py [--chromium /usr/bin/chromium] [--out screenshots]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import websockets
from rich.console import Console
from rich.text import Text

ROOT = Path(__file__).resolve().parent.parent
COLUMNS, ROWS = 132, 38

BOT = """\
#!/usr/bin/env python3
import json, os, sys, time
from urllib.parse import parse_qs

user = parse_qs(os.environ.get("QUERY_STRING", "")).get("user", ["guest"])[0]
print(f"[bot] {user} joined from {os.environ['REMOTE_ADDR']}", file=sys.stderr)
for n, line in enumerate(sys.stdin, 1):
    text = line.rstrip("\\n")
    if text.startswith("count "):
        n = int(text[6:])  # a word instead of a number ends in a real traceback
    if text == "think":
        print("\\x1b[33mWARN\\x1b[0m slow reply for " + user, file=sys.stderr, flush=True)
        sys.stdout.write("thinking")
        sys.stdout.flush()
        time.sleep(30)
    print(f"[bot] {user} says {text!r}", file=sys.stderr)
    print(json.dumps({"n": n, "user": user, "echo": text}))
"""


class Tmux:
    def __init__(self, folder: Path) -> None:
        self.base = ["tmux", "-S", str(folder / "tmux.sock"), "-f", os.devnull]

    def __call__(self, *args: str) -> str:
        env = {k: v for k, v in os.environ.items() if k != "TMUX"}
        done = subprocess.run(
            [*self.base, *args], capture_output=True, text=True, env=env, check=True
        )
        return done.stdout

    async def wait_for(
        self, predicate: Callable[[str], object], what: str, session: str = "demo"
    ) -> str:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            screen = self("capture-pane", "-p", "-t", session)
            if predicate(screen):
                return screen
            await asyncio.sleep(0.1)  # a terminal has no event to wait on
        raise SystemExit(f"the dashboard never showed {what}:\n{screen}")


async def drive(tmux: Tmux, bot: Path) -> tuple[str, str]:
    """Play the session; returns the dashboard and one connection's view as ANSI text."""
    screen = await tmux.wait_for(lambda s: "ws://127.0.0.1:" in s, "its URL")
    port = re.search(r"ws://127\.0\.0\.1:(\d+)/", screen).group(1)  # type: ignore[union-attr]
    url = f"ws://127.0.0.1:{port}/chat"

    async def chat(ws: websockets.ClientConnection, *lines: str) -> None:
        for line in lines:
            await ws.send(line)
            await ws.recv()

    first = await websockets.connect(f"{url}?user=ada")
    second = await websockets.connect(f"{url}?user=linus")
    await chat(first, "hello", "how are you?")
    await chat(second, "hi all")
    await tmux.wait_for(lambda s: "#2 " in s and "linus says" in s, "the first clients")

    bot.write_text(bot.read_text() + "# reply in JSON\n")  # an edit: wsdev restarts the bot
    for ws in (first, second):
        await asyncio.wait_for(ws.wait_closed(), 30)
    await tmux.wait_for(lambda s: "changed" in s, "the restart")

    ada = await websockets.connect(f"{url}?user=ada")
    grace = await websockets.connect(f"{url}?user=grace")
    await chat(ada, "back again", "what changed?", "ok")
    await chat(grace, "hello", "ping", '{"op": "join", "room": "lobby", "nick": "grace"}')
    mallory = await websockets.connect(f"{url}?user=mallory")
    await mallory.send("count twelve")
    await asyncio.wait_for(mallory.wait_closed(), 30)
    ken = await websockets.connect(f"{url}?user=ken")
    await chat(ken, "hello")
    with contextlib.suppress(websockets.InvalidStatus):
        extra = await websockets.connect(f"{url}?user=eve")  # over --maxforks: 429
        await extra.close()
    await ken.send("think")
    await chat(grace, "anyone there?")
    await tmux.wait_for(lambda s: "without newline" in s and "429" in s, "the stall and the 429")
    await asyncio.sleep(1.2)  # let the ages read as seconds, as a user would see them
    ansi = tmux("capture-pane", "-e", "-p", "-t", "demo")
    for key in ("Up", "Up"):  # the newest (ken), then the one before it (grace)
        tmux("send-keys", "-t", "demo", key)
    await tmux.wait_for(lambda s: "Enter: open" in s, "the selection")
    tmux("send-keys", "-t", "demo", "Enter")
    await tmux.wait_for(lambda s: "/chat?user=grace · " in s and "Esc: back" in s, "the view")
    connection = tmux("capture-pane", "-e", "-p", "-t", "demo")
    for ws in (ada, grace, ken):
        await ws.close()
    return ansi, connection


STUDENTS = (
    "ada", "alan", "barbara", "bjarne", "brian", "dennis", "donald", "edsger", "frances", "grace",
    "guido", "hedy", "ivan", "james", "john", "ken", "larry", "linus", "margaret", "niklaus",
    "radia", "rob", "shafi", "sophie", "tim", "tony", "vint", "whitfield", "yukihiro", "annie",
)  # fmt: skip
SECRET = "k7m2q9zx"


async def drive_room(tmux: Tmux) -> str:
    """Thirty students join the quiz room from their own addresses; the dashboard as ANSI."""
    screen = await tmux.wait_for(lambda s: "ws://localhost:" in s, "its URL", "room")
    port = re.search(r"ws://localhost:(\d+)/", screen).group(1)  # type: ignore[union-attr]
    cookie = [("Cookie", f"wsdev_join={SECRET}")]
    students = []
    for index, name in enumerate(STUDENTS):
        url = f"ws://127.0.0.1:{port}/_wsdev/ws?path=/&name={name}"
        # Each laptop of the room is a loopback address of its own.
        ws = await websockets.connect(
            url, additional_headers=cookie, local_addr=(f"127.0.0.{10 + index}", 0)
        )
        students.append(ws)
    for index, ws in enumerate(students):
        await ws.send("ask")
        if index % 3 != 2:
            await ws.send("answer 4")
        if index % 7 == 0:
            await ws.send(f"say hi from {STUDENTS[index]}")
    await tmux.wait_for(lambda s: "live 30" in s, "thirty students", "room")
    await asyncio.sleep(1.5)  # every answer in, and the ages read as seconds
    ansi = tmux("capture-pane", "-e", "-p", "-t", "room")
    for ws in students:
        await ws.close()
    return ansi


def to_svg(ansi: str) -> str:
    console = Console(
        record=True, width=COLUMNS, file=io.StringIO(), force_terminal=True, color_system="256"
    )
    for line in ansi.rstrip("\n").split("\n"):
        console.print(Text.from_ansi(line, no_wrap=True), overflow="crop", no_wrap=True)
    svg = console.export_svg(title="wsdev", font_aspect_ratio=0.602)
    # The default template fetches Fira Code from a CDN; use the font this machine has.
    svg = re.sub(r"@font-face \{.*?\}", "", svg, flags=re.S)
    return svg.replace("Fira Code, monospace", "'DejaVu Sans Mono', monospace")


def to_png(svg: str, out: Path, chromium: str, folder: Path) -> None:
    """``svg`` as a PNG the size of its view box, drawn by headless Chromium."""
    box = re.search(r'viewBox="0 0 ([\d.]+) ([\d.]+)"', svg)
    assert box is not None
    width, height = (round(float(v)) for v in box.groups())
    page = folder / "dashboard.html"
    page.write_text(
        "<!doctype html><meta charset='utf-8'>"
        "<style>html,body{margin:0;background:#fff}svg{display:block}</style>" + svg
    )
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            f"--window-size={width},{height}",
            f"--screenshot={out}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots")
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        raise SystemExit("tmux is needed: apt-get install tmux")

    with tempfile.TemporaryDirectory(prefix="wsdev-") as tmp:
        folder = Path(tmp)
        project = folder / "chatbot"
        project.mkdir()
        bot = project / "bot.py"
        bot.write_text(BOT)
        bot.chmod(0o755)
        wsdev = [sys.executable, "-m", "wsdev", "--port=0", "--address=127.0.0.1"]
        command = shlex.join([*wsdev, "--maxforks=3", "./bot.py"])
        tmux = Tmux(folder)
        tmux(
            "new-session", "-d", "-s", "demo", "-x", str(COLUMNS), "-y", str(ROWS),
            "-c", str(project), "-e", f"PYTHONPATH={ROOT / 'src'}", "-e", "TERM=xterm-256color",
            command,
        )  # fmt: skip
        try:
            captures: tuple[str, ...] = asyncio.run(drive(tmux, bot))
        finally:
            with contextlib.suppress(subprocess.CalledProcessError):
                tmux("send-keys", "-t", "demo", "C-c")
                time.sleep(2)  # let wsdev end its programs before the server goes
                tmux("kill-server")
        room = ROOT / "examples" / "room.py"
        command = shlex.join(
            [*wsdev[:-1], "--address=127.0.0.1", "--lan", f"--token={SECRET}", str(room)]
        )
        tmux(
            "new-session", "-d", "-s", "room", "-x", str(COLUMNS), "-y", str(ROWS),
            "-c", str(folder), "-e", f"PYTHONPATH={ROOT / 'src'}", "-e", "TERM=xterm-256color",
            "-e", f"ROOM_DIR={folder / 'room'}", command,
        )  # fmt: skip
        try:
            captures = (*captures, asyncio.run(drive_room(tmux)))
        finally:
            with contextlib.suppress(subprocess.CalledProcessError):
                tmux("send-keys", "-t", "room", "C-c")
                time.sleep(2)
                tmux("kill-server")
        args.out.mkdir(parents=True, exist_ok=True)
        names = ("dashboard", "dashboard-connection", "dashboard-room")
        for name, ansi in zip(names, captures, strict=True):
            out = args.out / f"{name}.png"
            to_png(to_svg(ansi), out, args.chromium, folder)
            print(f"wrote {out}")


if __name__ == "__main__":
    main()
