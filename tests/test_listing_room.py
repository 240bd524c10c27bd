"""The ``--dir`` listing as a room's front page (behaviour C7): each program with its author,
its live connections and a link to its console; a broken program marked, the others unharmed."""

from __future__ import annotations

import asyncio
import contextlib
import html
import re
import sys
from pathlib import Path

import aiohttp
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from conftest import timeout
from wsdev.cli import build_config, parse_args
from wsdev.events import Disconnected, Event, EventBus
from wsdev.listing import author_of
from wsdev.server import Server

ECHO = "import sys\nfor line in sys.stdin:\n    print('{who}: ' + line, end='', flush=True)\n"


def write(folder: Path, name: str, text: str, mode: int = 0o755) -> Path:
    path = folder / name
    path.write_bytes(text.encode())
    path.chmod(mode)
    return path


def make_room(folder: Path) -> None:
    shebang = f"#!{sys.executable}\n"
    write(
        folder,
        "ada.py",
        shebang + "# A quiz bot\n# Author: Ada Lovelace\n" + ECHO.format(who="ada"),
    )
    write(folder, "bob.sh", '#!/bin/sh\nwhile read -r l; do echo "bob: $l"; done\n')
    write(folder, "carol.py", (shebang + ECHO.format(who="carol")).replace("\n", "\r\n"))
    write(folder, "dave.py", ECHO.format(who="dave"))  # no #! line
    write(folder, "notes.txt", "bring snacks\n", 0o644)


def programs(page: str) -> dict[str, dict[str, str]]:
    """Each program's entry: its classes, live count, author and the text of its hint."""
    found = {}
    for m in re.finditer(
        r'<li class="(program[^"]*)" data-live="(\d+)"><a href="([^"]+)">[^<]*</a>'
        r'<span class="author">by ([^<]*)</span><span class="live">([^<]*)</span>'
        r'<span class="why">([^<]*)</span></li>',
        page,
    ):
        classes, live, href, author, live_text, why = m.groups()
        found[href] = {
            "class": classes,
            "live": live,
            "author": html.unescape(author),
            "live_text": live_text,
            "why": html.unescape(why),
        }
    return found


def test_the_author_is_named_near_the_top_or_is_the_file_name(tmp_path: Path) -> None:
    near = write(tmp_path, "x.py", "#!/bin/sh\n\n\n\n# author:  Grace\tHopper \n")
    far = write(tmp_path, "y.sh", "#!/bin/sh\n" + "\n" * 5 + "# author: Nobody\n")
    empty = write(tmp_path, "zed.lua", "-- author:   \n")
    assert author_of(near) == "GraceHopper"
    assert author_of(far) == "y"
    assert author_of(empty) == "zed"


async def test_room_listing_counts_live_connections_and_marks_broken_programs(
    tmp_path: Path,
) -> None:
    make_room(tmp_path)
    config = build_config(
        parse_args(["--port=0", "--address=127.0.0.1", "--loglevel=fatal", f"--dir={tmp_path}"]),
        environ={"PATH": "/usr/bin:/bin"},
    )
    bus = EventBus()
    ended: asyncio.Queue[Disconnected] = asyncio.Queue()

    def on_event(event: Event) -> None:
        if isinstance(event, Disconnected):
            ended.put_nowait(event)

    bus.subscribe(on_event, messages=False)
    server = Server(config, bus)
    await server.start()
    base = f"127.0.0.1:{server.port}"
    try:
        async with aiohttp.ClientSession() as http:

            async def listing() -> dict[str, dict[str, str]]:
                async with http.get(f"http://{base}/") as response:
                    assert response.status == 200
                    return programs(await response.text())

            room = await listing()
            assert set(room) == {"/ada.py", "/bob.sh", "/carol.py", "/dave.py"}
            assert room["/ada.py"]["author"] == "Ada Lovelace"
            assert room["/bob.sh"]["author"] == "bob"
            assert all(entry["live"] == "0" for entry in room.values())
            assert room["/ada.py"]["class"] == "program" and room["/ada.py"]["why"] == (
                "open its console"
            )
            assert room["/carol.py"]["class"] == "program broken"
            assert "Windows line endings" in room["/carol.py"]["why"]
            assert "no #! line" in room["/dave.py"]["why"]

            # Two people on ada's bot, one on bob's.
            async with (
                connect(f"ws://{base}/ada.py") as first,
                connect(f"ws://{base}/ada.py") as second,
                connect(f"ws://{base}/bob.sh") as third,
            ):
                for ws, answer in ((first, "ada: hi"), (second, "ada: hi"), (third, "bob: hi")):
                    await ws.send("hi")
                    assert await asyncio.wait_for(ws.recv(), timeout(10)) == answer
                room = await listing()
                assert (room["/ada.py"]["live"], room["/ada.py"]["live_text"]) == ("2", "2 live")
                assert room["/bob.sh"]["live"] == "1"
                assert room["/carol.py"]["live"] == "0"

                # carol's broken bot fails alone: its client hears why, ada's keep talking.
                async with connect(f"ws://{base}/carol.py") as broken:
                    with contextlib.suppress(ConnectionClosed):
                        await asyncio.wait_for(broken.recv(), timeout(10))
                    await asyncio.wait_for(broken.wait_closed(), timeout(10))
                    assert broken.close_code == 1011
                await first.send("still here?")
                assert await asyncio.wait_for(first.recv(), timeout(10)) == "ada: still here?"
                assert (await listing())["/ada.py"]["live"] == "2"

            # Once their programs have ended, nobody is counted.
            for _ in range(4):  # three sessions and carol's refused one
                await asyncio.wait_for(ended.get(), timeout(10))
            assert all(entry["live"] == "0" for entry in (await listing()).values())
    finally:
        await server.close()
