"""Accepting plain TCP and Unix connections, and driving their sockets from the loop's callbacks.

asyncio's own accept starts a task per connection, which creates the transport on the next
loop turn, connects the protocol on the one after and reads what the client sent on a fourth;
on a short connection those turns and the task are a good part of wsdev's own time (each turn
runs with caches the last program's start-up left cold). ``Acceptor`` accepts in the listening
socket's readiness callback and hands each connection a ``SocketStream`` at once, which reads
what the client sent with its connection (usually its whole handshake) in the same turn.

``SocketStream`` is an ``asyncio.Transport`` built on ``loop.add_reader``/``add_writer`` and
the socket itself, as ``pipes`` is for pipes: writes go straight to the socket while it has room
and are buffered beyond that, with ``pause_writing``/``resume_writing`` past the high-water mark;
``pause_reading`` stops reading the client (behaviour B4). A connection that turns out to be
plain HTTP leaves it (``detach``) for a transport of asyncio's own, which aiohttp serves. TLS
connections are accepted here too and handed to ``tls.TlsHandshakes``, which runs the handshake
on asyncio's TLS transport (logging a refused one); the same protocol then drives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

MAX_READ = 256 * 1024
# asyncio's transports pause their protocol past 64 KiB of unsent data, and resume at a quarter.
HIGH_WATER = 64 * 1024
# After running out of file descriptors, how long accepting pauses (as asyncio does).
ACCEPT_RETRY_SECONDS = 1.0
ACCEPT_BATCH = 16
_OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class SocketStream(asyncio.Transport):
    """One accepted socket, read and written from the loop's readiness callbacks."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        protocol: asyncio.Protocol,
        peer: Any,
    ) -> None:
        super().__init__({"peername": peer, "socket": sock})
        self._loop = loop
        self._sock = sock
        self._fd = sock.fileno()
        self._protocol = protocol
        self._buffer = bytearray()
        self._reading = False
        self._closing = False  # close() was called: no more reads, the buffer drains, then done
        self._closed = False  # the socket is closed (or detached)
        self._eof_pending = False
        self._eof_sent = False
        self._paused = False
        self._writing = False  # the loop watches the socket for room to write

    def start(self) -> None:
        """Connect the protocol and hand it what the client has sent so far."""
        self._protocol.connection_made(self)
        if self._closing:
            return
        self._reading = True
        # The request usually came with the connection: it is read (and a short connection's
        # program started) before the socket is watched, which can wait that long.
        self._read_ready()
        if self._reading and not self._closing and not self._closed:
            self._loop.add_reader(self._fd, self._read_ready)

    # ------------------------------------------------------------ reading

    def _read_ready(self) -> None:
        try:
            data = self._sock.recv(MAX_READ)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fatal(exc)
            return
        if data:
            self._protocol.data_received(data)
            return
        self._stop_reading()
        keep_open = self._protocol.eof_received()
        if not keep_open:
            self.close()

    def is_reading(self) -> bool:
        return self._reading

    def pause_reading(self) -> None:
        if self._reading:
            self._stop_reading()

    def resume_reading(self) -> None:
        if not self._reading and not self._closing:
            self._reading = True
            self._loop.add_reader(self._fd, self._read_ready)

    def _stop_reading(self) -> None:
        if self._reading:
            self._reading = False
            self._loop.remove_reader(self._fd)

    # ------------------------------------------------------------ writing

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or self._closed or self._eof_pending or self._eof_sent or not data:
            return
        if not self._buffer:
            try:
                sent = self._sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                self._fatal(exc)
                return
            if sent == len(data):
                return
            data = memoryview(data)[sent:]
            self._loop.add_writer(self._fd, self._write_ready)
            self._writing = True
        self._buffer += data
        if not self._paused and len(self._buffer) > HIGH_WATER:
            self._paused = True
            self._protocol.pause_writing()

    def _write_ready(self) -> None:
        try:
            sent = self._sock.send(self._buffer)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fatal(exc)
            return
        del self._buffer[:sent]
        if self._buffer:
            self._maybe_resume()
            return
        self._loop.remove_writer(self._fd)
        self._writing = False
        self._maybe_resume()
        self._after_drained()

    def _after_drained(self) -> None:
        if self._eof_pending:
            self._eof_pending = False
            self._shutdown_write()
        if self._closing:
            self._finish(None)

    def _maybe_resume(self) -> None:
        if self._paused and len(self._buffer) <= HIGH_WATER // 4:
            self._paused = False
            self._protocol.resume_writing()

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if self._closed or self._eof_sent or self._eof_pending:
            return
        if self._buffer:
            self._eof_pending = True
        else:
            self._shutdown_write()

    def _shutdown_write(self) -> None:
        self._eof_sent = True
        with contextlib.suppress(OSError):  # the peer has gone: closing will find out
            self._sock.shutdown(socket.SHUT_WR)

    def get_write_buffer_size(self) -> int:
        return len(self._buffer)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return HIGH_WATER // 4, HIGH_WATER

    # ------------------------------------------------------------ ending

    def is_closing(self) -> bool:
        return self._closing or self._closed

    def close(self) -> None:
        """Stop reading; once what is buffered has been sent, close the socket."""
        if self._closing or self._closed:
            return
        self._closing = True
        self._stop_reading()
        if not self._buffer:
            self._finish(None)

    def abort(self) -> None:
        self._closing = True
        self._finish(None)

    def _fatal(self, exc: BaseException) -> None:
        self._closing = True
        self._finish(exc)

    def _finish(self, exc: BaseException | None) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop_reading()
        self._buffer.clear()
        if self._writing:
            self._writing = False
            self._loop.remove_writer(self._fd)
        self._sock.close()
        # As asyncio's transports do: the protocol hears of it on the next turn, never from
        # inside one of its own calls.
        self._loop.call_soon(self._protocol.connection_lost, _as_exception(exc))

    def detach(self) -> socket.socket:
        """Leave the socket to another transport (nothing has been written to it yet)."""
        self._stop_reading()
        self._closed = True
        return self._sock

    # ------------------------------------------------------------ the protocol

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        assert isinstance(protocol, asyncio.Protocol)
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol


def _as_exception(exc: BaseException | None) -> Exception | None:
    return exc if isinstance(exc, Exception) or exc is None else None


class Acceptor:
    """Accepts on listening sockets and gives each connection a ``SocketStream`` at once, or,
    given ``handoff`` (TLS: ``tls.TlsHandshakes.start``), hands each accepted socket to that."""

    def __init__(
        self,
        protocol_factory: Callable[[], asyncio.Protocol],
        handoff: Callable[[socket.socket, Any], None] | None = None,
    ) -> None:
        self._factory = protocol_factory
        self._handoff = handoff
        self._sockets: list[socket.socket] = []
        self._loop = asyncio.get_running_loop()

    @property
    def sockets(self) -> list[socket.socket]:
        return list(self._sockets)

    def serve(self, listening: socket.socket) -> None:
        listening.setblocking(False)
        self._sockets.append(listening)
        self._loop.add_reader(listening.fileno(), self._accept, listening)

    def _accept(self, listening: socket.socket) -> None:
        tcp = listening.family in (socket.AF_INET, socket.AF_INET6)
        # A few at a time, then the loop sees to the connections it has: in a burst of hundreds,
        # each client's first message is answered while later ones are still being accepted.
        for _ in range(ACCEPT_BATCH):
            try:
                conn, peer = listening.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                if exc.errno not in _OUT_OF_RESOURCES:
                    logger.error("accepting a connection failed: %s", exc)
                    return
                self._pause(listening, exc)
                return
            conn.setblocking(False)
            if tcp:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._handoff is not None:
                self._handoff(conn, peer if tcp else "")
                continue
            try:
                protocol = self._factory()
            except Exception:
                logger.exception("could not serve a connection")
                conn.close()
                continue
            SocketStream(self._loop, conn, protocol, peer if tcp else "").start()

    def _pause(self, listening: socket.socket, exc: OSError) -> None:
        """Out of file descriptors: say so once, and try again in a while (no busy loop)."""
        logger.error(
            "cannot accept connections: %s; trying again in %.0f s",
            exc.strerror or exc,
            ACCEPT_RETRY_SECONDS,
        )
        self._loop.remove_reader(listening.fileno())

        def resume() -> None:
            if listening in self._sockets:
                self._loop.add_reader(listening.fileno(), self._accept, listening)

        self._loop.call_later(ACCEPT_RETRY_SECONDS, resume)

    def close(self) -> None:
        for listening in self._sockets:
            self._loop.remove_reader(listening.fileno())
            listening.close()
        self._sockets.clear()
