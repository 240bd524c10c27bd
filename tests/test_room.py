"""A room on the local network: ``--lan``, its link and QR code, the join secret (behaviour B14)."""

from __future__ import annotations

from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from conftest import ScriptWriter, run_wsdev, timeout
from rawhttp import request, upgrade, upgrade_headers
from terminalqr import scan
from wsdev.cli import build_config, parse_args
from wsdev.errors import ConfigError
from wsdev.lan import lan_addresses

SECRET = "k7m2q9zx"
# Prints its environment as messages, then waits for the client to leave.
ENV_DUMP = "#!/bin/sh\nenv | sort\nexec cat\n"
CGI_ENV = '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\n"\nenv | sort\n'
# Every flag a room test starts wsdev with: the room on 127.0.0.1 only, so no test depends on
# this machine having a network (--lan still turns the room's rules on).
ROOM = ("--port=0", "--address=127.0.0.1", "--no-dashboard", "--no-reload", "--lan")


@pytest.fixture
def folders(tmp_path: Path, tmp_script: ScriptWriter) -> tuple[Path, Path, Path]:
    static = tmp_path / "static"
    static.mkdir()
    (static / "hello.txt").write_text("hello from a file\n")
    cgi = tmp_path / "cgi"
    cgi.mkdir()
    script = cgi / "env.sh"
    script.write_text(CGI_ENV)
    script.chmod(0o755)
    return static, cgi, tmp_script("env.sh", ENV_DUMP)


async def test_without_the_secret_every_route_is_refused(
    folders: tuple[Path, Path, Path],
) -> None:
    static, cgi, program = folders
    flags = (*ROOM, f"--token={SECRET}", f"--staticdir={static}", f"--cgidir={cgi}")
    async with run_wsdev(*flags, str(program), defaults=False) as server:
        port = int((await server.wait_for_log(r"ws://localhost:(\d+)/")).group(1))
        for target in ("/hello.txt", "/env.sh", "/_wsdev/", "/_wsdev/static/console.js"):
            refused = await request(port, target)
            assert refused.status == 403, target
            assert "Ask for the link" in refused.text
        for target in ("/", "/_wsdev/ws?path=/", "/_wsdev/events", "/_wsdev/restarts"):
            assert (await upgrade(port, target=target)).status == 403, target
        # A wrong secret is no secret, in the query or in the cookie.
        assert (await request(port, "/hello.txt?join=wrong123")).status == 403
        cookie = [("Cookie", "wsdev_join=wrong123")]
        assert (await request(port, "/hello.txt", headers=cookie)).status == 403
        await server.wait_for_log(r"ask for the link")


async def test_the_link_sets_a_cookie_and_the_program_never_sees_the_secret(
    folders: tuple[Path, Path, Path],
) -> None:
    static, cgi, program = folders
    flags = (*ROOM, f"--token={SECRET}", f"--staticdir={static}", f"--cgidir={cgi}")
    async with run_wsdev(*flags, str(program), defaults=False) as server:
        port = int((await server.wait_for_log(r"ws://localhost:(\d+)/")).group(1))
        joined = await request(port, f"/hello.txt?a=1&join={SECRET}")
        # The address bar loses the secret; the cookie keeps it for reloads and reconnects.
        assert joined.status == 303
        assert joined.header("Location") == "/hello.txt?a=1"
        set_cookie = joined.header("Set-Cookie") or ""
        assert set_cookie.startswith(f"wsdev_join={SECRET};")
        assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie
        cookie = ("Cookie", f"theme=dark; wsdev_join={SECRET}; lang=en")
        served = await request(port, "/hello.txt", headers=[cookie])
        assert (served.status, served.text) == (200, "hello from a file\n")

        # A CGI script gets the other cookies, not the secret.
        cgi_env = (await request(port, "/env.sh?x=2", headers=[cookie])).text
        assert "HTTP_COOKIE=theme=dark; lang=en" in cgi_env
        assert SECRET not in cgi_env

        # A program gets neither the query parameter nor the cookie.
        url = f"ws://127.0.0.1:{port}/room?x=1&join={SECRET}&y=2"
        async with connect(url, additional_headers=[cookie], open_timeout=timeout(10)) as ws:
            lines = [str(await ws.recv()) for _ in range(3)]
            while not any(line.startswith("SERVER_SOFTWARE=") for line in lines):
                lines.append(str(await ws.recv()))
        environment = "\n".join(lines)
        assert "QUERY_STRING=x=1&y=2" in environment
        assert "REQUEST_URI=/room?x=1&y=2" in environment
        assert "HTTP_COOKIE=theme=dark; lang=en" in environment
        assert SECRET not in environment

        # The cookie alone lets a console (or any client) in.
        headers = upgrade_headers(cookie)
        assert (await upgrade(port, headers=headers, target="/_wsdev/ws?path=/")).status == 101


async def test_no_token_lets_everyone_in_and_says_so_loudly(tmp_script: ScriptWriter) -> None:
    program = tmp_script("cat.sh", "#!/bin/sh\nexec cat\n")
    async with run_wsdev(*ROOM, "--no-token", str(program), defaults=False) as server:
        port = int((await server.wait_for_log(r"ws://localhost:(\d+)/")).group(1))
        await server.wait_for_log(r"ERROR .*--no-token: ANYONE on this network")
        assert (await upgrade(port)).status == 101
        assert "join=" not in "\n".join(server.lines)


async def test_the_printed_qr_code_is_the_room_link(tmp_script: ScriptWriter) -> None:
    if not lan_addresses():
        pytest.skip("this machine has no LAN address for --lan to show")
    program = tmp_script("cat.sh", "#!/bin/sh\nexec cat\n")
    flags = ("--port=0", "--no-dashboard", "--no-reload", "--lan")
    async with run_wsdev(*flags, str(program), defaults=False) as server:
        link = (await server.wait_for_log(r"Room link \(type or scan\) *: (\S+)")).group(1)
        assert "://localhost" not in link
        assert link.split("?join=")[1].isalnum()
        index = next(i for i, line in enumerate(server.lines) if "Room link" in line)
        await server.wait_for_log(r"^ +$", after=index + 2)  # the QR code's last (blank) row
        code = []
        for line in server.lines[index + 1 :]:
            if " | " in line:
                break
            code.append(line)
    assert scan(code, Path(program).parent) == link


def test_a_new_secret_under_lan_and_the_token_rules() -> None:
    cat = "/bin/cat"
    first = build_config(parse_args(["--lan", "--address=127.0.0.1", cat]))
    second = build_config(parse_args(["--lan", "--address=127.0.0.1", cat]))
    assert len(first.join_secret) == 8 and first.join_secret != second.join_secret
    assert build_config(parse_args([cat])).join_secret == ""
    given = build_config(parse_args([f"--token={SECRET}", cat]))
    assert given.join_secret == SECRET and not given.lan
    with pytest.raises(ConfigError, match="letters, digits"):
        build_config(parse_args(["--token=a b", cat]))
    with pytest.raises(ConfigError, match="not both"):
        build_config(parse_args([f"--token={SECRET}", "--no-token", "--lan", cat]))


def test_a_room_gets_safe_limits_unless_flags_say_otherwise() -> None:
    cat = "/bin/cat"
    room = build_config(parse_args(["--lan", "--address=127.0.0.1", cat]))
    assert (room.max_per_client, room.idle_timeout, room.maxforks) == (8, 1800.0, 200)
    chosen = build_config(
        parse_args(["--lan", "--address=127.0.0.1", "--max-per-client=0", "--maxforks=5", cat])
    )
    assert (chosen.max_per_client, chosen.maxforks) == (0, 5)
    alone = build_config(parse_args([cat]))
    assert (alone.max_per_client, alone.idle_timeout, alone.maxforks) == (0, 0.0, 0)


async def test_the_start_up_output_names_the_rooms_limits(tmp_script: ScriptWriter) -> None:
    program = tmp_script("cat.sh", "#!/bin/sh\nexec cat\n")
    async with run_wsdev(*ROOM, "--max-per-client=3", str(program), defaults=False) as server:
        limits = await server.wait_for_log(r"Room limits +: (.*)")
    assert limits.group(1) == "--max-per-client=3 --idle-timeout=1800 --maxforks=200"
