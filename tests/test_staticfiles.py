"""``--staticdir`` serving, on a real aiohttp server on 127.0.0.1 with raw HTTP requests.

Expectations are Go's http.FileServer (what websocketd serves), except that nothing outside the
folder is ever served (behaviour B5): every traversal attempt is listed in ``TRAVERSALS``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from rawhttp import RawResponse, request, serve
from wsdev.staticfiles import content_type_for, resolve_under, serve_static, url_segments

SECRET = b"top secret outside the folder\n"
MTIME = 1_577_934_245  # Thu, 02 Jan 2020 03:04:05 GMT


@pytest.fixture
def site(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(SECRET)
    root = tmp_path / "site"
    (root / "sub").mkdir(parents=True)
    (root / "noindex" / "inner").mkdir(parents=True)
    (root / "a.txt").write_bytes(b"hello\n")
    os.utime(root / "a.txt", (MTIME, MTIME))
    (root / "index.html").write_text("<h1>root</h1>\n")
    (root / "sub" / "index.html").write_text("<p>sub</p>\n")
    (root / "noindex" / "app.js").write_text("console.log(1)\n")
    (root / "noindex" / "data.json").write_text("{}\n")
    (root / "noindex" / "weird name&<x>.css").write_text("a{}\n")
    (root / "noindex" / ".hidden").write_text("dot\n")
    (root / "été.txt").write_text("summer\n")
    (root / "notes").write_text("plain words with no extension\n")
    (root / "blob").write_bytes(bytes(range(256)))
    (root / "mod.wasm").write_bytes(b"\0asm\1\0\0\0")
    (root / "link-in.txt").symlink_to(root / "a.txt")
    (root / "link-out.txt").symlink_to(outside / "secret.txt")
    (root / "link-dir").symlink_to(outside, target_is_directory=True)
    (root / "a.txt.gz").symlink_to(outside / "secret.txt")  # aiohttp's precompressed sibling
    (root / "loop").symlink_to(root / "loop")
    return root


@pytest.fixture
async def port(site: Path) -> AsyncIterator[int]:
    async def handle(request: web.Request) -> web.StreamResponse:
        response = await serve_static(request, site)
        return response if response is not None else web.Response(status=404, text="not found\n")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    async with serve(app) as bound:
        yield bound


async def get(
    port: int, target: str, *headers: tuple[str, str], method: str = "GET"
) -> RawResponse:
    return await request(port, target, method=method, headers=headers)


async def test_file(port: int) -> None:
    response = await get(port, "/a.txt")
    assert response.status == 200
    assert response.body == b"hello\n"
    assert response.header("Content-Type") == "text/plain; charset=utf-8"
    assert response.header("Last-Modified") == "Thu, 02 Jan 2020 03:04:05 GMT"
    assert response.header("Accept-Ranges") == "bytes"
    assert response.header("Content-Length") == "6"


async def test_head_has_headers_and_no_body(port: int) -> None:
    head = f"HEAD /a.txt HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    # Sent raw and read as if it were a GET, so any body bytes on the wire would show up.
    response = await request(port, raw=head.encode())
    assert response.status == 200
    assert response.header("Content-Length") == "6"
    assert response.header("Content-Type") == "text/plain; charset=utf-8"
    assert response.body == b""


@pytest.mark.parametrize(
    ("since", "status"),
    [
        ("Thu, 02 Jan 2020 03:04:05 GMT", 304),
        ("Fri, 03 Jan 2020 00:00:00 GMT", 304),
        ("Wed, 01 Jan 2020 00:00:00 GMT", 200),
    ],
)
async def test_if_modified_since(port: int, since: str, status: int) -> None:
    response = await get(port, "/a.txt", ("If-Modified-Since", since))
    assert response.status == status
    assert response.body == (b"" if status == 304 else b"hello\n")
    assert response.header("Last-Modified") == "Thu, 02 Jan 2020 03:04:05 GMT"


@pytest.mark.parametrize(
    ("range_", "status", "body", "content_range"),
    [
        ("bytes=1-2", 206, b"el", "bytes 1-2/6"),
        ("bytes=4-", 206, b"o\n", "bytes 4-5/6"),
        ("bytes=-2", 206, b"o\n", "bytes 4-5/6"),
        ("bytes=0-100", 206, b"hello\n", "bytes 0-5/6"),
        ("bytes=10-20", 416, b"", "bytes */6"),
        ("bytes=6-", 416, b"", "bytes */6"),
    ],
)
async def test_range(port: int, range_: str, status: int, body: bytes, content_range: str) -> None:
    response = await get(port, "/a.txt", ("Range", range_))
    assert response.status == status
    assert response.body == body
    assert response.header("Content-Range") == content_range


async def test_directory_without_slash_redirects_like_go(port: int) -> None:
    response = await get(port, "/sub")
    assert response.status == 301
    assert response.header("Location") == "sub/"
    with_query = await get(port, "/sub?x=1&y=%20")
    assert with_query.header("Location") == "sub/?x=1&y=%20"


async def test_directory_serves_its_index(port: int) -> None:
    response = await get(port, "/sub/")
    assert response.status == 200
    assert response.body == b"<p>sub</p>\n"
    assert response.header("Content-Type") == "text/html; charset=utf-8"
    root = await get(port, "/")
    assert root.body == b"<h1>root</h1>\n"


@pytest.mark.parametrize(
    ("target", "location"),
    [("/index.html", "./"), ("/sub/index.html", "./"), ("/a.txt/", "../a.txt")],
)
async def test_canonical_redirects(port: int, target: str, location: str) -> None:
    response = await get(port, target)
    assert response.status == 301
    assert response.header("Location") == location


async def test_directory_without_index_is_listed(port: int) -> None:
    response = await get(port, "/noindex/")
    assert response.status == 200
    assert response.header("Content-Type") == "text/html; charset=utf-8"
    assert response.text == (
        "<pre>\n"
        '<a href=".hidden">.hidden</a>\n'
        '<a href="app.js">app.js</a>\n'
        '<a href="data.json">data.json</a>\n'
        '<a href="inner/">inner/</a>\n'
        '<a href="weird%20name%26%3Cx%3E.css">weird name&amp;&lt;x&gt;.css</a>\n'
        "</pre>\n"
    )
    modified = response.header("Last-Modified")
    assert modified is not None
    again = await get(port, "/noindex/", ("If-Modified-Since", modified))
    assert again.status == 304


@pytest.mark.parametrize(
    ("target", "content_type"),
    [
        ("/noindex/app.js", "text/javascript; charset=utf-8"),
        ("/noindex/data.json", "application/json"),
        ("/noindex/weird%20name%26%3Cx%3E.css", "text/css; charset=utf-8"),
        ("/mod.wasm", "application/wasm"),
        ("/notes", "text/plain; charset=utf-8"),
        ("/blob", "application/octet-stream"),
        ("/%C3%A9t%C3%A9.txt", "text/plain; charset=utf-8"),
        ("/noindex/.hidden", "text/plain; charset=utf-8"),
    ],
)
async def test_content_types(port: int, target: str, content_type: str) -> None:
    response = await get(port, target)
    assert response.status == 200
    assert response.header("Content-Type") == content_type


async def test_symlink_inside_the_folder_is_served(port: int) -> None:
    response = await get(port, "/link-in.txt")
    assert response.status == 200
    assert response.body == b"hello\n"


async def test_other_methods_are_served_like_go(port: int) -> None:
    response = await request(port, "/a.txt", method="POST", body=b"ignored")
    assert response.status == 200
    assert response.body == b"hello\n"


@pytest.mark.parametrize("target", ["/missing", "/sub/missing.txt", "/loop", "/a.txt/more"])
async def test_nothing_there_falls_through(port: int, target: str) -> None:
    response = await get(port, target)
    assert response.status == 404
    assert response.body == b"not found\n"


@pytest.mark.skipif(sys.platform == "win32", reason="named pipes are POSIX")
async def test_special_files_are_not_served(site: Path, port: int) -> None:
    os.mkfifo(site / "fifo")
    response = await get(port, "/fifo")
    assert response.status == 404


TRAVERSALS = [
    "/../outside/secret.txt",
    "/sub/../../outside/secret.txt",
    "/%2e%2e/outside/secret.txt",
    "/%2E%2E/outside/secret.txt",
    "/.%2e/outside/secret.txt",
    "/%2e./outside/secret.txt",
    "/sub/%2e%2e/%2e%2e/outside/secret.txt",
    "/..%2foutside%2fsecret.txt",
    "/sub%2f..%2f..%2foutside%2fsecret.txt",
    "/%2e%2e%2foutside%2fsecret.txt",
    "/..\\outside\\secret.txt",
    "/..%5coutside%5csecret.txt",
    "/sub%5c..%5c..%5coutside%5csecret.txt",
    "/%252e%252e/outside/secret.txt",
    "/..%c0%afoutside/secret.txt",
    "/a.txt%00/../../outside/secret.txt",
    "/%00../outside/secret.txt",
    "/sub/./../../outside/secret.txt",
    "/link-out.txt",
    "/link-dir/secret.txt",
    "/link-dir/",
    "/link-dir",
    "/sub/../link-out.txt",
]


@pytest.mark.parametrize("target", TRAVERSALS)
async def test_traversal_never_leaves_the_folder(port: int, target: str) -> None:
    response = await get(port, target)
    assert SECRET not in response.body
    assert response.status in (400, 404)


async def test_absolute_path_in_the_url_stays_inside(port: int, site: Path) -> None:
    secret = site.parent / "outside" / "secret.txt"
    for target in (f"/{secret}", f"/%2F{str(secret).lstrip('/')}"):
        response = await get(port, target)
        assert SECRET not in response.body
        assert response.status == 404


async def test_precompressed_sibling_symlink_is_not_followed(port: int) -> None:
    response = await get(port, "/a.txt", ("Accept-Encoding", "gzip"))
    assert response.status == 200
    assert response.body == b"hello\n"
    assert response.header("Content-Encoding") is None


@pytest.mark.parametrize(
    ("raw_path", "segments"),
    [
        ("/", [""]),
        ("/a/b/", ["a", "b", ""]),
        ("/a%20b?x=../..", ["a b"]),
        ("/a%2Fb", ["a", "b"]),
        ("/%C3%A9", ["é"]),
        ("/..", None),
        ("/a/./b", None),
        ("/%2e", None),
        ("/a%5cb", None),
        ("/a%00", None),
        ("/%ff", None),
        ("relative", None),
    ],
)
def test_url_segments(raw_path: str, segments: list[str] | None) -> None:
    assert url_segments(raw_path) == segments


def test_resolve_under(site: Path) -> None:
    assert resolve_under(site, ["a.txt"]) == (site / "a.txt").resolve()
    assert resolve_under(site, [""]) == site.resolve()
    assert resolve_under(site, ["link-in.txt"]) == (site / "a.txt").resolve()
    assert resolve_under(site, ["link-out.txt"]) is None
    assert resolve_under(site, ["link-dir", "secret.txt"]) is None
    assert resolve_under(site, ["missing"]) is None
    assert resolve_under(site, ["loop"]) is None


def test_content_type_for_a_cut_utf8_character(tmp_path: Path) -> None:
    text = tmp_path / "cut"
    text.write_bytes(b"a" * 511 + "é".encode())  # the sniff window ends inside "é"
    assert content_type_for(text) == "text/plain; charset=utf-8"
