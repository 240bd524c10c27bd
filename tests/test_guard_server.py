"""Behaviour B10 against a real wsdev over real sockets: what a page elsewhere, a rebound name or
a ``file://`` page gets on every route, and what the flags that allow them change.

Every kind of request a browser page could make is sent: WebSocket upgrades to the program's path,
to the console's socket (``/_wsdev/ws``) and to the events feed (``/_wsdev/events``), and plain
requests for the console page, a static file and a CGI script. ``test_guard.py`` covers the
decision itself case by case.
"""

from __future__ import annotations

import asyncio
import re
import socket
import sys
from pathlib import Path

import pytest
from websockets.asyncio.client import unix_connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin

from conftest import ScriptWriter, run_wsdev, timeout
from rawhttp import RawResponse, request, upgrade

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX scripts and sockets")

EVIL = "http://evil.example"
OTHER_LOCAL = "http://localhost:3000"  # another dev server on this machine
CAT = "#!/bin/sh\nexec cat\n"
HELLO_CGI = '#!/bin/sh\nprintf "Content-Type: text/plain\\n\\nhello\\n"\n'

# What a browser page can ask for: (name, is it a WebSocket upgrade, target, is it wsdev's own).
ROUTES = [
    ("program", True, "/", False),
    ("console socket", True, "/_wsdev/ws?path=/", True),
    ("events feed", True, "/_wsdev/events", True),
    ("console page", False, "/_wsdev/", True),
    ("static", False, "/a.txt", False),
    ("cgi", False, "/hello.sh", False),
]


async def send(
    port: int, upgrading: bool, target: str, host: str | None, origin: str | None
) -> RawResponse:
    if upgrading:
        return await upgrade(port, origin, host=host, target=target)
    headers = [("Origin", origin)] if origin is not None else []
    return await request(port, target, headers=headers, host=host)


def served(response: RawResponse, upgrading: bool) -> bool:
    if response.status == 403:
        # One clean line (behaviour B5), plain text, never a program's output.
        assert (response.header("Content-Type") or "").startswith("text/plain")
        assert response.text.startswith("403 ") and response.text.count("\n") == 1
        return False
    assert response.status == (101 if upgrading else 200), (response.status, response.text)
    return True


@pytest.fixture
def folders(tmp_path: Path, tmp_script: ScriptWriter) -> tuple[Path, Path, Path]:
    static = tmp_path / "static"
    static.mkdir()
    (static / "a.txt").write_text("static\n")
    cgi = tmp_path / "cgi"
    cgi.mkdir()
    script = cgi / "hello.sh"
    script.write_text(HELLO_CGI)
    script.chmod(0o755)
    return static, cgi, tmp_script("cat.sh", CAT)


async def test_on_loopback_pages_elsewhere_and_rebound_names_get_403_everywhere(
    folders: tuple[Path, Path, Path],
) -> None:
    static, cgi, cat = folders
    async with run_wsdev(
        f"--staticdir={static}", f"--cgidir={cgi}", "--allow-host=myapp.test", str(cat)
    ) as server:
        port = server.port
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
            same = f"http://{host}"
            for name, upgrading, target, own in ROUTES:
                for origin, program_may, own_may in (
                    (None, True, True),  # curl, scripts: never a page
                    (same, True, True),
                    (OTHER_LOCAL, True, False),  # on this machine, but not wsdev's own page
                    (EVIL, False, False),
                    ("null", False, False),
                    ("https://evil.example:8443", False, False),
                ):
                    response = await send(port, upgrading, target, host, origin)
                    expected = own_may if own else program_may
                    assert served(response, upgrading) is expected, (name, host, origin)
        for host in (f"{socket.gethostname()}:{port}", f"myapp.test:{port}", "localhost"):
            for name, upgrading, target, _ in ROUTES:
                response = await send(port, upgrading, target, host, None)
                assert served(response, upgrading), (name, host)
        # DNS rebinding: a page of attacker.example whose name now points at 127.0.0.1 sends
        # its own name as the Host, and whatever it sends as Origin does not help it.
        for host in (f"attacker.example:{port}", "attacker.example", f"0.0.0.0:{port}"):
            for origin in (None, f"http://{host}", OTHER_LOCAL):
                for name, upgrading, target, _ in ROUTES:
                    response = await send(port, upgrading, target, host, origin)
                    assert not served(response, upgrading), (name, host, origin)
                    assert "--allow-host=" in response.text
        for refusal in (
            r"\| 403 Host 'attacker\.example' .*--allow-host=attacker\.example$",
            r"origin:'http://evil\.example' \| 403 .*--origin=http://evil\.example ",
            r"origin:'null' \| 403 .*--staticdir=DIR.*--origin=null",
            r"url:'http://127\.0\.0\.1:\d+/_wsdev/events' .* \| 403 .*/_wsdev/",
        ):
            await server.wait_for_log(refusal)
        # The log is written in order: once this request shows, every earlier one has.
        assert (await request(port, "/last")).status == 404
        await server.wait_for_log(r"url:'http://127\.0\.0\.1:\d+/last' .*NOT FOUND$")
        # A refused upgrade starts no program.
        started = [line for line in server.lines if line.endswith("| CONNECT")]
        assert started and not [line for line in started if "evil" in line or "null" in line]
        assert not [line for line in started if "attacker" in line or "0.0.0.0" in line]


async def test_origin_star_opens_the_program_and_the_console_page_to_every_page(
    tmp_script: ScriptWriter,
) -> None:
    cat = tmp_script("cat.sh", CAT)
    async with run_wsdev("--origin=*", str(cat)) as server:
        port = server.port
        for origin in (EVIL, "null", None):
            assert (await upgrade(port, origin)).status == 101
            page = await request(port, "/chat", headers=[("Origin", origin)] if origin else [])
            assert page.status == 200 and "<html" in page.text.lower()
        # wsdev's own routes still answer its own pages only, and the Host check stays.
        assert (await upgrade(port, EVIL, target="/_wsdev/events")).status == 403
        assert (await upgrade(port, EVIL, target="/_wsdev/ws?path=/")).status == 403
        assert (await upgrade(port, EVIL, host=f"attacker.example:{port}")).status == 403


async def test_origin_null_lets_file_pages_in_and_nothing_else(tmp_script: ScriptWriter) -> None:
    cat = tmp_script("cat.sh", CAT)
    async with run_wsdev("--origin=null", str(cat)) as server:
        port = server.port
        assert (await upgrade(port, "null")).status == 101
        assert (await upgrade(port, None)).status == 101
        assert (await upgrade(port, OTHER_LOCAL)).status == 101
        assert (await upgrade(port, EVIL)).status == 403
        # The console page at any path is plain HTTP under the same rule.
        assert (await request(port, "/", headers=[("Origin", "null")])).status == 200
        assert (await request(port, "/", headers=[("Origin", EVIL)])).status == 403


async def test_beyond_loopback_websocketds_rule_applies_and_the_console_still_works(
    tmp_script: ScriptWriter,
) -> None:
    cat = tmp_script("cat.sh", CAT)
    flags = ("--port=0", "--address=0.0.0.0", "--no-dashboard", "--no-reload")
    async with run_wsdev(*flags, str(cat), defaults=False) as server:
        match = await server.wait_for_log(r"ws://localhost:(\d+)/")
        port = int(match.group(1))
        # Reached under the machine's network name, as a colleague's browser would.
        host = f"192.0.2.7:{port}"
        page = f"http://{host}"
        console = await request(port, "/", host=host)
        assert console.status == 200
        assert (await upgrade(port, page, host=host, target="/_wsdev/ws?path=/")).status == 101
        assert (await upgrade(port, page, host=host, target="/_wsdev/events")).status == 101
        assert (await upgrade(port, EVIL, host=host, target="/_wsdev/events")).status == 403
        assert (await upgrade(port, EVIL, host=host, target="/_wsdev/ws?path=/")).status == 403
        # No --origin: websocketd lets every page upgrade, and so does wsdev off loopback.
        assert (await upgrade(port, EVIL, host=host)).status == 101
        assert (await upgrade(port, "null", host="attacker.example")).status == 101


async def test_websocketd_flags_replace_the_default(tmp_script: ScriptWriter) -> None:
    cat = tmp_script("cat.sh", CAT)
    async with run_wsdev("--origin=evil.example", str(cat)) as server:
        port = server.port
        assert (await upgrade(port, EVIL)).status == 101
        assert (await upgrade(port, OTHER_LOCAL)).status == 403
        refused = await upgrade(port, None)
        assert refused.status == 403  # websocketd's rule: an Origin is required
        # Plain HTTP is not checked by websocketd's rule.
        assert (await request(port, "/", headers=[("Origin", OTHER_LOCAL)])).status == 200
        line = await server.wait_for_log(r"\| 403 origin not allowed: .*")
        assert re.search(r"--origin", line.group())


async def test_behind_a_unix_socket_the_proxy_decides(tmp_path: Path) -> None:
    # A Unix socket is what a proxy forwards the public to: its Host and Origin are the public's.
    path = tmp_path / "wsdev.sock"
    front = ("--no-dashboard", "--no-reload", f"--unixsocket={path}")
    async with run_wsdev(*front, "cat", defaults=False) as server:
        await server.wait_for_log(str(path).replace(".", r"\."))
        public = Origin("https://chat.example.org")
        async with unix_connect(str(path), "ws://chat.example.org/", origin=public) as ws:
            await ws.send("via the proxy")
            assert await asyncio.wait_for(ws.recv(), timeout(10)) == "via the proxy"
        # wsdev's own routes still take their own pages only.
        with pytest.raises(InvalidStatus) as refused:
            feed = "ws://chat.example.org/_wsdev/events"
            async with unix_connect(str(path), feed, origin=public):
                pass
        assert refused.value.response.status_code == 403
