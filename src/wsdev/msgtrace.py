"""Every message in the log at ``--loglevel=trace`` (behaviour A6), for a tool that follows it.

One ``trace`` line per message, in the ``websocket`` category with the connection's context
keys, saying which way it went, its size and its start: ``IN 5 bytes: "hello"``. Only with the
log (the dashboard has its own view of traffic), and only at ``trace`` or ``debug``: otherwise
nothing subscribes to messages and the bridge makes no event per message.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from wsdev.events import ConnectionInfo, Event, EventBus, MessageIn, MessagesOut
from wsdev.logs import TRACE, connection_context

logger = logging.getLogger(__name__)

#: Characters of a text message shown; a longer one says how much of it is shown.
TEXT_SHOWN = 200
#: Bytes of a binary message shown, in hex.
BINARY_SHOWN = 64


def trace_messages(bus: EventBus) -> Callable[[], None] | None:
    """Log each message from now on if the log level shows ``trace``; returns the undo."""
    if not logger.isEnabledFor(TRACE):
        return None
    return bus.subscribe(_on_event)


def describe(direction: str, data: str | bytes, binary: bool) -> str:
    """``IN 5 bytes: "hello"``: the message as JSON text (one line, however it is made), or hex."""
    if binary:
        raw = data.encode() if isinstance(data, str) else data
        shown = f" (binary, first {BINARY_SHOWN})" if len(raw) > BINARY_SHOWN else " (binary)"
        return f"{direction} {len(raw)} bytes{shown}: {raw[:BINARY_SHOWN].hex(' ')}"
    if isinstance(data, bytes):
        size, text = len(data), data.decode("utf-8", "replace")
    else:
        size, text = len(data.encode("utf-8", "surrogatepass")), data
    shown = f" (first {TEXT_SHOWN} characters)" if len(text) > TEXT_SHOWN else ""
    return f"{direction} {size} bytes{shown}: {json.dumps(text[:TEXT_SHOWN], ensure_ascii=False)}"


def _on_event(event: Event) -> None:
    if isinstance(event, MessageIn):
        _log(event.conn, describe("IN", event.data, isinstance(event.data, bytes)))
    elif isinstance(event, MessagesOut):
        for payload in event.payloads:
            _log(event.conn, describe("OUT", payload, event.binary))


def _log(conn: ConnectionInfo, message: str) -> None:
    context = connection_context(conn, with_pid=True)
    logger.log(TRACE, "%s", message, extra={"category": "websocket", "context": context})
