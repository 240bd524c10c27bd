"""Request paths with ``.`` or ``..`` segments or doubled slashes, in the folders wsdev serves.

websocketd (Go's ``http.ServeMux``) answers such a path with a 301 to its cleaned form, the
query kept, before anything else looks at it; wsdev does the same for ``--staticdir``,
``--cgidir`` and ``--dir`` (behaviour A5). Unlike Go, which stops a ``..`` at the root and so
sends ``/../etc/passwd`` to ``/etc/passwd``, a path whose ``..`` would climb out of the folder
is not moved anywhere: it matches nothing and gets the 404 it always got (behaviour B5), and so
does one with a NUL or a backslash. ``moved_to`` is the one rule, used by the HTTP routes and by
the WebSocket handshake in ``--dir`` mode.
"""

from __future__ import annotations

from html import escape
from urllib.parse import quote, unquote_to_bytes

# What Go leaves unescaped in a path (``url.EscapedPath``): letters, digits, ``-._~`` and these.
_PATH_SAFE = "/$&+,:;=@"
MOVED_CONTENT_TYPE = "text/html; charset=utf-8"


def moved_to(target: str) -> str | None:
    """Where the request ``target`` (path and query, as sent) is moved to, or None.

    None means the path is clean already, or it cannot be cleaned without leaving the folder (or
    holds a NUL, a backslash or bytes that are not UTF-8): either way, no redirect.
    """
    raw_path, has_query, raw_query = target.partition("?")
    if not raw_path.startswith("/"):
        return None
    try:
        path = unquote_to_bytes(raw_path).decode("utf-8")
    except UnicodeDecodeError:
        return None
    if "\0" in path or "\\" in path:
        return None
    cleaned = clean(path)
    if cleaned is None or cleaned == path:
        return None
    location = quote(cleaned, safe=_PATH_SAFE)
    return f"{location}?{raw_query}" if has_query and raw_query else location


def clean(path: str) -> str | None:
    """``path`` without ``.`` segments, ``..`` segments and doubled slashes, as Go's
    ``path.Clean`` makes it (a trailing slash kept); None if a ``..`` would climb above ``/``."""
    kept: list[str] = []
    for segment in path.split("/")[1:]:
        if segment in ("", "."):
            continue
        if segment == "..":
            if not kept:
                return None
            kept.pop()
        else:
            kept.append(segment)
    cleaned = "/" + "/".join(kept)
    if path.endswith("/") and cleaned != "/":
        cleaned += "/"
    return cleaned


def moved_body(location: str) -> str:
    """The short HTML body Go's ``http.Redirect`` gives a GET (with Go's own escaping)."""
    return f'<a href="{_go_html_escape(location)}">Moved Permanently</a>.\n\n'


def _go_html_escape(text: str) -> str:
    return escape(text, quote=True).replace("&quot;", "&#34;").replace("&#x27;", "&#39;")
