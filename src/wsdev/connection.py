"""One accepted connection: its request head, then either a WebSocket of wsdev's or aiohttp's HTTP.

Every connection starts here (``Connection`` is the listening sockets' protocol). Its first
request head is read whole; a WebSocket upgrade to a path that runs a program becomes a session
(``sessions``), driven from here by the sans-I/O engine of the ``websockets`` library: bytes in
through ``receive_data``, frames out through ``events_received``, whatever it must send through
``data_to_send``. Anything else is handed to aiohttp's HTTP server, which gets the transport and
the bytes read so far, as uvicorn hands a connection from HTTP to WebSocket (behaviour A5).

This is the shape that is fast on public APIs alone: no task per connection or per message, the
program's output written straight to the transport, and flow control through the transport's
``pause_reading`` / ``pause_writing`` (behaviour B4). A client's data frames go to the program's
stdin in the callback that reads them (``receiver``); only a program's output is framed by wsdev
itself (``wire``), since a server's data frames are stateless, unmasked and uncompressed, and many
lines go out in one write. Control frames (pong, Close) come from the engine, which enforces
RFC 6455 (behaviour B11).
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from websockets.frames import Close, CloseCode, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.server import ServerProtocol

from wsdev.handshake import Handshake, read_request
from wsdev.receiver import Receiver
from wsdev.stream import SocketStream
from wsdev.wire import frame_header

if TYPE_CHECKING:
    from wsdev.bridge import Bridge

logger = logging.getLogger(__name__)

# The longest request head read here; a longer one goes to aiohttp, which refuses it (400).
HEAD_LIMIT = 64 * 1024
# What the start of a request head looks like (a method and its space, or part of one): a head
# that starts so is read whole here, under the handshake timeout; anything else (a TLS hello sent
# to a plain port, noise) goes to aiohttp at once, which refuses it.
HEAD_START = re.compile(rb"[A-Z]{1,20}( |$)")
CRLF = (b"\r", b"\n")
# The answer to a request head still incomplete when the handshake timeout expires (B15).
HEAD_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 30\r\nConnection: close\r\n\r\nrequest head not sent in time\n"
)
# How long a client has to answer wsdev's Close before its connection is dropped.
CLOSE_TIMEOUT = 2.0
# The engine's own log says "connection open" and "closed" at INFO for every connection: only
# its warnings are worth a line (and the records cost time on every connection).
ENGINE_LOG = logging.getLogger("wsdev.engine")
ENGINE_LOG.setLevel(logging.WARNING)

OP_CLOSE = Opcode.CLOSE


class Sessions(Protocol):
    """What a connection needs of the server (``sessions.SessionManager``)."""

    max_message_size: int
    handshake_timeout: float  # seconds; 0 for no limit (behaviour B15)

    def wants(self, target: str) -> bool:
        """Whether a WebSocket upgrade of this target goes to a program's session."""

    def open(self, connection: Connection, handshake: Handshake) -> None:
        """Answer the handshake: refuse it, or start the program and ``attach`` its bridge."""

    def http_protocol(self) -> asyncio.Protocol:
        """A new aiohttp protocol to hand a plain HTTP connection to."""

    def serve_http(self, sock: socket.socket, protocol: asyncio.Protocol) -> None:
        """Serve ``sock`` with ``protocol`` on a transport of asyncio's own."""


class Connection(asyncio.Protocol):
    """One client connection; see the module's docstring."""

    __slots__ = (
        "_bridge",
        "_close_timer",
        "_early",
        "_ended_early",
        "_engine",
        "_head",
        "_head_timer",
        "_receiver",
        "_reported",
        "_sessions",
        "_upgrading",
        "_write_eof_sent",
        "transport",
    )

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions
        self.transport: asyncio.Transport | None = None
        self._head = bytearray()
        self._head_timer: asyncio.TimerHandle | None = None
        self._engine: ServerProtocol | None = None
        self._upgrading = False  # the head is a handshake, answered or about to be
        self._receiver: Receiver | None = None
        self._early = b""
        self._bridge: Bridge | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self._write_eof_sent = False
        self._reported = False  # the bridge has heard how the client side ended
        self._ended_early: int | None = None  # how, if that was before there was a bridge

    # ------------------------------------------------------------ asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        limit = self._sessions.handshake_timeout
        if limit > 0:
            # Behaviour B15: a client that never finishes its request head (slow loris) does
            # not hold a socket for ever.
            loop = asyncio.get_running_loop()
            self._head_timer = loop.call_later(limit, self._head_overdue)

    def data_received(self, data: bytes) -> None:
        receiver = self._receiver
        if receiver is not None:
            receiver.feed(data)
            return
        if self._upgrading:
            self._early += data  # frames sent before the program has started
            return
        head = self._head
        searched = max(0, len(head) - 3)
        head += data
        if head[:1] in CRLF:
            # Blank lines before a request line are to be ignored (RFC 9112 §2.2); they are
            # dropped here, so that they too stay under the handshake timeout.
            del head[: len(head) - len(head.lstrip(b"\r\n"))]
            searched = 0
            if not head:
                return
        if not head.startswith(b"GET "[: len(head)]) and not HEAD_START.match(head, 0, 21):
            self._to_http()  # not a request head at all: aiohttp refuses it at once
            return
        end = head.find(b"\r\n\r\n", searched)
        if end == -1:
            if len(head) > HEAD_LIMIT or head.find(b"\n\n", searched) != -1:
                self._to_http()  # too long, or lines that end in a bare LF: aiohttp's to judge
            return
        if not head.startswith(b"GET ") or end > HEAD_LIMIT:
            # Only a GET can be an upgrade: the rest is aiohttp's; so is a head too long,
            # whether it came in one piece or many (aiohttp refuses it with 400).
            self._to_http()
            return
        handshake = read_request(bytes(head[: end + 4]))
        if handshake is None or not self._sessions.wants(handshake.target):
            self._to_http()
            return
        self._stop_head_timer()
        self._upgrading = True
        self._early = bytes(head[end + 4 :])  # frames that came with the handshake
        self._head = bytearray()
        self._sessions.open(self, handshake)

    def engine(self) -> ServerProtocol:
        """The WebSocket engine, from where the frames start; made when first needed.

        A plain handshake needs it only once its program has started, so it is made then,
        while the program starts, not before (the client's first message waits for that).
        """
        engine = self._engine
        if engine is None:
            limit = self._sessions.max_message_size
            engine = self._engine = ServerProtocol(
                state=State.OPEN, max_size=limit, logger=ENGINE_LOG
            )
        return engine

    def eof_received(self) -> bool | None:
        if not self._upgrading:
            return None  # a request never finished (or was refused): nothing to answer
        if self._bridge is None:
            # Answered while its program starts (behaviour B16): what the client sent first
            # goes to the program with the news of its end, in ``attach``.
            self._report_client_end(1006)
            return None
        engine = self.engine()
        engine.receive_eof()
        self._flush(engine)
        self._report_client_end(1006)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        self._report_client_end(1006)
        bridge = self._bridge
        if bridge is not None:
            bridge.output_paused(False)

    def pause_writing(self) -> None:
        if self._bridge is not None:
            self._bridge.output_paused(True)

    def resume_writing(self) -> None:
        if self._bridge is not None:
            self._bridge.output_paused(False)

    # ------------------------------------------------------------ the handshake

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_overdue(self) -> None:
        """The handshake timeout (B15): a partial head gets 408, a silent client just a close."""
        self._head_timer = None
        transport = self.transport
        if transport is None or transport.is_closing() or self._upgrading:
            return
        limit = self._sessions.handshake_timeout
        logger.debug("request head not complete within %ss: connection closed", limit)
        if self._head:
            transport.write(HEAD_TIMEOUT_RESPONSE)
        self._head = bytearray()
        transport.close()

    def respond(self, response: Response) -> None:
        """Send a handshake response; anything but a 101 ends the connection after it."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(response.serialize())
        if response.status_code == 101:
            self.engine()  # from here on, frames
        else:
            self._upgrading = False
            self._engine = None
            transport.close()

    def attach(self, bridge: Bridge) -> None:
        """From now on this connection's messages go to ``bridge`` (those that came early too)."""
        engine = self.engine()
        self._bridge = bridge
        self._receiver = Receiver(engine, self._sessions.max_message_size, self)
        early, self._early = self._early, b""
        if early:
            self._receiver.feed(early)
        if self._ended_early is not None:
            # The client had its 101 and left while its program started (behaviour B16).
            bridge.client_closed(self._ended_early)

    # ------------------------------------------------------------ client -> program

    # Called by the receiver:

    def message(self, payload: bytes, binary: bool) -> None:
        bridge = self._bridge
        if bridge is not None:
            bridge.on_message(payload, binary)

    def control(self) -> None:
        if self._bridge is not None:
            self._bridge.seen()  # a ping or a pong: the client is there

    def engine_spoke(self) -> None:
        engine = self._engine
        if engine is not None:
            self._after_frames(engine)

    def _after_frames(self, engine: ServerProtocol) -> None:
        self._flush(engine)
        if engine.state is not State.OPEN and not self._reported:
            received = engine.close_rcvd
            if received is not None:
                code = received.code if received.code != CloseCode.NO_STATUS_RCVD else 1000
            elif engine.close_sent is not None and self._bridge is not None:
                # The engine failed the connection (1002, 1007, 1009) unless wsdev closed it.
                if not self._bridge.closing:
                    code = engine.close_sent.code
                else:
                    return
            else:
                code = 1006
            self._report_client_end(code)

    def _report_client_end(self, code: int) -> None:
        if self._reported:
            return
        self._reported = True
        bridge = self._bridge
        if bridge is not None:
            bridge.client_closed(code)
        else:
            self._ended_early = code  # told to the bridge when it comes (``attach``)

    # ------------------------------------------------------------ program -> client

    def _flush(self, engine: ServerProtocol) -> None:
        transport = self.transport
        if transport is None:
            return
        for data in engine.data_to_send():
            if data:
                if data[0] == 0x88 and engine.close_rcvd_then_sent:
                    data = _answer_to(engine)
                if not transport.is_closing():
                    transport.write(data)
            else:
                # The engine is done with the connection: a server closes its side first.
                transport.close()

    def write(self, frames: bytes) -> None:
        """Send data frames wsdev framed itself (``wire``), while the connection is open."""
        transport = self.transport
        engine = self._engine
        if transport is None or engine is None or engine.state is not State.OPEN:
            return
        if not transport.is_closing():
            transport.write(frames)

    def close(self, code: int, reason: str) -> None:
        """Send wsdev's Close and end the stream at once (the client may still answer).

        The end of the stream (a half-close) goes with the Close, so a client that waits for
        it is not kept waiting for the program's last bookkeeping; a TLS connection cannot be
        half-closed and waits for the client's answer. Either way the socket is closed once the
        client answers, or after ``CLOSE_TIMEOUT``.
        """
        engine = self._engine
        transport = self.transport
        if engine is None or transport is None or engine.state is not State.OPEN:
            return
        engine.send_close(code, _cut_reason(reason))
        self._flush(engine)
        if transport.is_closing():
            return
        if transport.can_write_eof() and not self._write_eof_sent:
            self._write_eof_sent = True
            transport.write_eof()
        loop = asyncio.get_running_loop()
        self._close_timer = loop.call_later(CLOSE_TIMEOUT, transport.abort)

    def ping(self) -> None:
        engine = self._engine
        if engine is not None and engine.state is State.OPEN:
            engine.send_ping(b"")
            self._flush(engine)

    def abort(self) -> None:
        """Drop the connection without a Close (a client that stopped answering pings)."""
        if self.transport is not None:
            self.transport.abort()

    def pause_reading(self) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.pause_reading()

    def resume_reading(self) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.resume_reading()

    @property
    def gone(self) -> bool:
        transport = self.transport
        return transport is None or transport.is_closing()

    # ------------------------------------------------------------ plain HTTP

    def _to_http(self) -> None:
        """Hand the connection, and what it has sent so far, to aiohttp's HTTP server."""
        self._stop_head_timer()
        transport = self.transport
        assert transport is not None
        protocol = self._sessions.http_protocol()
        head, self._head = bytes(self._head), bytearray()
        if isinstance(transport, SocketStream):
            # aiohttp gets a transport of asyncio's own (it may send files with sendfile).
            self._sessions.serve_http(transport.detach(), Replay(protocol, head))
            return
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        protocol.data_received(head)


class Replay(asyncio.Protocol):
    """Gives a new transport to ``protocol`` with the bytes read before it existed."""

    def __init__(self, protocol: asyncio.Protocol, head: bytes) -> None:
        self._protocol = protocol
        self._head = head

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.set_protocol(self._protocol)
        self._protocol.connection_made(transport)
        self._protocol.data_received(self._head)


def _answer_to(engine: ServerProtocol) -> bytes:
    """The Close that answers the client's: its own code, or 1000 when it gave none (A4).

    The engine echoes an empty Close as it came, and answers a Close that arrives between the
    fragments of a message with 1002; RFC 6455 allows control frames there, so the client's
    Close is answered as anywhere else.
    """
    received = engine.close_rcvd
    assert received is not None
    code = 1000 if received.code == CloseCode.NO_STATUS_RCVD else received.code
    payload = Close(code, received.reason).serialize()
    return frame_header(OP_CLOSE, len(payload)) + payload


def _cut_reason(reason: str) -> str:
    """A close reason that fits a Close frame: at most 123 bytes of UTF-8."""
    encoded = reason.encode()
    if len(encoded) <= 123:
        return reason
    return encoded[:123].decode(errors="ignore")


ConnectionFactory = Callable[[], Connection]
