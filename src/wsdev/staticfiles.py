"""Serving ``--staticdir``: files, directory indexes and listings, as Go's http.FileServer does.

Behaviour follows websocketd (Go's ``http.FileServer``): ``index.html`` for a directory, a 301 from
``/dir`` to ``dir/`` and from ``…/index.html`` to ``./``, a listing for a directory without an
index, Last-Modified / If-Modified-Since (304), Range (206, 416), HEAD, and ``text/*`` types with
``charset=utf-8``. Unlike Go's server, nothing outside the folder is ever served (behaviour
B5): a path with a ``..`` or ``.`` segment (also percent-encoded), a NUL or a backslash, or one
that resolves through a symlink to outside the folder, matches nothing. ``resolve_under`` is that
rule, shared with the CGI runner. (A path that cleans to one inside the folder never gets here:
the routes move it with a 301 first, ``cleanpath``.)
"""

from __future__ import annotations

import asyncio
import html
import mimetypes
import os
from pathlib import Path
from urllib.parse import quote, unquote_to_bytes

from aiohttp import web

# Types browsers insist on, fixed here so they do not depend on the machine's mime.types.
_WEB_TYPES = {
    ".html": "text/html",
    ".htm": "text/html",
    ".css": "text/css",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".json": "application/json",
    ".map": "application/json",
    ".wasm": "application/wasm",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
    ".txt": "text/plain",
    ".xml": "text/xml",
    ".pdf": "application/pdf",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
}
_SNIFF_BYTES = 512
_INDEX = "index.html"


async def serve_static(request: web.BaseRequest, root: Path) -> web.StreamResponse | None:
    """The response for ``request`` from the folder ``root``, or None when nothing matches."""
    segments = url_segments(request.rel_url.raw_path)
    if segments is None:
        return None
    loop = asyncio.get_running_loop()
    # Resolving walks the file system; keep it off the event loop like aiohttp's own static route.
    found = await loop.run_in_executor(None, _locate, root, segments)
    if found is None:
        return None
    target, is_dir = found
    query = request.rel_url.raw_query_string
    last = segments[-1] if segments else ""
    if is_dir:
        if last:
            return _local_redirect(quote(last) + "/", query)
        index = await loop.run_in_executor(None, _index_file, root, segments)
        if index is None:
            return await _listing(request, target)
        target = index
    elif last == "":
        # A file asked for as a directory ("/a.txt/"): Go sends the client to the file itself.
        name = segments[-2] if len(segments) > 1 else ""
        return _local_redirect("../" + quote(name), query)
    elif last == _INDEX:
        return _local_redirect("./", query)
    content_type = await loop.run_in_executor(None, content_type_for, target)
    return web.FileResponse(target, headers={"Content-Type": content_type})


def url_segments(raw_path: str) -> list[str] | None:
    """The decoded segments of a request path (``"/a/b/"`` → ``["a", "b", ""]``), or None.

    None means the path can never name something inside a folder: it is not absolute, is not
    UTF-8, or has a ``.`` / ``..`` segment, a NUL or a backslash after percent-decoding.
    """
    path = raw_path.partition("?")[0]
    try:
        decoded = unquote_to_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not decoded.startswith("/") or "\0" in decoded or "\\" in decoded:
        return None
    segments = decoded.split("/")[1:]
    if any(segment in (".", "..") for segment in segments):
        return None
    return segments


def resolve_under(root: Path, segments: list[str]) -> Path | None:
    """The existing path ``segments`` name under ``root``, symlinks resolved, if it stays inside."""
    base = root.resolve()
    try:
        resolved = base.joinpath(*(s for s in segments if s)).resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        # RuntimeError: a symlink loop before Python 3.13; ValueError: an embedded NUL.
        return None
    if resolved != base and not resolved.is_relative_to(base):
        return None
    return resolved


def content_type_for(path: Path) -> str:
    """The Content-Type Go would send: by extension, else sniffed; ``text/*`` gets charset."""
    suffix = path.suffix.lower()
    content_type = _WEB_TYPES.get(suffix) or mimetypes.guess_type(path.name)[0]
    if content_type is None:
        content_type = _sniff(path)
    if content_type.startswith("text/") and "charset" not in content_type:
        content_type += "; charset=utf-8"
    return content_type


def _sniff(path: Path) -> str:
    try:
        with path.open("rb") as file:
            head = file.read(_SNIFF_BYTES)
    except OSError:
        return "application/octet-stream"
    if b"\0" in head:
        return "application/octet-stream"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the sniff limit is still text.
        if exc.start < len(head) - 3:
            return "application/octet-stream"
    return "text/plain"


def _locate(root: Path, segments: list[str]) -> tuple[Path, bool] | None:
    target = resolve_under(root, segments)
    if target is None:
        return None
    if target.is_dir():
        return target, True
    if target.is_file():
        return target, False
    return None  # sockets, pipes, devices


def _index_file(root: Path, segments: list[str]) -> Path | None:
    index = resolve_under(root, [*segments, _INDEX])
    return index if index is not None and index.is_file() else None


def _local_redirect(location: str, query: str) -> web.Response:
    """A 301 with a relative Location, as Go's ``localRedirect`` sends."""
    if query:
        location += "?" + query
    return web.Response(status=301, headers={"Location": location})


async def _listing(request: web.BaseRequest, directory: Path) -> web.Response:
    """Go's directory listing: one link per entry, sorted, folders ending in ``/``."""
    listed = await asyncio.get_running_loop().run_in_executor(None, _list_directory, directory)
    if listed is None:
        return web.Response(status=500, text="500 Internal Server Error: cannot read directory\n")
    body, modified = listed
    since = request.if_modified_since
    if since is not None and int(modified) <= since.timestamp():
        response = web.Response(status=304)
    else:
        response = web.Response(text=body, content_type="text/html", charset="utf-8")
    response.last_modified = modified
    return response


def _list_directory(directory: Path) -> tuple[str, float] | None:
    try:
        entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
        modified = directory.stat().st_mtime
    except OSError:
        return None
    lines = ["<pre>\n"]
    for entry in entries:
        name = entry.name + ("/" if entry.is_dir() else "")
        lines.append(f'<a href="{html.escape(quote(name))}">{html.escape(name)}</a>\n')
    lines.append("</pre>\n")
    return "".join(lines), modified
