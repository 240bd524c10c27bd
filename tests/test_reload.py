"""Restart on edit with real files on disk and real children (behaviour D1–D3)."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest
import websockets
from websockets.asyncio.client import connect

from conftest import ServerProcess, converse, run_wsdev, timeout

RELOAD = "--no-reload=false"  # run_wsdev turns reload off by default


def write_script(path: Path, version: str) -> None:
    path.write_text(f"#!/bin/sh\necho {version}\nexec cat\n")
    path.chmod(0o755)


def restarts(server: ServerProcess) -> list[str]:
    return [
        m.group(1) for line in server.lines if (m := re.search(r"Restarting: (.*) changed", line))
    ]


async def wait_restart_count(server: ServerProcess, count: int) -> list[str]:
    async def poll() -> list[str]:
        while len(restarts(server)) < count:
            await server.wait_for_log(r"Restarting:", after=len(server.lines))
        return restarts(server)

    return await asyncio.wait_for(poll(), timeout(10))


async def test_one_save_one_restart_with_1012(tmp_path: Path) -> None:
    script = tmp_path / "bot.sh"
    write_script(script, "v1")
    async with run_wsdev(RELOAD, "./bot.sh", cwd=tmp_path) as server:
        await server.wait_for_log(rf"Restarting on changes to +: {re.escape(str(tmp_path))}$")
        async with connect(server.ws_url + "/") as ws:
            assert await ws.recv() == "v1"
            write_script(script, "v2")
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), timeout(10))
            assert ws.protocol.close_rcvd is not None
            assert (ws.protocol.close_rcvd.code, ws.protocol.close_rcvd.reason) == (
                1012,
                "service restart",
            )
        assert (await converse(server.ws_url + "/", read=1)).messages == ["v2"]
        assert await wait_restart_count(server, 1) == ["bot.sh"]


async def test_rapid_saves_coalesce_into_one_restart(tmp_path: Path) -> None:
    script = tmp_path / "bot.sh"
    write_script(script, "v0")
    async with run_wsdev(RELOAD, "./bot.sh", cwd=tmp_path) as server:
        await server.wait_for_log(r"Restarting on changes to")
        for n in range(5):
            # Like an editor: write a temp file, rename it over the script.
            temp = tmp_path / f".bot.sh.tmp{n}"
            temp.write_text(f"#!/bin/sh\necho v{n + 1}\nexec cat\n")
            temp.chmod(0o755)
            temp.replace(script)
        first = await wait_restart_count(server, 1)
        # A later, separate save must be the very next restart: nothing else came from the burst.
        await asyncio.sleep(0.3)  # let the burst settle, as a person pausing between saves
        (tmp_path / "later.txt").write_text("x")
        both = await wait_restart_count(server, 2)
    assert len(first) == 1
    assert "bot.sh" in first[0]
    assert both[1] == "later.txt"


async def test_ignored_files_do_not_restart(tmp_path: Path) -> None:
    script = tmp_path / "bot.py"
    script.write_text(f"#!{sys.executable}\nprint('hi')\n")
    script.chmod(0o755)
    async with run_wsdev(RELOAD, "./bot.py", cwd=tmp_path) as server:
        await server.wait_for_log(r"Restarting on changes to")
        for ignored in (".git/index", "__pycache__/bot.cpython-311.pyc", "node_modules/x.js"):
            path = tmp_path / ignored
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("ignored")
        (tmp_path / ".bot.py.swp").write_text("swap")
        (tmp_path / "bot.py~").write_text("backup")
        (tmp_path / "wsdev.log").write_text("a log line")
        await asyncio.sleep(0.3)  # give the ignored writes time to (not) trigger anything
        (tmp_path / "data.txt").write_text("watched")
        seen = await wait_restart_count(server, 1)
    assert seen == ["data.txt"]


async def test_broken_save_shows_failure_and_next_save_recovers(tmp_path: Path) -> None:
    script = tmp_path / "bot.py"
    script.write_text(f"#!{sys.executable}\nprint('good')\nimport sys\nsys.stdin.read()\n")
    script.chmod(0o755)
    async with run_wsdev(RELOAD, "./bot.py", cwd=tmp_path) as server:
        await server.wait_for_log(r"Restarting on changes to")
        assert (await converse(server.ws_url + "/", read=1)).messages == ["good"]
        script.write_text(f"#!{sys.executable}\nprint('oops'\n")
        await wait_restart_count(server, 1)
        broken = await converse(server.ws_url + "/")
        assert (broken.close_code, broken.close_reason) == (1011, "exit 1")
        await server.wait_for_log(r"\| stderr +\|.*SyntaxError")
        script.write_text(f"#!{sys.executable}\nprint('fixed')\nimport sys\nsys.stdin.read()\n")
        await wait_restart_count(server, 2)
        assert (await converse(server.ws_url + "/", read=1)).messages == ["fixed"]


async def test_watch_overrides_and_no_reload_disables(tmp_path: Path) -> None:
    script = tmp_path / "bot.sh"
    write_script(script, "v1")
    elsewhere = tmp_path / "config"
    elsewhere.mkdir()
    async with run_wsdev(RELOAD, f"--watch={elsewhere}", "./bot.sh", cwd=tmp_path) as server:
        await server.wait_for_log(rf"Restarting on changes to +: {re.escape(str(elsewhere))}$")
        write_script(script, "v2")  # not watched now
        await asyncio.sleep(0.3)  # long enough for a watched change to be seen
        (elsewhere / "settings.ini").write_text("x")
        assert await wait_restart_count(server, 1) == ["config/settings.ini"]
    async with run_wsdev("./bot.sh", cwd=tmp_path) as server:  # run_wsdev passes --no-reload
        assert (await converse(server.ws_url + "/", read=1)).messages == ["v2"]
    assert not any("Restarting on changes" in line for line in server.lines)


async def test_script_outside_working_folder_is_watched_alone(tmp_path: Path) -> None:
    home = tmp_path / "project"
    home.mkdir()
    work = tmp_path / "elsewhere"
    work.mkdir()
    script = home / "bot.sh"
    write_script(script, "v1")
    async with run_wsdev(RELOAD, str(script), cwd=work) as server:
        await server.wait_for_log(rf"Restarting on changes to +: {re.escape(str(script))}$")
        (work / "unrelated.txt").write_text("x")
        (home / "sibling.txt").write_text("x")
        await asyncio.sleep(0.3)  # long enough for a watched change to be seen
        write_script(script, "v2")
        seen = await wait_restart_count(server, 1)
    assert len(seen) == 1 and seen[0].endswith("bot.sh")


async def test_open_launches_the_browser_on_the_console(tmp_path: Path) -> None:
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\necho "$1" > {opened}\n')
    browser.chmod(0o755)
    async with run_wsdev("--open", "cat", env={"BROWSER": str(browser)}) as server:
        await server.wait_for_log(r"Opened the console in your browser")
        assert opened.read_text().strip() == f"http://127.0.0.1:{server.port}/"


async def test_open_says_so_without_a_browser(tmp_path: Path) -> None:
    async with run_wsdev(
        "--open", "cat", env={"BROWSER": str(tmp_path / "no-such-browser")}
    ) as server:
        await server.wait_for_log(r"No browser found to open; visit http://127\.0\.0\.1:\d+/")
