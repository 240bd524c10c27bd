"""The ``--dir`` folder pages: a folder's programs, each a link to its console (behaviour C7).

Under ``--dir``, a plain GET of the root or of any folder path that the console would answer
lists that folder instead: its programs link to their consoles (the console at a program's path
talks to it), its subfolders to their own listing, and a file that cannot run is shown greyed
with the reason. Every name reaches the page HTML-escaped, and every link percent-encoded.

For a room where everyone drops a bot into one folder, each program also shows its author (a
``# author: NAME`` line near its top, else its file name without extension) and how many
connections it has right now, and a program that cannot start is marked with what to do.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from aiohttp import web

from wsdev import __version__
from wsdev.clientname import clean_name
from wsdev.console import PAGE_HEADERS
from wsdev.scripts import inspect_script, read_head
from wsdev.staticfiles import resolve_under


@dataclass(frozen=True, slots=True)
class Listed:
    """One line of a folder page."""

    name: str
    href: str
    kind: str  # "folder", "program" or "idle" (a file that cannot run as it is)
    why: str = ""
    author: str = ""
    live: int = 0  # connections to it right now
    broken: bool = False  # a program that cannot start: ``why`` says what to do (behaviour F)


#: The author line is looked for among this many lines at the top of a program.
AUTHOR_LINES = 5
_AUTHOR = re.compile(r"^\s*(?:#|//|--|;)\s*author\s*:\s*(.*)$", re.IGNORECASE)


def author_of(path: Path) -> str:
    """Who wrote the program: its ``# author: NAME`` line, else its name without extension."""
    for line in read_head(path).decode("utf-8", "replace").splitlines()[:AUTHOR_LINES]:
        found = _AUTHOR.match(line)
        if found:
            name = clean_name(found.group(1))
            if name:
                return name
    return clean_name(path.stem) or path.name


def listed_folder(root: Path, url_path: str) -> Path | None:
    """The folder under ``root`` that ``url_path`` (decoded) names, or None when it names none."""
    parts = [part for part in url_path.split("/") if part]
    if any(part in (".", "..") or "\0" in part or "\\" in part for part in parts):
        return None
    folder = resolve_under(root, parts)
    return folder if folder is not None and folder.is_dir() else None


def folder_entries(folder: Path, base: str, live: Mapping[str, int] | None = None) -> list[Listed]:
    """What ``folder`` holds, folders first, then files by name; hidden entries are left out.

    ``live``: the number of connections to each program, by its path.
    """
    live = live or {}
    try:
        children = sorted(folder.iterdir(), key=lambda p: (not p.is_dir(), p.name.lower()))
    except OSError:
        return []
    listed = []
    for child in children:
        name = child.name
        if name.startswith("."):
            continue
        href = base + quote(name)
        if child.is_dir():
            listed.append(Listed(name + "/", href + "/", "folder"))
        elif not child.is_file():
            continue
        elif os.access(child, os.X_OK):
            problem = inspect_script(child).problem  # only its own entry says so
            listed.append(
                Listed(
                    name,
                    href,
                    "program",
                    problem or "",
                    author_of(child),
                    live.get(str(child), 0),
                    problem is not None,
                )
            )
        else:
            why = f"not executable: run chmod +x {name} to serve it"
            listed.append(Listed(name, href, "idle", why))
    return listed


def listing_page(
    folder: Path, url_path: str, scheme: str, host: str, live: Mapping[str, int] | None = None
) -> web.Response:
    """The page for ``folder``, reached at ``url_path``; ``live`` as for ``folder_entries``."""
    parts = [part for part in url_path.split("/") if part]
    base = "/" + "".join(quote(part) + "/" for part in parts)
    shown_path = "/" + "".join(part + "/" for part in parts)
    rows = []
    if parts:
        parent = "/" + "".join(quote(part) + "/" for part in parts[:-1])
        rows.append(_row(Listed("../", parent, "folder")))
    entries = folder_entries(folder, base, live)
    rows.extend(_row(entry) for entry in entries)
    if not entries:
        rows.append('<li class="none">No programs in this folder.</li>')
    ws_base = f"{scheme}://{host}{base}"
    e = html.escape
    body = _TEMPLATE.format(
        title=e(f"{shown_path} · wsdev"),
        path=e(shown_path),
        folder=e(folder.name or str(folder)),
        ws=e(ws_base),
        rows="\n".join(rows),
        version=e(__version__),
    )
    return web.Response(text=body, content_type="text/html", charset="utf-8", headers=PAGE_HEADERS)


def _row(entry: Listed) -> str:
    e = html.escape
    if entry.kind == "idle":
        return (
            f'<li class="idle"><span class="name">{e(entry.name)}</span>'
            f'<span class="why">{e(entry.why)}</span></li>'
        )
    if entry.kind == "folder":
        return (
            f'<li class="folder"><a href="{e(entry.href)}">{e(entry.name)}</a>'
            '<span class="why">folder</span></li>'
        )
    live = f"{entry.live} live" if entry.live else "no one connected"
    why = e(entry.why) if entry.broken else "open its console"
    return (
        f'<li class="program{" broken" if entry.broken else ""}" data-live="{entry.live}">'
        f'<a href="{e(entry.href)}">{e(entry.name)}</a>'
        f'<span class="author">by {e(entry.author)}</span>'
        f'<span class="live">{live}</span>'
        f'<span class="why">{why}</span></li>'
    )


_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>{title}</title>
<link rel="stylesheet" href="/_wsdev/static/console.css">
<script src="/_wsdev/static/console.js"></script>
</head>
<body class="listing-page">
<header class="bar"><div class="brand"><span>wsdev</span></div>
<span class="listing-path">{path}</span></header>
<main class="listing">
<h1>Programs in {folder}</h1>
<p class="listing-hint">Each program answers WebSocket clients at <code>{ws}NAME</code>.
Open one to talk to it in the console.</p>
<ul class="listing-entries">
{rows}
</ul>
<p class="listing-foot">wsdev {version} · --dir</p>
</main>
</body>
</html>
"""
