"""The dashboard in a real terminal: wsdev runs in a tmux pane, real clients connect to it.

The screen is read with ``tmux capture-pane``; a terminal has no event to wait on, so each wait
polls the pane with a bounded timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import shutil
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from conftest import ROOT, timeout

TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed")

CHILD = """\
import sys
print("child ready", file=sys.stderr, flush=True)
for line in sys.stdin:
    line = line.rstrip("\\n")
    print(line.upper(), flush=True)
    print(f"stderr says {line}", file=sys.stderr, flush=True)
"""


class Pane:
    """One tmux server of our own (its own socket), with one session running one command."""

    def __init__(self, socket_dir: Path) -> None:
        self.socket = str(socket_dir / "tmux.sock")
        config = socket_dir / "tmux.conf"
        # Keep the pane after its program exits, so its last screen can be read.
        config.write_text("set -g remain-on-exit on\n")
        self.config = str(config)

    async def tmux(self, *args: str) -> str:
        env = {k: v for k, v in os.environ.items() if k != "TMUX"}
        proc = await asyncio.create_subprocess_exec(
            TMUX or "tmux",
            "-S",
            self.socket,
            "-f",
            self.config,
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)} failed: {err.decode()}")
        return out.decode("utf-8", "replace")

    async def screen(self, history: bool = False) -> str:
        scroll = ["-S", "-"] if history else []
        return await self.tmux("capture-pane", "-p", *scroll, "-t", "wsdev")

    async def wait_for(
        self,
        predicate: Callable[[str], object],
        what: str,
        within: float = 20,
        history: bool = False,
    ) -> str:
        """The screen, once ``predicate`` holds for it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout(within)
        text = ""
        while loop.time() < deadline:
            text = await self.screen(history)
            if predicate(text):
                return text
            await asyncio.sleep(0.05)
        raise AssertionError(f"the screen never showed {what}:\n{text}")


@pytest.fixture
async def pane(tmp_path: Path) -> AsyncIterator[Pane]:
    sockets = tmp_path / "tmux"
    sockets.mkdir()
    pane = Pane(sockets)
    yield pane
    with contextlib.suppress(AssertionError):  # already gone
        await pane.tmux("kill-server")


async def test_dashboard_in_a_real_terminal(pane: Pane, tmp_path: Path) -> None:
    script = tmp_path / "shout.py"
    script.write_text(CHILD)
    wsdev = [sys.executable, "-m", "wsdev", "--port=0", "--address=127.0.0.1", "--no-reload"]
    # bash reports wsdev's exit status: tmux itself does not always reap a pane's program.
    wsdev_command = shlex.join([*wsdev, sys.executable, str(script)])
    command = shlex.join(["bash", "-c", f'{wsdev_command}; echo "wsdev exited with status $?"'])
    await pane.tmux(
        "new-session", "-d", "-s", "wsdev", "-x", "120", "-y", "40", "-c", str(tmp_path),
        "-e", f"PYTHONPATH={ROOT / 'src'}", "-e", "TERM=xterm-256color", command,
    )  # fmt: skip

    text = await pane.wait_for(lambda s: re.search(r"ws://127\.0\.0\.1:\d+/", s), "the ws:// URL")
    port = re.search(r"ws://127\.0\.0\.1:(\d+)/", text).group(1)  # type: ignore[union-attr]
    assert "wsdev" in text.splitlines()[0] and "serving" in text.splitlines()[0]
    assert "waiting for a client" in text

    async with connect(f"ws://127.0.0.1:{port}/chat?room=1") as first:
        await first.send("hello")
        assert await asyncio.wait_for(first.recv(), timeout(10)) == "HELLO"
        async with connect(f"ws://127.0.0.1:{port}/") as second:
            await second.send("ping")
            assert await asyncio.wait_for(second.recv(), timeout(10)) == "PING"

            def both_rows(screen: str) -> bool:
                return (
                    "connections · 2 live" in screen
                    and re.search(r"#1 .*/chat\?room=1 .*1 · 5 B +1 · \d B .*out HELLO", screen)
                    is not None
                    and re.search(r"#2 .* / .*1 · 4 B +1 · \d B .*out PING", screen) is not None
                    and "#1 stderr says hello" in screen
                    and "#2 stderr says ping" in screen
                )

            text = await pane.wait_for(both_rows, "both connections and their stderr")
            assert "live 2" in text and "total 2" in text

            # A narrow terminal: the redraw fits it, with the essential columns.
            await pane.tmux("resize-window", "-t", "wsdev", "-x", "40", "-y", "24")
            text = await pane.wait_for(
                lambda s: re.search(r"^ wsdev .* up \S+ *$", s, re.M) and " path " in s,
                "a 40-column redraw",
            )
            assert all(len(line) <= 40 for line in text.splitlines())
            await pane.tmux("resize-window", "-t", "wsdev", "-x", "120", "-y", "40")

        text = await pane.wait_for(
            lambda s: "connections · 1 live" in s and re.search(r"- #2 closed 1000 .*· \S+s", s),
            "the second connection leaving",
        )
        assert "#1 " in text

    await pane.wait_for(lambda s: re.search(r"- #1 closed 1000", s), "the first one leaving")
    await pane.tmux("send-keys", "-t", "wsdev", "C-c")

    # Leaving the other screen, tmux may scroll the summary into its history.
    text = await pane.wait_for(
        lambda s: "wsdev exited with status" in s, "wsdev exiting on Ctrl+C", history=True
    )
    assert "wsdev exited with status 0" in text, text
    # Back on the normal screen, with the summary and no traceback.
    assert "wsdev served 2 connections" in text and "2 messages in, 2 out" in text
    assert "Traceback" not in text


CRASHER = """\
import sys
print("child ready", file=sys.stderr, flush=True)
for line in sys.stdin:
    word = line.strip()
    if word.startswith("count "):
        n = int(word[6:])
    print(word.upper(), flush=True)
    print(f"stderr says {word}", file=sys.stderr, flush=True)
"""


def squash(text: str) -> str:
    """What wrapped rows read as once joined: no spaces, no box lines."""
    return re.sub(r"[\s│╭╮╰╯─]", "", text)


async def start_wsdev(pane: Pane, folder: Path, *args: str, width: int, height: int) -> str:
    """wsdev in the pane at ``width`` x ``height``; returns its port once it serves."""
    wsdev = [sys.executable, "-m", "wsdev", "--port=0", "--address=127.0.0.1", "--no-reload"]
    # After wsdev: its status, and the terminal's modes (cbreak must be undone).
    modes = 'stty -a | tr " ;" "\\n\\n" | grep -xE -- "-?(icanon|echo)"'
    after = f'echo "wsdev exited with status $?"; {modes}'
    command = shlex.join(["bash", "-c", f"{shlex.join([*wsdev, *args])}; {after}"])
    await pane.tmux(
        "new-session", "-d", "-s", "wsdev", "-x", str(width), "-y", str(height), "-c", str(folder),
        "-e", f"PYTHONPATH={ROOT / 'src'}", "-e", "TERM=xterm-256color", command,
    )  # fmt: skip
    text = await pane.wait_for(lambda s: re.search(r"ws://127\.0\.0\.1:\d+/", s), "the ws:// URL")
    return re.search(r"ws://127\.0\.0\.1:(\d+)/", text).group(1)  # type: ignore[union-attr]


async def quit_and_check_the_terminal(pane: Pane) -> None:
    await pane.tmux("send-keys", "-t", "wsdev", "C-c")
    text = await pane.wait_for(
        lambda s: re.search(r"^-?echo$", s, re.M), "wsdev exiting on Ctrl+C", history=True
    )
    assert "wsdev exited with status 0" in text, text
    # The terminal is back in its own modes: lines and echo, as the shell left them.
    assert re.search(r"^icanon$", text, re.M) and re.search(r"^echo$", text, re.M), text
    assert "Traceback" not in text.split("wsdev served")[-1]


async def test_a_traceback_reads_whole_and_keys_open_a_connection(
    pane: Pane, tmp_path: Path
) -> None:
    # A deep folder, as a student's would be: the traceback's File line is long.
    folder = tmp_path / "courses" / "websockets-for-beginners" / "week-03" / "examples"
    folder.mkdir(parents=True)
    script = folder / "count_bot.py"
    script.write_text(CRASHER)
    port = await start_wsdev(pane, folder, sys.executable, str(script), width=120, height=35)
    url = f"ws://127.0.0.1:{port}"

    crash = await connect(f"{url}/crash")
    await crash.send("count twelve")
    await asyncio.wait_for(crash.wait_closed(), timeout(10))
    text = await pane.wait_for(lambda s: "ValueError" in s, "the traceback")
    lines = text.splitlines()
    top = next(i for i, line in enumerate(lines) if "─ stderr " in line)
    stderr_pane = squash("\n".join(line[:60] for line in lines[top:]))
    for line in (
        f'File "{script}", line 6, in <module>',
        "n = int(word[6:])",
        "ValueError: invalid literal for int() with base 10: 'twelve'",
    ):
        assert squash(line) in stderr_pane, (line, text)

    clients = [await connect(f"{url}/room/{n}") for n in (1, 2, 3)]
    for n, ws in enumerate(clients, 1):
        await ws.send(f"hello{n}")
        assert await asyncio.wait_for(ws.recv(), timeout(10)) == f"HELLO{n}"
    await pane.wait_for(lambda s: "connections · 3 live" in s, "three connections")

    await pane.tmux("send-keys", "-t", "wsdev", "Up")  # selects the newest
    await pane.wait_for(lambda s: "Enter: open" in s, "a selection")
    await pane.tmux("send-keys", "-t", "wsdev", "Up")
    await pane.tmux("send-keys", "-t", "wsdev", "Enter")
    text = await pane.wait_for(lambda s: "/room/2 · 127.0.0.1" in s, "the second connection's view")
    assert re.search(r"\d\d:\d\d:\d\d in +6 B hello2", text), text
    assert re.search(r"\d\d:\d\d:\d\d out +6 B HELLO2", text), text
    assert re.search(r"\d\d:\d\d:\d\d stderr says hello2", text), text
    assert "hello1" not in text and "hello3" not in text and "connections ·" not in text

    await clients[1].send("again")  # the view follows the connection live
    await pane.wait_for(lambda s: re.search(r"out +5 B AGAIN", s), "the new message")
    await pane.tmux("send-keys", "-t", "wsdev", "Escape")
    await pane.wait_for(lambda s: "connections · 3 live" in s, "the table again")
    for ws in clients:
        await ws.close()
    await quit_and_check_the_terminal(pane)


async def test_thirty_connections_scroll_with_the_selection(pane: Pane, tmp_path: Path) -> None:
    port = await start_wsdev(pane, tmp_path, "cat", width=120, height=35)
    clients = [await connect(f"ws://127.0.0.1:{port}/n{n}") for n in range(1, 31)]
    try:
        text = await pane.wait_for(lambda s: "connections · 30 live" in s, "30 connections")
        assert re.search(r"^│ +#30 ", text, re.M) and not re.search(r"^│ +#1 ", text, re.M)
        assert re.search(r"↑ \d+ more", text)

        await pane.tmux("send-keys", "-t", "wsdev", "Home")
        text = await pane.wait_for(lambda s: re.search(r"^│ +#1 ", s, re.M), "the oldest row")
        assert re.search(r"↓ \d+ more", text) and not re.search(r"^│ +#30 ", text, re.M)
        shown = re.search(r"connections · 30 live · 1–(\d+) shown", text)
        assert shown is not None, text
        last = int(shown.group(1))
        for _ in range(last):  # one step past the bottom row scrolls the table by one
            await pane.tmux("send-keys", "-t", "wsdev", "Down")
        await pane.wait_for(
            lambda s: f"· 2–{last + 1} shown" in s and re.search(rf"^│ +#{last + 1} ", s, re.M),
            "the table scrolled by one",
        )
        await pane.tmux("send-keys", "-t", "wsdev", "End")
        await pane.wait_for(lambda s: re.search(r"^│ +#30 ", s, re.M), "the newest row")
    finally:
        for ws in clients:
            await ws.close()
    await quit_and_check_the_terminal(pane)
