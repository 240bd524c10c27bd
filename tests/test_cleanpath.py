"""Paths with ``.``/``..`` segments or doubled slashes in ``--staticdir``, ``--cgidir`` and
``--dir``: a 301 to the cleaned path, replayed against websocketd and wsdev (behaviour A5).

websocketd cleans every path (Go's ``http.ServeMux``); wsdev does so where a folder owns the
paths, and answers a path whose ``..`` would climb out of the folder with 404 instead of
websocketd's 301 to the root-clamped path (behaviour B5).
"""

from __future__ import annotations

import sys
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from conftest import ServerProcess, requires_websocketd, run_websocketd, run_wsdev
from rawhttp import RawResponse, request, upgrade
from wsdev.cleanpath import clean, moved_body, moved_to

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX scripts and sockets")

Serving = AbstractAsyncContextManager[ServerProcess]


@pytest.mark.parametrize(
    ("path", "cleaned"),
    [
        ("/", "/"),
        ("/a/b/", "/a/b/"),
        ("/a/../b", "/b"),
        ("/a/./b", "/a/b"),
        ("//a", "/a"),
        ("/a//", "/a/"),
        ("/a/.", "/a"),
        ("/a/..", "/"),
        ("/a/../", "/"),
        ("/a/b/../../c/", "/c/"),
        ("/..", None),
        ("/../a", None),
        ("/a/../../b", None),
        ("/./../a", None),
    ],
)
def test_clean(path: str, cleaned: str | None) -> None:
    assert clean(path) == cleaned


@pytest.mark.parametrize(
    ("target", "location"),
    [
        ("/a.txt", None),
        ("/sub/", None),
        ("/%61.txt", None),  # encoded, but clean once decoded: Go leaves it too
        ("/sub/../a.txt?q=1&b=%20", "/a.txt?q=1&b=%20"),
        ("/./a.txt?", "/a.txt"),
        ("/sub%2f..%2fa.txt", "/a.txt"),
        ("/a%20b!/./c'd", "/a%20b%21/c%27d"),
        ("/sub/./%C3%A9", "/sub/%C3%A9"),
        ("/../a.txt", None),  # leaves the folder: 404, not moved
        ("/%2e%2e/a.txt", None),
        ("/sub/%00/../a.txt", None),
        ("/..\\a/../a.txt", None),
        ("/%FF/./a", None),
        ("http://host/./a", None),
    ],
)
def test_moved_to(target: str, location: str | None) -> None:
    assert moved_to(target) == location


def test_moved_body_escapes_as_go_does() -> None:
    assert moved_body("/a?x=1&y='\"<") == (
        '<a href="/a?x=1&amp;y=&#39;&#34;&lt;">Moved Permanently</a>.\n\n'
    )


# ---------------------------------------------------------------- against websocketd


@pytest.fixture
def folders(tmp_path: Path) -> Path:
    static = tmp_path / "static"
    (static / "sub").mkdir(parents=True)
    (static / "a.txt").write_text("hello\n")
    (static / "sub" / "b.txt").write_text("b\n")
    (static / "sub" / "index.html").write_text("<p>sub</p>\n")
    cgi = tmp_path / "cgi"
    (cgi / "sub").mkdir(parents=True)
    scripts = tmp_path / "dir"
    (scripts / "sub").mkdir(parents=True)
    for script in (cgi / "x.sh", cgi / "sub" / "y.sh"):
        script.write_text(
            '#!/bin/sh\nprintf "Content-Type: text/plain\\n\\nran $PATH_INFO $QUERY_STRING\\n"\n'
        )
    for script in (scripts / "e.sh", scripts / "sub" / "f.sh"):
        script.write_text('#!/bin/sh\necho "$SCRIPT_NAME|$PATH_INFO|$QUERY_STRING"\n')
    for script in (*cgi.rglob("*.sh"), *scripts.rglob("*.sh")):
        script.chmod(0o755)
    (tmp_path / "outside.txt").write_text("SECRET\n")
    return tmp_path


# Paths that stay inside the folder: websocketd and wsdev move them alike.
STATIC_AND_CGI = [
    ("GET", "/sub/../a.txt"),
    ("GET", "/./a.txt"),
    ("GET", "//a.txt"),
    ("GET", "/sub//b.txt"),
    ("GET", "/sub/./b.txt"),
    ("GET", "/sub/../a.txt?q=1&b=%20"),
    ("GET", "/sub/%2e%2e/a.txt"),
    ("GET", "/sub/.."),
    ("GET", "/sub/."),
    ("GET", "/sub/./"),
    ("GET", "/sub//"),
    ("GET", "/a.txt/."),
    ("GET", "/missing/../a.txt"),
    ("GET", "/sub/../missing"),
    ("GET", "/sub%2f..%2fa.txt"),
    ("GET", "/a%20b!/./c'd\"<"),
    ("GET", "/sub/./%C3%A9"),
    ("HEAD", "/./a.txt"),
    ("POST", "/./a.txt"),
    ("GET", "/sub/../x.sh"),
    ("GET", "/./x.sh?a=b"),
    ("GET", "//x.sh"),
    ("GET", "/sub//y.sh"),
    ("POST", "/x.sh/../x.sh"),
    ("GET", "/x.sh/."),
]
CLEAN = [("GET", "/a.txt"), ("GET", "/sub/"), ("GET", "/x.sh?a=b"), ("GET", "/x.sh/")]
DIR = [
    "/sub/../e.sh",
    "/./e.sh",
    "//e.sh",
    "/sub//f.sh",
    "/sub/./f.sh?x=1",
    "/e.sh/../e.sh",
    "/e.sh/./a",
    "/e.sh//a",
    "/e.sh/a/../b",
    "/sub/%2e%2e/e.sh",
    "/sub/..",
    "/e.sh/",
    "/sub/f.sh/x?y=1",
]


def _view(response: RawResponse) -> tuple[object, ...]:
    body = response.body if response.status == 301 else None
    return response.status, response.header("Location"), response.header("Content-Type"), body


def _mismatches(
    cases: list[str], theirs: list[tuple[object, ...]], ours: list[tuple[object, ...]]
) -> str:
    return "\n".join(
        f"{case}:\n  websocketd {a}\n  wsdev      {b}"
        for case, a, b in zip(cases, theirs, ours, strict=True)
        if a != b
    )


@requires_websocketd
@pytest.mark.websocketd
async def test_static_and_cgi_paths_are_moved_as_websocketd_moves_them(folders: Path) -> None:
    async def replay(start: Serving) -> list[tuple[object, ...]]:
        async with start as server:
            return [
                _view(await request(server.port, target, method=method))
                for method, target in STATIC_AND_CGI + CLEAN
            ]

    flags = (f"--staticdir={folders / 'static'}", f"--cgidir={folders / 'cgi'}", "cat")
    theirs = await replay(run_websocketd(*flags))
    ours = await replay(run_wsdev(*flags))
    cases = [" ".join(case) for case in STATIC_AND_CGI + CLEAN]
    assert ours == theirs, _mismatches(cases, theirs, ours)
    assert [view[0] == 301 for view in ours] == [True] * len(STATIC_AND_CGI) + [False] * len(CLEAN)


@requires_websocketd
@pytest.mark.websocketd
async def test_dir_paths_are_moved_as_websocketd_moves_them(folders: Path) -> None:
    async def replay(start: Serving) -> list[tuple[object, ...]]:
        async with start as server:
            upgrades = [_view(await upgrade(server.port, target=target)) for target in DIR]
            # A plain GET too: websocketd moves it; wsdev moves it before the console page.
            gets = [_view(await request(server.port, target)) for target in DIR[:3]]
            return upgrades + gets

    flags = (f"--dir={folders / 'dir'}",)
    theirs = await replay(run_websocketd(*flags))
    ours = await replay(run_wsdev(*flags))
    cases = [f"upgrade {target}" for target in DIR] + [f"GET {target}" for target in DIR[:3]]
    assert ours == theirs, _mismatches(cases, theirs, ours)


# ---------------------------------------------------------------- wsdev's own: never out


CLIMBING_OUT = ["/../outside.txt", "/sub/../../outside.txt", "/%2e%2e/outside.txt", "/../x.sh"]


async def test_a_path_that_climbs_out_is_not_found(folders: Path) -> None:
    # websocketd answers these with a 301 to the root-clamped path (behaviour B5).
    flags = (f"--staticdir={folders / 'static'}", f"--cgidir={folders / 'cgi'}", "cat")
    async with run_wsdev(*flags) as server:
        for target in CLIMBING_OUT:
            response = await request(server.port, target)
            assert response.status == 404, target
            assert b"SECRET" not in response.body and b"ran" not in response.body, target


async def test_dir_upgrade_that_climbs_out_is_not_found_and_moves_are_logged(
    folders: Path,
) -> None:
    async with run_wsdev(f"--dir={folders / 'dir'}") as server:
        out = await upgrade(server.port, target="/../e.sh")
        moved = await upgrade(server.port, target="/sub/../e.sh?x")
        await server.wait_for_log(r"\| ACCESS \| http +\| url:'.*/sub/\.\./e\.sh\?x'.*\| REDIRECT$")
        followed = await upgrade(server.port, target=moved.header("Location") or "")
    assert out.status == 404
    assert (moved.status, moved.header("Location")) == (301, "/e.sh?x")
    assert followed.status == 101
