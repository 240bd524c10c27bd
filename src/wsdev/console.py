"""The browser console's HTTP side: the page for an endpoint, the files it loads (behaviour C1, C5).

The page itself is ``static/console.html`` with the endpoint and a few facts about the run
injected as JSON in a data attribute; everything else (connecting, the transcript, reconnects)
happens in ``static/console.js``, which speaks the envelope the server sends on ``/_wsdev/ws``.
"""

from __future__ import annotations

import functools
import html
import json
from pathlib import Path

from aiohttp import web

from wsdev import __version__
from wsdev.config import Config

#: The reserved path prefix for wsdev's own routes (console page, its assets, its socket).
CONSOLE_PREFIX = "/_wsdev/"

STATIC_DIR = Path(__file__).resolve().parent / "static"
_TEMPLATE = STATIC_DIR / "console.html"

# Only these kinds of files are assets; the HTML template is served through ``console_page``
# (raw, it would show its placeholders), and anything else in the folder stays private.
_CONTENT_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
}

# The console never needs anything from another origin; a strict policy means that even a bug
# in how it displays a program's output could not run that output as script.
_CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self' ws: wss:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'self'",
    )
)

_COMMON_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
}

#: The headers of wsdev's own pages (the console, the ``--dir`` folder listing).
PAGE_HEADERS = {
    **_COMMON_HEADERS,
    "Content-Security-Policy": _CSP,
    "Referrer-Policy": "no-referrer",
}


def page_settings(
    config: Config, endpoint_path: str, endpoint_query: str, room_link: str | None = None
) -> dict[str, object]:
    """What the page's script is told at load: the target endpoint and how wsdev runs.

    Under --lan the page also gets the room's link and its QR code, for the share button
    (behaviour B14): the page is only served to those who have the link already.
    """
    return {
        **({"room": room_settings(room_link, config.join_secret)} if room_link else {}),
        "path": endpoint_path or "/",
        "query": endpoint_query,
        "socket": CONSOLE_PREFIX + "ws",
        "command": config.command_display,
        "dirMode": config.script_dir is not None,
        "binary": config.binary,
        "version": __version__,
    }


@functools.lru_cache(maxsize=1)
def room_settings(link: str, secret: str) -> dict[str, str]:
    """The room's address for the share button, and the QR code of its link: drawn once, for
    every console page of the run (the link does not change while wsdev runs)."""
    import segno

    qr = segno.make(link, error="l", micro=False).svg_data_uri(scale=4, border=2)
    origin = link.partition("?")[0].rstrip("/")
    return {"origin": origin, "join": secret, "link": link, "qr": qr}


def render_page(settings: dict[str, object]) -> str:
    """The console HTML with ``settings`` injected; every injected value is HTML-escaped."""
    template = _TEMPLATE.read_text(encoding="utf-8")
    title = f"{settings['path']} · wsdev console"
    return template.replace("{{TITLE}}", html.escape(title)).replace(
        "{{SETTINGS}}", html.escape(json.dumps(settings), quote=True)
    )


def console_page(
    config: Config, endpoint_path: str, endpoint_query: str, room_link: str | None = None
) -> web.Response:
    """The console for ``endpoint_path?endpoint_query`` (``/`` and empty at the prefix itself)."""
    body = render_page(page_settings(config, endpoint_path, endpoint_query, room_link))
    return web.Response(
        text=body,
        content_type="text/html",
        charset="utf-8",
        headers=PAGE_HEADERS,
    )


def asset_path(name: str) -> Path | None:
    """The file ``name`` names directly inside the static folder, or None.

    The name is looked up among the folder's own entries rather than joined onto a path, so
    ``..``, separators, encoded tricks and symlinks leading out of the folder cannot match.
    """
    if not name or name.startswith(".") or "/" in name or "\\" in name or "\0" in name:
        return None
    suffix = Path(name).suffix.lower()
    if suffix not in _CONTENT_TYPES:
        return None
    try:
        entries = {entry.name: entry for entry in STATIC_DIR.iterdir()}
    except OSError:
        return None
    entry = entries.get(name)
    if entry is None or not entry.is_file():
        return None
    resolved = entry.resolve()
    if resolved.parent != STATIC_DIR:
        return None
    return resolved


def console_asset(name: str) -> web.StreamResponse | None:
    """``/_wsdev/static/<name>``: a file of the static folder, or None when there is none."""
    path = asset_path(name)
    if path is None:
        return None
    return web.FileResponse(
        path,
        headers={**_COMMON_HEADERS, "Content-Type": _CONTENT_TYPES[path.suffix.lower()]},
    )
