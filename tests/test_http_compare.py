"""The HTTP surface around the WebSocket endpoint, against real wsdev and websocketd servers.

Origins, static files and CGI are replayed against both servers and compared where wsdev is meant
to match websocketd; where behaviour B5 says wsdev does better (clean refusal bodies,
``--header`` on every response, no symlink escape), the test states wsdev's behaviour and,
where it helps, what websocketd does. ``--header*``, failed upgrades, TLS, ``--redirport`` and
``--unixsocket`` run against wsdev only.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import sys
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest
import trustme
import websockets
from websockets.asyncio.client import connect, unix_connect

from conftest import (
    ServerProcess,
    free_port,
    process_gone,
    requires_websocketd,
    run_websocketd,
    run_wsdev,
)
from conftest import timeout as scaled
from rawhttp import RawResponse, parse_response, request, upgrade, upgrade_headers

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX scripts and sockets")

CAT = "cat"
Serving = AbstractAsyncContextManager[ServerProcess]
HEADERS = ("--header=X-All: 1", "--header-ws=X-Ws: 2", "--header-http=X-Http: 3")

# ---------------------------------------------------------------------------------- origins

ORIGINS = [
    None,
    "null",
    "http://example.com",
    "http://example.com:80",
    "http://example.com:8080",
    "https://example.com",
    "https://example.com:443",
    "https://example.com:8443",
    "http://EXAMPLE.com",
    "HTTP://example.com",
    "http://example.com/path?q",
    "http://user@example.com",
    "http://sub.example.com",
    "http://example.com.evil.org",
    "ws://example.com",
    "file://",
    "example.com",
    "http://example.com:abc",
    "http://localhost:{port}",
    "http://127.0.0.1:{port}",
    "https://127.0.0.1:{port}",
    "http://127.0.0.1",
    "http://127.0.0.1:0{port}",
    "http://[::1]:{port}",
]

ORIGIN_FLAGS = [
    ("--origin=example.com",),
    ("--origin=example.com:8080,https://example.com,localhost",),
    ("--origin=example.com:443,127.0.0.1:{port}",),
    ("--sameorigin",),
    ("--sameorigin", "--origin=localhost,127.0.0.1"),
]


async def origin_statuses(server: ServerProcess, hosts: list[str | None]) -> dict[str, int]:
    statuses = {}
    for host in hosts:
        for origin in ORIGINS:
            value = origin.format(port=server.port) if origin else origin
            case = f"Host={host or 'default'} Origin={origin}"
            statuses[case] = (await upgrade(server.port, value, host=host)).status
    return statuses


@requires_websocketd
@pytest.mark.websocketd
@pytest.mark.parametrize("flags", ORIGIN_FLAGS, ids=lambda flags: " ".join(flags))
async def test_origin_decisions_match_websocketd(flags: tuple[str, ...]) -> None:
    hosts: list[str | None] = [None, "localhost:{port}", "example.com"]

    async def decisions(start: Serving) -> dict[str, int]:
        async with start as server:
            concrete = [h.format(port=server.port) if h else h for h in hosts]
            return await origin_statuses(server, concrete)

    port = free_port()
    # Both servers get the same port in the flags, so "{port}" entries mean the same thing.
    resolved = tuple(flag.format(port=port) for flag in flags)
    reference = await decisions(run_websocketd(*resolved, CAT))
    # websocketd has no Host check; wsdev's (behaviour B10) is told example.com is this server.
    ours = await decisions(run_wsdev("--allow-host=example.com", *resolved, CAT))
    # Ports differ between the two runs; compare decisions by case, not by port.
    assert set(reference.values()) <= {101, 403}
    assert list(ours.values()) == list(reference.values()), _mismatches(reference, ours)


def _mismatches(reference: dict[str, int], ours: dict[str, int]) -> str:
    lines = [
        f"{case}: websocketd {status}, wsdev {ours_status}"
        for (case, status), ours_status in zip(reference.items(), ours.values(), strict=True)
        if status != ours_status
    ]
    return "\n".join(lines)


async def test_origin_refusal_is_clean_and_carries_headers() -> None:
    async with run_wsdev("--origin=example.com", *HEADERS, CAT) as server:
        refused = await upgrade(server.port, "http://evil.org")
        allowed = await upgrade(server.port, "http://example.com")
        await server.wait_for_log(r"403")
    assert refused.status == 403
    assert (
        refused.header(
            "Content-Type",
        )
        is not None
    )
    assert (refused.header("Content-Type") or "").startswith("text/plain")
    # behaviour B5: one status, not websocketd's "Forbidden\n500 Internal Error" glued body.
    assert refused.text.count("\n") <= 1 and "500" not in refused.text
    assert refused.header("X-All") == "1" and refused.header("X-Http") == "3"
    assert refused.header("X-Ws") is None
    assert allowed.status == 101


async def test_missing_origin_is_refused_when_restricted() -> None:
    async with run_wsdev("--sameorigin", CAT) as server:
        assert (await upgrade(server.port, None)).status == 403
        assert (await upgrade(server.port, "null")).status == 403
        assert (await upgrade(server.port, server.http_url)).status == 101


# ---------------------------------------------------------------------------------- headers


async def test_header_flags_go_where_they_belong(tmp_path: Path) -> None:
    static = tmp_path / "static"
    static.mkdir()
    (static / "a.txt").write_text("static\n")
    cgi = tmp_path / "cgi"
    cgi.mkdir()
    script = cgi / "hello.sh"
    script.write_text('#!/bin/sh\nprintf "Content-Type: text/plain\\n\\nhello\\n"\n')
    script.chmod(0o755)
    async with run_wsdev(f"--staticdir={static}", f"--cgidir={cgi}", *HEADERS, CAT) as server:
        upgraded = await upgrade(server.port)
        static_file = await request(server.port, "/a.txt")
        cgi_run = await request(server.port, "/hello.sh")
        missing = await request(server.port, "/missing")
    assert upgraded.status == 101
    assert (upgraded.header("X-All"), upgraded.header("X-Ws"), upgraded.header("X-Http")) == (
        "1",
        "2",
        None,
    )
    for response, status in ((static_file, 200), (cgi_run, 200), (missing, 404)):
        assert response.status == status
        assert response.header("X-All") == "1"
        assert response.header("X-Http") == "3"
        assert response.header("X-Ws") is None


@requires_websocketd
@pytest.mark.websocketd
async def test_header_ws_matches_websocketd() -> None:
    async with run_websocketd(*HEADERS, CAT) as reference:
        theirs = await upgrade(reference.port)
    async with run_wsdev(*HEADERS, CAT) as server:
        ours = await upgrade(server.port)
    for name in ("X-All", "X-Ws", "X-Http"):
        assert ours.header(name) == theirs.header(name), name


# -------------------------------------------------------------------------- failed upgrades

BAD_UPGRADES = [
    pytest.param("POST", upgrade_headers(("Content-Length", "0")), 405, id="post"),
    pytest.param(
        "GET",
        [(k, "99" if k == "Sec-WebSocket-Version" else v) for k, v in upgrade_headers()],
        426,  # RFC 6455 §4.2.2 (behaviour B11); websocketd answers 400
        id="wrong-version",
    ),
    pytest.param(
        "GET",
        [(k, v) for k, v in upgrade_headers() if k != "Sec-WebSocket-Key"],
        400,
        id="missing-key",
    ),
    pytest.param(
        "GET",
        [(k, "bm90IDE2IGJ5dGVz" if k == "Sec-WebSocket-Key" else v) for k, v in upgrade_headers()],
        400,
        id="short-key",
    ),
]


@pytest.mark.parametrize(("method", "headers", "status"), BAD_UPGRADES)
async def test_failed_upgrade_is_clean(
    method: str, headers: list[tuple[str, str]], status: int
) -> None:
    async with run_wsdev(*HEADERS, CAT) as server:
        response = await upgrade(server.port, method=method, headers=headers)
        still_serving = await upgrade(server.port)
    assert response.status == status
    assert (response.header("Content-Type") or "").startswith("text/plain")
    # One status line of text, not a second status glued on (websocketd sends "...\n500 ...").
    assert response.text.count(str(status)) <= 1 and "500" not in response.text
    assert response.header("X-All") == "1" and response.header("X-Http") == "3"
    if ("Sec-WebSocket-Version", "99") in headers:
        # RFC 6455 §4.4: a version mismatch names the version the server speaks.
        assert response.header("Sec-WebSocket-Version") == "13"
    assert still_serving.status == 101
    _assert_no_traceback(server)


@requires_websocketd
@pytest.mark.websocketd
@pytest.mark.parametrize(("method", "headers", "status"), BAD_UPGRADES[:3])
async def test_failed_upgrade_status_matches_websocketd(
    method: str, headers: list[tuple[str, str]], status: int
) -> None:
    async with run_websocketd(CAT) as reference:
        theirs = await upgrade(reference.port, method=method, headers=headers)
    # A version other than 13 gets 426 from wsdev on purpose (behaviour B11).
    assert theirs.status == (400 if status == 426 else status)


@pytest.mark.parametrize(
    "raw",
    [
        b"garbage garbage\r\n\r\n",
        b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
        b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\0" * 64,
    ],
    ids=["garbage", "bad-version", "nul-target", "bad-header", "bad-length", "tls-hello"],
)
async def test_malformed_request_does_not_hurt_the_server(raw: bytes) -> None:
    async with run_wsdev(*HEADERS, CAT) as server:
        try:
            response: RawResponse | None = await request(server.port, raw=raw)
        except (AssertionError, ConnectionError):
            response = None  # closing the connection is a fine answer to noise
        still_serving = await upgrade(server.port)
    if response is not None:
        assert 400 <= response.status < 500
    assert still_serving.status == 101
    _assert_no_traceback(server)
    # A client's garbage is not the server's error (websocketd logs nothing for it).
    errors = [line for line in server.lines if "| ERROR  |" in line]
    assert not errors, errors


def _assert_no_traceback(server: ServerProcess) -> None:
    output = "\n".join(server.lines + server.stderr_lines)
    assert "Traceback" not in output, output


# ------------------------------------------------------------------------------ static files


@pytest.fixture
def static_tree(tmp_path: Path) -> Path:
    root = tmp_path / "static"
    (root / "sub").mkdir(parents=True)
    (root / "noindex").mkdir()
    (root / "a.txt").write_bytes(b"hello\n")
    os.utime(root / "a.txt", (1_577_934_245, 1_577_934_245))
    (root / "index.html").write_text("<h1>root</h1>\n")
    (root / "sub" / "index.html").write_text("<p>sub</p>\n")
    (root / "noindex" / "app.js").write_text("x\n")
    (root / "noindex" / "data.json").write_text("{}\n")
    (root / "style.css").write_text("a{}\n")
    (root / "page.html").write_text("<p>page</p>\n")
    outside = tmp_path / "outside.txt"
    outside.write_text("SECRET\n")
    (root / "link-out.txt").symlink_to(outside)
    return root


STATIC_REQUESTS = [
    ("/a.txt", ()),
    ("/a.txt", (("If-Modified-Since", "Thu, 02 Jan 2020 03:04:05 GMT"),)),
    ("/a.txt", (("If-Modified-Since", "Wed, 01 Jan 2020 00:00:00 GMT"),)),
    ("/a.txt", (("Range", "bytes=1-2"),)),
    ("/a.txt", (("Range", "bytes=-2"),)),
    ("/a.txt", (("Range", "bytes=10-20"),)),
    ("/", ()),
    ("/sub", ()),
    ("/sub?x=1", ()),
    ("/sub/", ()),
    ("/index.html", ()),
    ("/sub/index.html", ()),
    ("/a.txt/", ()),
    ("/noindex/", ()),
    ("/noindex/app.js", ()),
    ("/noindex/data.json", ()),
    ("/style.css", ()),
    ("/page.html", ()),
    ("/missing", ()),
]
COMPARED_HEADERS = ("Content-Type", "Location", "Content-Range", "Last-Modified")


def _static_view(response: RawResponse) -> tuple[object, ...]:
    headers: list[object] = [response.header(name) for name in COMPARED_HEADERS]
    # Go truncates a file's time to the second and aiohttp rounds it up: compare presence.
    headers[3] = headers[3] is not None
    if response.status in (301, 304, 404, 416):
        # Redirect and error bodies are free text (Go's 416 says "invalid range: failed to
        # overlap", aiohttp's nothing), and so is the type Go gives them.
        return (response.status, None, None, *headers[1:3])
    return (response.status, response.body, *headers)


@requires_websocketd
@pytest.mark.websocketd
async def test_static_matches_websocketd(static_tree: Path) -> None:
    async def replay(start: Serving) -> list[tuple[object, ...]]:
        async with start as server:
            return [
                _static_view(await request(server.port, target, headers=headers))
                for target, headers in STATIC_REQUESTS
            ]

    reference = await replay(run_websocketd(f"--staticdir={static_tree}", CAT))
    ours = await replay(run_wsdev(f"--staticdir={static_tree}", CAT))
    mismatches = [
        f"{target} {dict(headers)}:\n  websocketd {theirs}\n  wsdev      {mine}"
        for (target, headers), theirs, mine in zip(STATIC_REQUESTS, reference, ours, strict=True)
        if mine != theirs
    ]
    assert not mismatches, "\n".join(mismatches)


async def test_static_never_follows_a_symlink_out(static_tree: Path) -> None:
    # websocketd 0.4.1 serves this file (Go's http.FileServer follows the link); behaviour B5.
    async with run_wsdev(f"--staticdir={static_tree}", CAT) as server:
        response = await request(server.port, "/link-out.txt")
        await server.wait_for_log(r"NOT FOUND|404")
    assert response.status == 404
    assert b"SECRET" not in response.body
    assert (response.header("Content-Type") or "").startswith("text/plain")


TRAVERSALS = [
    "/../{name}",
    "/sub/../../{name}",
    "/%2e%2e/{name}",
    "/.%2E/{name}",
    "/..%2f{name}",
    "/sub%2f..%2f..%2f{name}",
    "/..\\{name}",
    "/..%5c{name}",
    "/%252e%252e/{name}",
    "/sub/%00/../../{name}",
    "/link-out.txt",
    "http://127.0.0.1/../{name}",
]


async def test_nothing_outside_the_folders_is_served_or_run(
    static_tree: Path, cgi_tree: Path
) -> None:
    # One folder each for static and CGI, both inside tmp_path, next to the secrets.
    outside_script = cgi_tree.parent / "evil.sh"
    outside_script.write_text('#!/bin/sh\nprintf "Content-Type: text/plain\\n\\nESCAPED\\n"\n')
    outside_script.chmod(0o755)
    (cgi_tree / "link-out.sh").symlink_to(outside_script)
    flags = (f"--staticdir={static_tree}", f"--cgidir={cgi_tree}", CAT)
    async with run_wsdev(*flags) as server:
        for template in [*TRAVERSALS, "/link-out.sh"]:
            for name in ("outside.txt", "evil.sh", "cgi/../evil.sh"):
                target = template.format(name=name)
                response = await request(server.port, target)
                if response.status == 301:  # cleaned, still inside (behaviour A5): follow it
                    target = response.header("Location") or ""
                    response = await request(server.port, target)
                assert b"SECRET" not in response.body, target
                assert b"ESCAPED" not in response.body, target
                assert response.status in (400, 404), (target, response.status)
    _assert_no_traceback(server)


# ------------------------------------------------------------------------------------- CGI

CGI_SCRIPTS = {
    "env.sh": "#!/bin/sh\n"
    'printf "Content-Type: text/plain\\nX-Custom: yes\\n\\n"\n'
    "for v in REQUEST_METHOD QUERY_STRING CONTENT_LENGTH CONTENT_TYPE SCRIPT_NAME PATH_INFO"
    " REQUEST_URI GATEWAY_INTERFACE SERVER_PROTOCOL REMOTE_ADDR HTTP_X_FOO WSDEV_CGI_VAR"
    ' WSDEV_NOT_PASSED; do eval "echo $v=\\${$v}"; done\n'
    'echo "cwd=$(pwd)"\necho "body=$(cat)"\n',
    "status.sh": '#!/bin/sh\nprintf "Status: 404 Not Here\\nContent-Type: text/plain\\n\\nnf\\n"\n',
    "location.sh": '#!/bin/sh\nprintf "Location: /elsewhere\\n\\n"\n',
    "bogus.sh": '#!/bin/sh\nprintf "Content-Type: text/plain\\nbogus\\nX-A: 1\\n\\nbody\\n"\n',
    "multi.sh": '#!/bin/sh\nprintf "Content-Type: text/plain\\nSet-Cookie: a=1\\n'
    'Set-Cookie: b=2\\n\\nm\\n"\n',
    "fail-after.sh": '#!/bin/sh\nprintf "Content-Type: text/plain\\n\\npartial\\n"\nexit 5\n',
    "s204.sh": '#!/bin/sh\nprintf "Status: 204\\n\\n"\n',
    "fail.sh": "#!/bin/sh\necho oops >&2\nexit 3\n",
    "no-type.sh": '#!/bin/sh\nprintf "X-Only: 1\\n\\nbody\\n"\n',
    "sub/deep.sh": '#!/bin/sh\nprintf "Content-Type: text/plain\\n\\ndeep $(basename $(pwd))\\n"\n',
}
CGI_VARS = (
    "REQUEST_METHOD",
    "QUERY_STRING",
    "CONTENT_LENGTH",
    "CONTENT_TYPE",
    "SCRIPT_NAME",
    "PATH_INFO",
    "REQUEST_URI",
    "GATEWAY_INTERFACE",
    "SERVER_PROTOCOL",
    "REMOTE_ADDR",
    "HTTP_X_FOO",
    "cwd",
    "body",
)


@pytest.fixture
def cgi_tree(tmp_path: Path) -> Path:
    root = tmp_path / "cgi"
    for name, text in CGI_SCRIPTS.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o755)
    (root / "noexec.sh").write_text("#!/bin/sh\necho hi\n")
    return root


def _env(response: RawResponse) -> dict[str, str]:
    pairs = (line.partition("=") for line in response.text.splitlines())
    return {name: value for name, sep, value in pairs if sep}


CGI_REQUESTS = [
    "/status.sh",
    "/location.sh",
    "/bogus.sh",
    "/multi.sh",
    "/fail-after.sh",
    "/s204.sh",
    "/sub/deep.sh",
    "/fail.sh",
    "/no-type.sh",
    "/noexec.sh",
    "/env.sh/extra",
    "/sub",
    "/missing.sh",
]


def _cgi_view(response: RawResponse) -> tuple[object, ...]:
    body = response.body if response.status < 500 and response.status != 404 else None
    return (
        response.status,
        response.header("Content-Type") if response.status < 400 else None,
        response.header("Location"),
        response.header_all("Set-Cookie"),
        response.header("X-A"),
        body,
    )


@requires_websocketd
@pytest.mark.websocketd
async def test_cgi_matches_websocketd(cgi_tree: Path) -> None:
    env = {"WSDEV_CGI_VAR": "passed", "WSDEV_NOT_PASSED": "leaked"}

    async def replay(start: Serving) -> tuple[list[tuple[object, ...]], dict[str, str]]:
        async with start as server:
            views = [_cgi_view(await request(server.port, t)) for t in CGI_REQUESTS]
            env_response = await request(
                server.port,
                "/env.sh?a=b%20c",
                method="POST",
                headers=[("Content-Type", "text/x-test"), ("X-Foo", "bar")],
                body=b"hello",
            )
            return views, _env(env_response)

    flags = (f"--cgidir={cgi_tree}", "--passenv=PATH,WSDEV_CGI_VAR")
    os.environ.update(env)
    try:
        reference, their_env = await replay(run_websocketd(*flags, CAT))
    finally:
        for name in env:
            os.environ.pop(name, None)
    ours, our_env = await replay(run_wsdev(*flags, CAT, env=env))
    mismatches = [
        f"{target}:\n  websocketd {theirs}\n  wsdev      {mine}"
        for target, theirs, mine in zip(CGI_REQUESTS, reference, ours, strict=True)
        if mine != theirs
    ]
    mismatches += [
        f"{name}: websocketd {their_env.get(name)!r}, wsdev {our_env.get(name)!r}"
        for name in CGI_VARS
        if our_env.get(name) != their_env.get(name)
    ]
    assert not mismatches, "\n".join(mismatches)
    # behaviour B5: CGI gets the --passenv variables (websocketd 0.4.1 drops them for CGI).
    assert our_env["WSDEV_CGI_VAR"] == "passed"
    assert our_env["WSDEV_NOT_PASSED"] == ""


async def _post_expecting_continue(port: int, expect: str) -> tuple[str, RawResponse]:
    """POST with an Expect header: the body goes once the server has said "100", or, as curl
    does, after a second without any answer. Returns the interim status line ("" if none)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        head = (
            f"POST /env.sh HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nExpect: {expect}\r\n"
            "Content-Length: 5\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode())
        try:
            first = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), scaled(1))
        except asyncio.TimeoutError:
            first = b""
        status_line = first.decode("latin-1").split("\r\n", 1)[0]
        if first and status_line.split(" ")[1] != "100":
            return "", parse_response(first + await reader.read())
        writer.write(b"hello")
        return status_line, parse_response(await asyncio.wait_for(reader.read(), scaled(10)))
    finally:
        writer.close()


@requires_websocketd
@pytest.mark.websocketd
@pytest.mark.parametrize(
    "expect",
    [
        "100-continue",
        "100-Continue",
        # aiohttp waits out its 10 s body timeout after this 417: a soak-run case only.
        pytest.param("something-else", marks=pytest.mark.slow),
    ],
)
async def test_expect_header_matches_websocketd(cgi_tree: Path, expect: str) -> None:
    async def exchange(start: Serving) -> tuple[str, int, str | None]:
        async with start as server:
            interim, response = await _post_expecting_continue(server.port, expect)
            length = _env(response).get("CONTENT_LENGTH") if response.status == 200 else None
            return interim, response.status, length

    flags = (f"--cgidir={cgi_tree}",)
    theirs = await exchange(run_websocketd(*flags, CAT))
    ours = await exchange(run_wsdev(*flags, CAT))
    # The final answer is the same. Whether websocketd says "100 Continue" first is a race in
    # Go's net/http/cgi between copying the body and the script ending: of 60 requests in one
    # run, 54 said it, 4 answered 200 at once and 2 said nothing until the body came.
    assert ours[1:] == theirs[1:]
    if expect.lower() == "100-continue":
        assert ours == ("HTTP/1.1 100 Continue", 200, "5")
    else:
        assert ours == theirs == ("", 417, None)


async def test_cgi_failure_is_a_clean_500_and_logged(cgi_tree: Path) -> None:
    async with run_wsdev(f"--cgidir={cgi_tree}", *HEADERS, CAT) as server:
        response = await request(server.port, "/fail.sh")
        await server.wait_for_log(r"oops")
        await server.wait_for_log(r"fail\.sh.*exit status 3")
    assert response.status == 500
    assert (response.header("Content-Type") or "").startswith("text/plain")
    assert response.text.startswith("500 ")
    assert response.header("X-All") == "1" and response.header("X-Http") == "3"
    _assert_no_traceback(server)


async def test_cgi_comes_before_static(cgi_tree: Path) -> None:
    (cgi_tree / "page.txt").write_text("static copy\n")
    async with run_wsdev(f"--cgidir={cgi_tree}", f"--staticdir={cgi_tree}", CAT) as server:
        ran = await request(server.port, "/status.sh")
        served = await request(server.port, "/page.txt")
    assert ran.status == 404 and ran.body == b"nf\n"
    assert served.status == 500  # page.txt is a file in --cgidir, so it is run, and cannot be


async def test_cgi_scripts_end_with_the_server(cgi_tree: Path) -> None:
    script = cgi_tree / "forever.sh"
    script.write_text(
        "#!/bin/sh\nsleep 1000 &\necho $! > grandchild.pid\n"
        'printf "Content-Type: text/plain\\n\\n"\nwhile :; do echo tick; sleep 0.05; done\n'
    )
    script.chmod(0o755)
    async with run_wsdev(f"--cgidir={cgi_tree}", CAT) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(f"GET /forever.sh HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode())
        received = b""
        while b"tick" not in received:
            chunk = await asyncio.wait_for(reader.read(4096), scaled(10))
            assert chunk
            received += chunk
        grandchild = int((cgi_tree / "grandchild.pid").read_text())
        assert await server.stop() == 0
        writer.close()

    async def ended() -> None:
        while not process_gone(grandchild):
            await asyncio.sleep(0.02)  # another process group: there is no event to wait on

    # behaviour B6: no child or grandchild outlives wsdev, CGI scripts included.
    await asyncio.wait_for(ended(), scaled(10))


# ------------------------------------------------------------------------ TLS and redirport


@pytest.fixture
def certificates(tmp_path: Path) -> tuple[trustme.CA, Path, Path]:
    ca = trustme.CA()
    issued = ca.issue_cert("localhost", "127.0.0.1")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    issued.cert_chain_pems[0].write_to_path(cert)
    issued.private_key_pem.write_to_path(key)
    return ca, cert, key


@asynccontextmanager
async def run_tls_wsdev(*args: str) -> AsyncIterator[ServerProcess]:
    front = ("--port=0", "--address=127.0.0.1", "--no-dashboard", "--no-reload", "--ssl")
    async with run_wsdev(*front, *args, defaults=False) as server:
        match = await server.wait_for_log(r"wss://127\.0\.0\.1:(\d+)/")
        server.port = int(match.group(1))
        yield server


async def test_tls_end_to_end(certificates: tuple[trustme.CA, Path, Path]) -> None:
    ca, cert, key = certificates
    client = ssl.create_default_context()
    ca.configure_trust(client)
    async with run_tls_wsdev(f"--sslcert={cert}", f"--sslkey={key}", *HEADERS, CAT) as server:
        url = f"wss://localhost:{server.port}/"
        async with connect(url, ssl=client) as ws:
            await ws.send("over tls")
            assert await asyncio.wait_for(ws.recv(), scaled(10)) == "over tls"
        # Plain HTTP to the TLS port: refused without harm (websocketd answers Go's 400).
        try:
            plain: RawResponse | None = await request(server.port, "/")
        except (AssertionError, ConnectionError):
            plain = None
        if plain is not None:
            assert plain.status == 400
        async with connect(url, ssl=client) as ws:
            await ws.send("still fine")
            assert await asyncio.wait_for(ws.recv(), scaled(10)) == "still fine"
    _assert_no_traceback(server)


async def test_sslca_refuses_clients_without_a_certificate(
    certificates: tuple[trustme.CA, Path, Path], tmp_path: Path
) -> None:
    ca, cert, key = certificates
    client_ca = trustme.CA()
    client_ca_file = tmp_path / "client-ca.pem"
    client_ca.cert_pem.write_to_path(client_ca_file)
    anonymous = ssl.create_default_context()
    ca.configure_trust(anonymous)
    known = ssl.create_default_context()
    ca.configure_trust(known)
    client_ca.issue_cert("client@example.com").configure_cert(known)
    stranger = ssl.create_default_context()
    ca.configure_trust(stranger)
    trustme.CA().issue_cert("mallory@example.com").configure_cert(stranger)
    flags = (f"--sslcert={cert}", f"--sslkey={key}", f"--sslca={client_ca_file}", CAT)
    async with run_tls_wsdev(*flags) as server:
        url = f"wss://localhost:{server.port}/"
        for refused in (anonymous, stranger):
            with pytest.raises(
                (ssl.SSLError, ConnectionError, websockets.InvalidHandshake, EOFError)
            ):
                async with connect(url, ssl=refused) as ws:
                    await ws.send("x")
                    await asyncio.wait_for(ws.recv(), scaled(10))
        # Each refusal is logged with its reason (behaviour A6).
        await server.wait_for_log(
            r"\| ERROR  \| http +\| +\| TLS handshake with 127\.0\.0\.1:\d+ refused: "
            r"the client sent no certificate"
        )
        await server.wait_for_log(
            r"TLS handshake with 127\.0\.0\.1:\d+ refused: the client's certificate was not "
            r"accepted \(.+\): it must be issued by a CA in --sslca"
        )
        async with connect(url, ssl=known) as ws:
            await ws.send("trusted")
            assert await asyncio.wait_for(ws.recv(), scaled(10)) == "trusted"
    _assert_no_traceback(server)


@pytest.mark.parametrize(
    ("target", "host", "location"),
    [
        ("/a/b?x=1&y=%20", "example.com:{redir}", "https://example.com:{tls}/a/b?x=1&y=%20"),
        ("/", "example.com", "https://example.com:{tls}/"),
        ("/p", "[::1]:{redir}", "https://[::1]:{tls}/p"),
        ("/p", "127.0.0.1:{redir}", "https://127.0.0.1:{tls}/p"),
    ],
)
async def test_redirport_sends_plain_http_to_tls(
    certificates: tuple[trustme.CA, Path, Path], target: str, host: str, location: str
) -> None:
    _, cert, key = certificates
    redir = free_port()
    flags = (f"--sslcert={cert}", f"--sslkey={key}", f"--redirport={redir}", *HEADERS, CAT)
    async with run_tls_wsdev(*flags) as server:
        response = await request(redir, target, host=host.format(redir=redir))
    assert response.status == 301
    assert response.header("Location") == location.format(tls=server.port)
    assert response.header("X-All") == "1" and response.header("X-Http") == "3"
    _assert_no_traceback(server)


# ---------------------------------------------------------------------------- Unix socket


async def test_unix_socket(tmp_path: Path) -> None:
    path = tmp_path / "wsdev.sock"
    front = ("--no-dashboard", "--no-reload", f"--unixsocket={path}")
    async with run_wsdev(*front, CAT, defaults=False) as server:
        await server.wait_for_log(str(path).replace(".", r"\."))
        async with unix_connect(str(path), "ws://localhost/") as ws:
            await ws.send("via unix")
            assert await asyncio.wait_for(ws.recv(), scaled(10)) == "via unix"
    _assert_no_traceback(server)
