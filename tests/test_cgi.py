"""CGI/1.1 execution of ``--cgidir`` scripts, on a real aiohttp server with real scripts.

Expectations are websocketd's (Go's net/http/cgi) where it is sane, and a clean 500 with a logged
error where a script fails. The scripts are POSIX shell, so these tests need a POSIX system.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import NoReturn

import pytest
from aiohttp import web

from conftest import process_gone, timeout
from rawhttp import RawResponse, parse_response, request, serve
from wsdev.cgi import (
    end_all_scripts,
    find_cgi_script,
    kill_all_scripts,
    serve_cgi,
    wait_scripts_ended,
)
from wsdev.config import Config
from wsdev.environ import RequestFacts, cgi_environ

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the test scripts are POSIX sh")

ENV_SCRIPT = """#!/bin/sh
echo "Content-Type: text/plain"
echo "X-Custom: yes"
echo
env | sort
echo "cwd=$(pwd)"
echo "argv0=$0"
echo "body=$(cat)"
"""

SCRIPTS = {
    "env.sh": ENV_SCRIPT,
    "sub/env.sh": ENV_SCRIPT,
    "status.sh": 'printf "Status: 404 Not Here\\nContent-Type: text/plain\\n\\nnf\\n"',
    "status-only.sh": 'printf "Status: 204\\n\\n"',
    "bad-status.sh": 'printf "Status: abc\\nContent-Type: text/plain\\n\\nx\\n"',
    "location.sh": 'printf "Location: /elsewhere\\n\\n"',
    "location-status.sh": 'printf "Status: 303 See Other\\nLocation: /x\\n\\n"',
    "bogus.sh": 'printf "Content-Type: text/plain\\r\\nbogus line\\r\\nX-A: 1\\r\\n\\r\\nbody\\n"',
    "no-type.sh": 'printf "X-Only: 1\\n\\nbody\\n"',
    "fail.sh": "echo oops >&2\nexit 3",
    "silent.sh": "exit 0",
    "no-end.sh": 'printf "Content-Type: text/plain"',
    "fail-after.sh": 'printf "Content-Type: text/plain\\n\\npartial\\n"\nexit 5',
    "multi.sh": 'printf "Content-Type: text/plain\\nSet-Cookie: a=1\\nSet-Cookie: b=2\\n\\n"',
    "length.sh": 'printf "Content-Type: text/plain\\nContent-Length: 3\\n\\nabcdef"',
    "short.sh": 'printf "Content-Type: text/plain\\nContent-Length: 10\\n\\nabc"',
    "long.sh": 'printf "Content-Type: text/plain\\nContent-Length: 3\\n\\n"\nexec yes',
    "framing.sh": 'printf "Content-Type: text/plain\\nTransfer-Encoding: chunked\\n'
    'Connection: keep-alive\\n\\nplain\\n"',
    "cat.sh": 'echo "Content-Type: application/octet-stream"\necho\nexec cat',
    "big.sh": 'echo "Content-Type: application/octet-stream"\necho\nhead -c 5000000 /dev/zero',
    "long-stderr.sh": "head -c 200000 /dev/zero | tr '\\0' e >&2\n"
    'printf "Content-Type: text/plain\\n\\nfine\\n"',
    "fifo.sh": 'printf "Content-Type: text/plain\\n\\nfirst\\n"\ncat ./gate',
    "forever.sh": "sleep 1000 &\necho $! > grandchild.pid\n"
    'printf "Content-Type: text/plain\\n\\n"\n'
    "while :; do echo tick; sleep 0.05; done",
    # Notes each signal and carries on; a grandchild ignores them: only SIGKILL ends these.
    # Python notes a signal as it comes (a shell runs its trap only once its foreground child
    # is done, which a loaded machine can put after the next signal).
    "stubborn.sh": "#!/usr/bin/env python3\n"
    "import os, signal, subprocess, time\n"
    "def noting(name):\n"
    "    def note(signum, frame):\n"
    "        with open('signals', 'a') as file:\n"
    "            file.write(name + '\\n')\n"
    "    return note\n"
    "signal.signal(signal.SIGINT, noting('INT'))\n"
    "signal.signal(signal.SIGTERM, noting('TERM'))\n"
    "subprocess.Popen(['sh', '-c', \"trap '' INT TERM; exec sleep 1000\"])\n"
    "with open('stubborn.pid', 'w') as file:\n"
    "    file.write(str(os.getpid()))\n"
    "os.write(1, b'Content-Type: text/plain\\n\\n')\n"
    "while True:\n"
    "    try:\n"
    "        os.write(1, b'tick\\n')\n"
    "    except OSError:\n"
    "        pass  # the client has gone: live on until the ladder's SIGKILL\n"
    "    time.sleep(0.05)\n",
    # Exits at once, leaving a grandchild that holds stdout and writes "late" to it.
    "late.sh": 'echo $$ > late.pid\nprintf "Content-Type: text/plain\\n\\nfirst\\n"\n'
    "(until [ -e go ]; do sleep 0.02; done; echo late) &",
    # Exits at once, leaving a grandchild that writes to stdout until it is ended.
    "leaves-ticker.sh": 'printf "Content-Type: text/plain\\n\\n"\n'
    "sh -c 'echo $$ > grandchild.pid; while :; do echo tick; sleep 0.05; done' &",
}


def write_script(root: Path, name: str, body: str, mode: int = 0o755) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n" if not body.startswith("#!") else body)
    path.chmod(mode)
    return path


@pytest.fixture
def cgidir(tmp_path: Path) -> Path:
    root = tmp_path / "cgi"
    root.mkdir()
    for name, body in SCRIPTS.items():
        write_script(root, name, body)
    write_script(root, "noexec.sh", "echo hi", mode=0o644)
    write_script(root, "bad-interpreter.sh", "#!/nonexistent/interpreter\n")
    (root / "text.txt").write_text("Content-Type: text/plain\n\nnot a program\n")
    (root / "text.txt").chmod(0o755)
    outside = tmp_path / "outside"
    outside.mkdir()
    write_script(outside, "evil.sh", 'printf "Content-Type: text/plain\\n\\nESCAPED\\n"')
    (root / "link-out.sh").symlink_to(outside / "evil.sh")
    (root / "link-dir").symlink_to(outside, target_is_directory=True)
    (root / "link-in.sh").symlink_to(root / "status.sh")
    return root


@pytest.fixture
def config() -> Config:
    return Config(passenv=("PATH",))


@pytest.fixture
async def port(cgidir: Path, config: Config) -> AsyncIterator[int]:
    async def handle(http: web.Request) -> web.StreamResponse:
        found = find_cgi_script(cgidir, http.rel_url.raw_path)
        if found is None:
            return web.Response(status=404, text="not found\n")
        script, script_name, path_info = found
        facts = RequestFacts(
            method=http.method,
            raw_path=http.raw_path,
            version="HTTP/1.1",
            host=http.headers.get("Host", ""),
            headers=tuple(http.headers.items()),
            remote_addr=http.remote or "",
            remote_port="1",
            remote_host=http.remote or "",
        )
        env = cgi_environ(
            config, facts, script_name=script_name, path_info=path_info, unique_id="42"
        )
        return await serve_cgi(http, config, script, env)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    async with serve(app) as bound:
        yield bound
    await asyncio.wait_for(wait_scripts_ended(), timeout(10))


def env_of(response: RawResponse) -> dict[str, str]:
    pairs = (line.partition("=") for line in response.text.splitlines())
    return {name: value for name, sep, value in pairs if sep}


def cgi_records(caplog: pytest.LogCaptureFixture, category: str = "cgi") -> list[str]:
    return [r.getMessage() for r in caplog.records if getattr(r, "category", None) == category]


async def wait_for(predicate: Callable[[], bool], within: float = 10) -> None:
    """Poll ``predicate``: for log records and foreign processes there is no event to await."""

    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout(within))


async def test_environment_body_and_working_directory(port: int, cgidir: Path) -> None:
    response = await request(
        port,
        "/sub/env.sh?a=b%20c",
        method="POST",
        headers=[("Content-Type", "text/x-test"), ("X-Foo", "bar")],
        body=b"hello",
    )
    assert response.status == 200
    assert response.header("Content-Type") == "text/plain"
    assert response.header("X-Custom") == "yes"
    env = env_of(response)
    script = cgidir / "sub" / "env.sh"
    assert env["body"] == "hello"
    assert env["cwd"] == str(script.parent)
    assert env["argv0"] == str(script)
    assert env["CONTENT_LENGTH"] == "5"
    assert env["CONTENT_TYPE"] == "text/x-test"
    assert env["REQUEST_METHOD"] == "POST"
    assert env["QUERY_STRING"] == "a=b%20c"
    assert env["SCRIPT_NAME"] == "/"
    assert env["PATH_INFO"] == "/sub/env.sh"
    assert env["SCRIPT_FILENAME"] == str(script)
    assert env["GATEWAY_INTERFACE"] == "CGI/1.1"
    assert env["HTTP_X_FOO"] == "bar"
    assert env["UNIQUE_ID"] == "42"


async def test_get_has_empty_content_variables(port: int) -> None:
    env = env_of(await request(port, "/env.sh"))
    assert env["CONTENT_LENGTH"] == ""
    assert env["CONTENT_TYPE"] == ""
    assert env["body"] == ""


async def test_environment_is_cleared_but_for_passenv(
    port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WSDEV_TEST_LEAK", "leaked")
    env = env_of(await request(port, "/env.sh"))
    assert "WSDEV_TEST_LEAK" not in env
    assert env["PATH"] == os.environ["PATH"]


@pytest.mark.parametrize(
    ("target", "status", "reason", "body", "location"),
    [
        ("/status.sh", 404, "Not Here", b"nf\n", None),
        ("/status-only.sh", 204, "No Content", b"", None),
        ("/location.sh", 302, "Found", b"", "/elsewhere"),
        ("/location-status.sh", 303, "See Other", b"", "/x"),
        ("/bogus.sh", 200, "OK", b"body\n", None),
        ("/fail-after.sh", 200, "OK", b"partial\n", None),
        ("/link-in.sh", 404, "Not Here", b"nf\n", None),
    ],
)
async def test_response_head(
    port: int, target: str, status: int, reason: str, body: bytes, location: str | None
) -> None:
    response = await request(port, target)
    assert (response.status, response.reason, response.body) == (status, reason, body)
    assert response.header("Location") == location


async def test_bogus_header_line_is_skipped_and_logged(
    port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = await request(port, "/bogus.sh")
    assert response.header("X-A") == "1"
    assert any("bogus line" in message for message in cgi_records(caplog))


async def test_repeated_headers_are_kept(port: int) -> None:
    response = await request(port, "/multi.sh")
    assert response.header_all("Set-Cookie") == ["a=1", "b=2"]


async def test_framing_headers_are_the_servers(port: int) -> None:
    response = await request(port, "/framing.sh")
    assert response.status == 200
    assert response.body == b"plain\n"
    assert response.header("Connection") != "keep-alive"


async def test_content_length_cuts_the_body(port: int, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    response = await request(port, "/length.sh")
    assert response.header("Content-Length") == "3"
    assert response.body == b"abc"
    assert any("more than its Content-Length" in m for m in cgi_records(caplog))


async def test_a_script_writing_past_its_content_length_is_ended(port: int) -> None:
    response = await request(port, "/long.sh")
    assert response.body == b"y\ny"
    # The fixture's teardown waits for every script to end: "yes" would never end by itself.


async def test_bodiless_response_has_no_made_up_type(port: int) -> None:
    response = await request(port, "/location.sh")
    assert response.header("Content-Length") == "0"
    assert response.header("Content-Type") is None


async def test_short_body_closes_the_connection(
    port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = await request(port, "/short.sh")
    assert response.body == b"abc"  # and the read ended: the server closed, the client did not hang
    assert any("fewer than its Content-Length" in m for m in cgi_records(caplog))


async def test_head_runs_the_script_and_sends_no_body(port: int) -> None:
    raw = f"HEAD /status.sh HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    response = await request(port, raw=raw.encode())
    assert response.status == 404
    assert response.body == b""


@pytest.mark.parametrize(
    ("target", "logged"),
    [
        ("/noexec.sh", "cannot be run: Permission denied"),
        ("/bad-interpreter.sh", "cannot be run: No such file or directory"),
        ("/text.txt", "cannot be run: Exec format error"),
        ("/fail.sh", "ended before writing its headers (exit status 3)"),
        ("/silent.sh", "ended before writing its headers"),
        ("/no-end.sh", "ended before finishing its header block"),
        ("/no-type.sh", "sent no Content-Type, Status or Location header"),
        ("/bad-status.sh", "sent a bad Status header: 'abc'"),
    ],
)
async def test_failing_script_gives_a_clean_500(
    port: int, caplog: pytest.LogCaptureFixture, target: str, logged: str
) -> None:
    caplog.set_level(logging.DEBUG)
    response = await request(port, target)
    assert response.status == 500
    assert response.header("Content-Type") == "text/plain; charset=utf-8"
    assert response.text == "500 Internal Server Error: the CGI script failed\n"
    assert any(logged in message for message in cgi_records(caplog)), cgi_records(caplog)
    assert not any(record.exc_info for record in caplog.records)


async def test_stderr_lines_are_logged(port: int, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await request(port, "/fail.sh")
    await wait_for(lambda: "oops" in cgi_records(caplog, "stderr"))


async def test_a_long_stderr_line_does_not_stop_the_script(
    port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = await request(port, "/long-stderr.sh")
    assert response.body == b"fine\n"
    await wait_for(lambda: len(cgi_records(caplog, "stderr")) >= 2)
    assert all(len(line) <= 64 * 1024 for line in cgi_records(caplog, "stderr"))
    assert sum(len(line) for line in cgi_records(caplog, "stderr")) == 200_000


async def test_large_bodies_stream_both_ways(port: int) -> None:
    payload = os.urandom(2_000_000)
    echoed = await request(port, "/cat.sh", method="POST", body=payload, within=60)
    assert echoed.status == 200
    assert echoed.body == payload
    big = await request(port, "/big.sh", within=60)
    assert big.body == b"\0" * 5_000_000


async def test_output_streams_before_the_script_ends(port: int, cgidir: Path) -> None:
    gate = cgidir / "gate"
    os.mkfifo(gate)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET /fifo.sh HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    received = b""
    while b"first" not in received:
        chunk = await asyncio.wait_for(reader.read(4096), timeout(10))
        assert chunk, "connection closed before the first line arrived"
        received += chunk
    # The script is now blocked opening the FIFO: everything so far arrived while it ran.
    fd = await asyncio.get_running_loop().run_in_executor(None, os.open, gate, os.O_WRONLY)
    os.write(fd, b"second\n")
    os.close(fd)
    while not received.endswith(b"0\r\n\r\n"):
        chunk = await asyncio.wait_for(reader.read(4096), timeout(10))
        assert chunk
        received += chunk
    writer.close()
    assert parse_response(received).body == b"first\nsecond\n"


async def start_forever(
    port: int, cgidir: Path
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes, int]:
    """Start /forever.sh; return the connection, what arrived so far and the grandchild's pid."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET /forever.sh HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    received = b""
    while b"tick" not in received:
        chunk = await asyncio.wait_for(reader.read(4096), timeout(10))
        assert chunk
        received += chunk
    return reader, writer, received, int((cgidir / "grandchild.pid").read_text())


async def test_client_leaving_ends_the_script_and_its_children(port: int, cgidir: Path) -> None:
    _, writer, _, grandchild = await start_forever(port, cgidir)
    assert not process_gone(grandchild)
    writer.close()
    await wait_for(lambda: process_gone(grandchild))


@pytest.mark.parametrize("end", ["end_all_scripts", "kill_all_scripts"])
async def test_shutdown_ends_running_scripts(port: int, cgidir: Path, end: str) -> None:
    reader, writer, received, grandchild = await start_forever(port, cgidir)
    if end == "end_all_scripts":
        await asyncio.wait_for(end_all_scripts(), timeout(10))
    else:
        kill_all_scripts()
    # The response ends with the script, while the client is still connected.
    while not received.endswith(b"0\r\n\r\n"):
        chunk = await asyncio.wait_for(reader.read(4096), timeout(10))
        assert chunk
        received += chunk
    writer.close()
    await wait_for(lambda: process_gone(grandchild))


def group_members(pgid: int) -> list[int]:
    """The processes of group ``pgid`` that have not ended (zombies have), from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # it ended while we looked
            if fields[0] != "Z" and int(fields[2]) == pgid:
                members.append(int(entry.name))
    return members


async def read_until(reader: asyncio.StreamReader, received: bytes, marker: bytes) -> bytes:
    while marker not in received:
        chunk = await asyncio.wait_for(reader.read(4096), timeout(10))
        assert chunk, f"connection closed before {marker!r} arrived"
        received += chunk
    return received


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="lists the group from /proc")
async def test_a_script_ignoring_sigint_and_sigterm_is_killed_through_the_ladder(
    port: int, cgidir: Path
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET /stubborn.sh HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    await read_until(reader, b"", b"tick")
    pgid = int((cgidir / "stubborn.pid").read_text())
    assert len(group_members(pgid)) >= 2  # the script and the grandchild ignoring signals
    writer.close()
    await wait_for(lambda: not group_members(pgid))
    # It heard SIGINT and SIGTERM and lived on: SIGKILL, the ladder's last step, ended it.
    assert (cgidir / "signals").read_text().split() == ["INT", "TERM"]


async def test_the_response_lasts_until_stdout_ends_not_until_the_script_exits(
    port: int, cgidir: Path
) -> None:
    """As in websocketd (Go's net/http/cgi): a grandchild holding stdout holds the response."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET /late.sh HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    received = await read_until(reader, b"", b"first")
    await wait_for(lambda: process_gone(int((cgidir / "late.pid").read_text())))
    (cgidir / "go").touch()
    # The last chunk (the CRLF before it keeps "Server: …aiohttp/3.9.0\r\n\r\n" from matching).
    received = await read_until(reader, received, b"\r\n0\r\n\r\n")
    writer.close()
    assert parse_response(received).body == b"first\nlate\n"


async def test_client_leaving_ends_what_an_exited_script_left_on_stdout(
    port: int, cgidir: Path
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET /leaves-ticker.sh HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    await read_until(reader, b"", b"tick")
    grandchild = int((cgidir / "grandchild.pid").read_text())
    writer.close()
    await wait_for(lambda: process_gone(grandchild))


async def test_no_asyncio_subprocess_is_used(port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> NoReturn:
        raise AssertionError("CGI scripts must be started by wsdev.process.spawn")

    loop_class = type(asyncio.get_running_loop())
    monkeypatch.setattr(asyncio, "create_subprocess_exec", refuse)
    monkeypatch.setattr(asyncio, "create_subprocess_shell", refuse)
    monkeypatch.setattr(loop_class, "subprocess_exec", refuse)
    monkeypatch.setattr(loop_class, "subprocess_shell", refuse)
    echoed = await request(port, "/cat.sh", method="POST", body=b"through process.spawn")
    assert (echoed.status, echoed.body) == (200, b"through process.spawn")
    failed = await request(port, "/fail.sh")
    assert failed.status == 500


@pytest.mark.parametrize(
    ("url_path", "found"),
    [
        ("/env.sh", ("env.sh", "/", "/env.sh")),
        ("/sub/env.sh?x=1", ("sub/env.sh", "/", "/sub/env.sh")),
        ("/sub%2Fenv.sh", ("sub/env.sh", "/", "/sub/env.sh")),
        ("/env.sh/", ("env.sh", "/", "/env.sh/")),
        ("/link-in.sh", ("status.sh", "/", "/link-in.sh")),
        ("/env.sh/extra", None),
        ("/sub", None),
        ("/sub/", None),
        ("/", None),
        ("/missing.sh", None),
    ],
)
def test_find_cgi_script(cgidir: Path, url_path: str, found: tuple[str, str, str] | None) -> None:
    result = find_cgi_script(cgidir, url_path)
    if found is None:
        assert result is None
    else:
        assert result == ((cgidir / found[0]).resolve(), found[1], found[2])


TRAVERSALS = [
    "/../outside/evil.sh",
    "/sub/../../outside/evil.sh",
    "/%2e%2e/outside/evil.sh",
    "/.%2E/outside/evil.sh",
    "/..%2foutside%2fevil.sh",
    "/..\\outside\\evil.sh",
    "/..%5coutside%5cevil.sh",
    "/%252e%252e/outside/evil.sh",
    "/env.sh%00",
    "/link-out.sh",
    "/link-dir/evil.sh",
]


@pytest.mark.parametrize("target", TRAVERSALS)
async def test_traversal_never_runs_a_script_outside(port: int, cgidir: Path, target: str) -> None:
    assert find_cgi_script(cgidir, target) is None
    response = await request(port, target)
    assert b"ESCAPED" not in response.body
    assert response.status in (400, 404)
