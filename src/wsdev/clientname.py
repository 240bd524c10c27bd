"""Who is who in a room (behaviour C9): the name a person gives in the console.

The console sends the name as its own parameter of its socket envelope
(``/_wsdev/ws?path=…&query=…&name=…``). wsdev keeps it on the connection for the dashboard and
the log; the program sees it only under ``--names``, as one more ``name=`` parameter of its
``QUERY_STRING`` (and so of ``REQUEST_URI``).
"""

from __future__ import annotations

from urllib.parse import quote

#: The envelope's parameter, and the one added to the program's query under ``--names``.
PARAM = "name"
MAX_LENGTH = 32


def clean_name(raw: str) -> str:
    """The name as wsdev keeps it: trimmed, at most 32 characters, printable only; "" when
    nothing usable is left (a name is a label, never an error for the person typing it)."""
    printable = "".join(ch for ch in raw if ch.isprintable())
    return printable.strip()[:MAX_LENGTH].strip()


def with_name(raw_query: str, name: str) -> str:
    """``raw_query`` with ``name=<name>`` added, percent-encoded (for ``--names``)."""
    pair = f"{PARAM}={quote(name, safe='')}"
    return f"{raw_query}&{pair}" if raw_query else pair
