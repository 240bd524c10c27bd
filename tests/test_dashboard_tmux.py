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
