"""Client messages handed to the bridge the moment aiohttp's frame parser produces them.

``WebSocketResponse.receive()`` reaches a message through a queue, a future and a task
switch: at least one more turn of the event loop per message, which is a quarter of an echo's
round trip. ``DirectWebSocketResponse`` gives its parser a queue that first offers every message
to a ``deliver`` callback, which writes data straight to the program's stdin while the socket
is still being read. What the callback declines (control frames, or data while stdin is full)
is queued as usual for ``receive()``, and once anything is queued everything after it queues
too, so messages reach the program in the order they came.

This builds on aiohttp's private parser classes (``aiohttp._websocket.reader``) as they are in
aiohttp 3.14; with any other version ``DirectWebSocketResponse`` is a plain
``WebSocketResponse`` and every message goes through ``receive()``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import WSMessage, web
from aiohttp.helpers import DEFAULT_CHUNK_SIZE

Deliver = Callable[[WSMessage], bool]


def _direct_queue_class(base: type[Any]) -> type[Any]:
    class DirectQueue(base):  # type: ignore[misc]
        """aiohttp's message queue, offering each message to ``deliver`` before queueing it."""

        deliver: Deliver | None = None

        def feed_data(self, data: Any, size: int) -> None:
            deliver = self.deliver
            if deliver is not None and not self._buffer and deliver(data):
                return
            super().feed_data(data, size)

    return DirectQueue


# The parser internals and ``_post_start`` below are aiohttp 3.14's; other versions keep theirs.
try:
    if tuple(int(part) for part in aiohttp.__version__.split(".")[:2]) != (3, 14):
        raise ImportError(f"aiohttp {aiohttp.__version__}")
    from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader
except (ImportError, ValueError):
    _PARSER: tuple[type[Any], type[Any]] | None = None
else:
    _PARSER = (_direct_queue_class(WebSocketDataQueue), WebSocketReader)


def parser_classes() -> tuple[type[Any], type[Any]] | None:
    """aiohttp 3.14's message queue (wsdev's ``DirectQueue``) and frame parser; None on others."""
    return _PARSER


class DirectWebSocketResponse(web.WebSocketResponse):
    """A ``WebSocketResponse`` whose parser can hand messages to a callback (see above)."""

    def _post_start(self, request: web.BaseRequest, protocol: str | None, writer: Any) -> None:
        # aiohttp's own _post_start, with a DirectQueue as the parser's destination.
        if _PARSER is None:
            super()._post_start(request, protocol, writer)
            return
        self._ws_protocol = protocol
        parser = self.start_parser(request._protocol, writer)
        callback = None if self._heartbeat is None else self._on_data_received
        request.protocol.set_parser(parser, data_received_cb=callback)
        request.protocol.keep_alive(False)  # no HTTP keep-alive on a WebSocket

    def start_parser(self, protocol: Any, writer: Any) -> Any:
        """What aiohttp's ``_post_start`` sets up, with a DirectQueue: the frame parser (which
        is returned, for the caller to feed), its message queue and the writer.

        aiohttp 3.14 only (``parser_classes`` not None). The connection's ``protocol`` is what
        the queue pauses and resumes reading through.
        """
        assert _PARSER is not None
        queue_class, parser_class = _PARSER
        queue = queue_class(protocol, DEFAULT_CHUNK_SIZE, loop=self._loop)
        parser = parser_class(
            queue, self._max_msg_size, compress=bool(self._compress), decode_text=True
        )
        self._writer = writer
        self._reset_heartbeat()
        self._reader = queue
        self._parser = parser
        return parser

    def closed_by_server(self, code: int) -> bool:
        """Record that wsdev has sent the Close itself (see ``Bridge``), so that aiohttp sends
        none of its own; False, and nothing recorded, where that is not supported."""
        if _PARSER is None:
            return False
        self._set_closed()
        self._close_code = code
        return True

    def deliver_to(self, deliver: Deliver | None) -> bool:
        """Offer every message to ``deliver`` from now on (None: stop); False if unsupported."""
        queue = self._reader
        if _PARSER is None or not isinstance(queue, _PARSER[0]):
            return False
        queue.deliver = deliver
        return True


def handshake_acceptable(request: web.BaseRequest) -> bool:
    """Whether aiohttp will accept this upgrade: its handshake's checks, without its answer.

    ``WebSocketResponse.can_prepare`` says the same but builds the whole 101 to do so, and the
    server asks before every program it starts.
    """
    headers = request.headers
    if headers.get("Upgrade", "").lower().strip() != "websocket" or not request._message.upgrade:
        return False
    if headers.get("Sec-WebSocket-Version", "") not in ("13", "8", "7"):
        return False
    key = headers.get("Sec-WebSocket-Key", "")
    try:
        return len(base64.b64decode(key)) == 16
    except binascii.Error:
        return False
