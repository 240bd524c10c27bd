"""A WebSocket whose handshake was answered on accept, served without aiohttp's HTTP layer.

``prelaunch`` reads a plain handshake in the turn that accepts its connection, starts the program
and answers the 101. From then on the connection is a WebSocket and nothing else: aiohttp's
HTTP protocol, its request parser, its two tasks and its request object would only be set up to
be torn down. ``UpgradedProtocol`` is the connection's protocol instead; aiohttp's own frame
parser and writer still do the WebSocket, inside the same ``WebSocketResponse`` the bridge uses
on every other connection, so both kinds behave alike to the frame (the tests hold them to it).

``attach`` gives that response what aiohttp's ``prepare`` would: the parser, its queue, the
writer, and something that answers for the transport. These are aiohttp 3.14's internals, like
those ``inbound`` replaces; with another aiohttp ``supported`` is False and every connection
goes through aiohttp (``prelaunch`` is then off).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp.base_protocol import BaseProtocol

from wsdev.inbound import DirectWebSocketResponse, parser_classes

try:
    from aiohttp._websocket.writer import WebSocketWriter
except ImportError:  # pragma: no cover - another aiohttp
    WebSocketWriter = None  # type: ignore[assignment,misc]


def supported() -> bool:
    return parser_classes() is not None and WebSocketWriter is not None


class UpgradedProtocol(BaseProtocol):
    """The connection's protocol: client frames go to aiohttp's WebSocket parser."""

    __slots__ = ("_frames", "_on_connected", "_on_never_connected")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_connected: Callable[[asyncio.Transport, UpgradedProtocol], None],
        on_never_connected: Callable[[], None],
    ) -> None:
        """``on_never_connected`` is called instead when the connection is lost before it was
        made (its transport could not be set up)."""
        super().__init__(loop)
        self._upgraded = True  # aiohttp's pause_reading then leaves HTTP parsing alone
        self._on_connected: Callable[[asyncio.Transport, UpgradedProtocol], None] | None = (
            on_connected
        )
        self._on_never_connected: Callable[[], None] | None = on_never_connected
        self._frames: Any = None  # the WebSocket parser, once ``attach`` has made it

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        assert self.transport is not None
        on_connected, self._on_connected = self._on_connected, None
        self._on_never_connected = None
        if on_connected is not None:
            on_connected(self.transport, self)

    def data_received(self, data: bytes) -> None:
        frames = self._frames
        if frames is not None and data:
            # A protocol error is set on the message queue, where ``receive`` finds it.
            frames.feed_data(data)

    def eof_received(self) -> bool | None:
        return None  # the transport closes; connection_lost tells the parser

    def connection_lost(self, exc: BaseException | None) -> None:
        never_connected, self._on_never_connected = self._on_never_connected, None
        if never_connected is not None:
            self._on_connected = None
            never_connected()
            return
        super().connection_lost(exc)
        frames, self._frames = self._frames, None
        if frames is not None:
            frames.feed_eof()  # as aiohttp's protocol does: ``receive`` then says CLOSED

    async def drain(self) -> None:
        """What ``WebSocketResponse.close`` awaits of its HTTP writer: the socket drained."""
        if self._paused and self.transport is not None:
            await self._drain_helper()


class _Rounding:
    """aiohttp's protocol setting ``WebSocketResponse`` reads for its heartbeat's timers."""

    __slots__ = ()
    _timeout_ceil_threshold = 5.0  # aiohttp's default


class _Endpoint:
    """What ``WebSocketResponse`` asks of its request once prepared: the transport (to close
    it), and the protocol's timer rounding."""

    __slots__ = ("_protocol", "transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self._protocol = _Rounding()


def attach(
    ws: DirectWebSocketResponse, transport: asyncio.Transport, protocol: UpgradedProtocol
) -> None:
    """Make ``ws`` a prepared WebSocket on ``transport``, as aiohttp's ``prepare`` would."""
    assert WebSocketWriter is not None
    ws._loop = asyncio.get_running_loop()
    ws._req = _Endpoint(transport)  # type: ignore[assignment]
    ws._payload_writer = protocol  # type: ignore[assignment]
    writer = WebSocketWriter(protocol, transport, limit=ws._writer_limit)
    protocol._frames = ws.start_parser(protocol, writer)
