"""``--reload=new`` with real files, a real watcher and real children (behaviour D2): a save
serves the edited program to new connections while open ones keep theirs, and the log, the
restart notices and the dashboard say which version each connection runs."""

from __future__ import annotations

import asyncio
import io
import json
import sys
from pathlib import Path

import pytest
import websockets
from rich.console import Console
from websockets.asyncio.client import ClientConnection, connect

from conftest import run_wsdev, timeout
from wsdev.cli import build_config, parse_args
from wsdev.config import Config
from wsdev.dashboard import render
from wsdev.errors import ConfigError
from wsdev.events import Connected, ConnectionInfo, ProcessStarted, Restarting, ServerStarted
from wsdev.keys import Key
from wsdev.navigation import View
from wsdev.tally import Tally

RELOAD_NEW = ("--no-reload=false", "--reload=new")  # run_wsdev turns reload off by default

BOT = """\
import sys
print("{version} ready", flush=True)
for line in sys.stdin:
    print("{version} " + line, end="", flush=True)
"""


def write_bot(path: Path, version: str) -> None:
    # Like an editor that saves in place: the running programs already read their code.
    path.write_text(f"#!{sys.executable}\n" + BOT.format(version=version))
    path.chmod(0o755)


async def ask(ws: ClientConnection, text: str) -> str:
    await ws.send(text)
    reply = await asyncio.wait_for(ws.recv(), timeout(10))
    assert isinstance(reply, str)
    return reply


async def test_open_connections_keep_their_version_and_new_ones_get_the_edit(
    tmp_path: Path,
) -> None:
    bot = tmp_path / "bot.py"
    write_bot(bot, "v1")
    async with run_wsdev(*RELOAD_NEW, "./bot.py", cwd=tmp_path) as server:
        await server.wait_for_log(r"Reload mode +: new \(open connections keep their version\)")
        async with (
            connect(server.ws_url + "/_wsdev/restarts") as notices,
            connect(server.ws_url + "/") as first,
        ):
            assert json.loads(await notices.recv()) == {
                "type": "generation",
                "generation": 0,
                "reload": "new",
            }
            assert await first.recv() == "v1 ready"

            write_bot(bot, "v2")
            notice = json.loads(await asyncio.wait_for(notices.recv(), timeout(10)))
            assert notice == {
                "type": "restart",
                "generation": 1,
                "files": ["bot.py"],
                "reload": "new",
            }
            await server.wait_for_log(
                r"Restarting: bot\.py changed \(1 live connection\(s\) stay on the old version\)"
            )
            async with connect(server.ws_url + "/") as second:
                assert await second.recv() == "v2 ready"
                assert await ask(second, "hi") == "v2 hi"
                assert await ask(first, "still there?") == "v1 still there?"

                write_bot(bot, "v3")
                kept = r"\(2 live connection\(s\) stay on the old version\)"
                await server.wait_for_log(r"Restarting: bot\.py changed " + kept)
                async with connect(server.ws_url + "/") as third:
                    assert await third.recv() == "v3 ready"
                assert await ask(second, "and you?") == "v2 and you?"
                assert await ask(first, "and me?") == "v1 and me?"
            assert first.close_code is None  # nothing was closed
        assert not any("1012" in line for line in server.lines), "\n".join(server.lines)


async def test_a_console_hello_says_which_version_its_program_runs(tmp_path: Path) -> None:
    bot = tmp_path / "bot.py"
    write_bot(bot, "v1")
    async with run_wsdev(*RELOAD_NEW, "./bot.py", cwd=tmp_path) as server:
        await server.wait_for_log(r"Reload mode")
        async with connect(server.ws_url + "/_wsdev/ws?path=/&query=") as old:
            assert json.loads(await old.recv())["generation"] == 0
            assert json.loads(await old.recv()) == {"type": "stdout", "data": "v1 ready"}
            write_bot(bot, "v2")
            await server.wait_for_log(r"Restarting: bot\.py changed")
            async with connect(server.ws_url + "/_wsdev/ws?path=/&query=") as new:
                assert json.loads(await new.recv())["generation"] == 1
            await old.send("ok")
            # No restart envelope, no close: the next message is the old program's answer.
            message = json.loads(await asyncio.wait_for(old.recv(), timeout(10)))
            assert message == {"type": "stdout", "data": "v1 ok"}


async def test_reload_all_is_the_default_and_says_so(tmp_path: Path) -> None:
    bot = tmp_path / "bot.py"
    write_bot(bot, "v1")
    async with run_wsdev("--no-reload=false", "./bot.py", cwd=tmp_path) as server:
        await server.wait_for_log(r"Reload mode +: all \(1012 on save\)")
        async with connect(server.ws_url + "/") as ws:
            assert await ws.recv() == "v1 ready"
            write_bot(bot, "v2")
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), timeout(10))
            assert ws.close_code == 1012
        await server.wait_for_log(r"\(1 live connection\(s\) closed with 1012\)")


def config_for(*argv: str) -> Config:
    return build_config(parse_args(argv), environ={})


def test_reload_mode_flag_and_its_mistakes() -> None:
    assert config_for("cat").reload_mode == "all"
    assert config_for("--reload=all", "cat").reload_mode == "all"
    assert config_for("--reload=new", "cat").reload_mode == "new"
    assert config_for("cat", "--reload=new").reload_mode == "new"  # a wsdev option after COMMAND
    env = build_config(parse_args(["cat"]), environ={"WSDEV_RELOAD": "new"})
    assert env.reload_mode == "new"
    with pytest.raises(ConfigError, match=r"--reload=some: use --reload=all .* or --reload=new"):
        config_for("--reload=some", "cat")


# ---------------------------------------------------------------- the dashboard (rich, D2)


def _conn(seq: int, generation: int) -> ConnectionInfo:
    return ConnectionInfo(
        id=f"id-{seq}",
        seq=seq,
        remote=f"127.0.0.1:{50000 + seq}",
        path="/",
        query="",
        url="",
        origin="",
        command="bot.py",
        generation=generation,
    )


def _screen(tally: Tally, config: Config, view: View | None = None, width: int = 120) -> str:
    console = Console(file=io.StringIO(), width=width, height=30, force_terminal=False)
    console.print(render(tally, config, 1000.0, width, 30, view))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(text, str)
    return text


def test_the_dashboard_marks_connections_on_an_old_version() -> None:
    config = Config(command=("bot.py",), command_display="bot.py", reload_mode="new")
    tally = Tally(clock=lambda: 1000.0, wall_clock=lambda: 1_700_000_000.0)
    tally.handle(ServerStarted(("ws://127.0.0.1:8080/",), (), "bot.py", False, ("./**/*.py",)))
    old = _conn(1, 0)
    tally.handle(Connected(old))
    tally.handle(ProcessStarted(old, 4001))
    before = _screen(tally, config)
    assert "--reload=new" in before
    assert " v " not in before and "v1" not in before  # no version column before a save

    tally.handle(Restarting(("bot.py",), 1, 1, kept=True))
    new = _conn(2, 1)
    tally.handle(Connected(new))
    tally.handle(ProcessStarted(new, 4002))
    text = _screen(tally, config)
    assert "bot.py changed, 1 connection kept open" in text
    rows = {line.split()[1]: line for line in text.splitlines() if "127.0.0.1:5000" in line}
    assert rows["#1"].split()[2:4] == ["v1", "old"], text
    assert rows["#2"].split()[2] == "v2" and "old" not in rows["#2"], text
    narrow = _screen(tally, config, width=44)
    assert "v1 old" in narrow  # the version outlasts most columns on a narrow screen

    view = View(keys=True)
    for key in (Key.UP, Key.UP, Key.ENTER):  # the newest, then the one before it: #1
        view.press(key, tally)
    assert view.opened is not None and view.opened.info is old
    assert "#1 / · 127.0.0.1:50001 · pid 4001 · v1 old · up" in _screen(tally, config, view)
