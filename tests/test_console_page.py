"""The console's HTTP side: the page, its injected settings and its assets (behaviour C1, C5)."""

from __future__ import annotations

import html
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from wsdev import __version__
from wsdev.config import Config
from wsdev.console import CONSOLE_PREFIX, STATIC_DIR, asset_path, console_asset, console_page

CONFIG = Config(command=("/bin/cat",), command_display="./bot.py")


def settings_of(body: str) -> dict[str, object]:
    match = re.search(r'<html lang="en" data-wsdev="([^"]*)">', body)
    assert match, body[:300]
    return json.loads(html.unescape(match.group(1)))  # type: ignore[no-any-return]


def test_prefix_is_the_reserved_one() -> None:
    assert CONSOLE_PREFIX == "/_wsdev/"


def test_page_carries_the_endpoint_and_the_run() -> None:
    response = console_page(CONFIG, "/chat", "room=1")
    assert response.status == 200
    assert response.content_type == "text/html"
    assert response.charset == "utf-8"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.text is not None
    assert settings_of(response.text) == {
        "path": "/chat",
        "query": "room=1",
        "socket": "/_wsdev/ws",
        "command": "./bot.py",
        "dirMode": False,
        "binary": False,
        "version": __version__,
    }
    assert "<title>/chat · wsdev console</title>" in response.text
    assert '<link rel="stylesheet" href="/_wsdev/static/console.css">' in response.text
    assert '<script src="/_wsdev/static/console.js"></script>' in response.text
    assert "{{" not in response.text


def test_page_for_the_prefix_and_binary_dir_mode() -> None:
    config = Config(script_dir=Path("/srv"), binary=True)
    response = console_page(config, "", "")
    assert response.text is not None
    settings = settings_of(response.text)
    assert (settings["path"], settings["query"]) == ("/", "")
    assert settings["dirMode"] is True
    assert settings["binary"] is True


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ('/x"><script>alert(1)</script>', "a='><img src=x onerror=alert(1)>"),
        ("/&quot;&amp;</title><script>", '"&<>'),
    ],
)
def test_injected_values_cannot_break_out(path: str, query: str) -> None:
    response = console_page(Config(command_display="<b>cmd</b>"), path, query)
    body = response.text
    assert body is not None
    assert "<script>alert" not in body
    assert "<img" not in body
    assert "<b>cmd" not in body
    assert body.count("<script") == 1  # only the page's own script tag
    settings = settings_of(body)
    assert (settings["path"], settings["query"], settings["command"]) == (path, query, "<b>cmd</b>")
    title = re.search(r"<title>(.*)</title>", body)
    assert title is not None
    assert html.unescape(title.group(1)) == f"{path} · wsdev console"


def test_page_forbids_foreign_and_inline_code() -> None:
    csp = console_page(CONFIG, "/", "").headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert "unsafe-inline" not in csp


def test_static_files_are_self_contained() -> None:
    """No CDN and no remote fonts: the console works offline (behaviour C5)."""
    for name in ("console.html", "console.css", "console.js"):
        text = (STATIC_DIR / name).read_text(encoding="utf-8")
        urls = set(re.findall(r"https?://[^\s\"')]+", text))
        assert urls <= {"http://www.w3.org/2000/svg"}, (name, urls)
        assert "@import" not in text
    script = (STATIC_DIR / "console.js").read_text(encoding="utf-8")
    # Everything the console displays goes through textContent.
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script, sink


@pytest.mark.parametrize(
    "name",
    [
        "",
        "..",
        "../console.py",
        "..%2Fconsole.py",
        "/etc/passwd",
        "sub/console.js",
        "..\\console.js",
        ".hidden.js",
        "console.html",  # the template is served only through console_page
        "missing.js",
        "console.js\0.css",
    ],
)
def test_asset_lookup_refuses(name: str) -> None:
    assert asset_path(name) is None
    assert console_asset(name) is None


def test_asset_symlink_out_of_the_folder_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "static"
    folder.mkdir()
    (folder / "ok.css").write_text("a{}")
    secret = tmp_path / "secret.css"
    secret.write_text("secret")
    (folder / "leak.css").symlink_to(secret)
    monkeypatch.setattr("wsdev.console.STATIC_DIR", folder.resolve())
    assert asset_path("ok.css") == (folder / "ok.css").resolve()
    assert asset_path("leak.css") is None


@pytest_asyncio.fixture
async def client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    async def page(request: web.Request) -> web.StreamResponse:
        return console_page(CONFIG, request.path, request.rel_url.raw_query_string)

    async def asset(request: web.Request) -> web.StreamResponse:
        response = console_asset(request.match_info["name"])
        if response is None:
            raise web.HTTPNotFound()
        return response

    app = web.Application()
    app.router.add_get("/_wsdev/static/{name}", asset)
    app.router.add_get("/{tail:.*}", page)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("name", "content_type"),
    [("console.css", "text/css"), ("console.js", "text/javascript")],
)
async def test_assets_over_http(
    client: TestClient[web.Request, web.Application], name: str, content_type: str
) -> None:
    response = await client.get(f"/_wsdev/static/{name}")
    assert response.status == 200
    assert response.content_type == content_type
    assert response.charset == "utf-8"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert await response.read() == (STATIC_DIR / name).read_bytes()
    # no-cache means "revalidate": an unchanged file costs a 304, not a download.
    again = await client.get(
        f"/_wsdev/static/{name}",
        headers={"If-Modified-Since": response.headers["Last-Modified"]},
    )
    assert again.status == 304


async def test_page_over_http(client: TestClient[web.Request, web.Application]) -> None:
    response = await client.get("/chat?room=1&x=%20")
    assert response.status == 200
    assert response.content_type == "text/html"
    settings = settings_of(await response.text())
    assert (settings["path"], settings["query"]) == ("/chat", "room=1&x=%20")
    missing = await client.get("/_wsdev/static/..%2Fconsole.py")
    assert missing.status == 404
