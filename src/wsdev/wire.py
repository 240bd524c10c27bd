"""Server-to-client WebSocket frames, encoded in bulk and written many to one socket write.

aiohttp's ``send_str`` costs a coroutine and a socket write per message; a program that prints a
million lines needs better. Server frames are unmasked and, with compression off, a frame is just
a header and the payload, so the lines of one pipe read become one buffer and one ``write``.
aiohttp keeps the connection itself: it parses what the client sends and writes control frames
(pong, close), which interleave safely with ours because every write here is whole frames. The
one control frame written here is the Close for a program that has ended (``close_with``),
which needs no answer awaited and so no coroutine.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterable

from aiohttp.base_protocol import BaseProtocol

OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8

_TEXT_HEADERS = tuple(bytes((0x80 | OP_TEXT, n)) for n in range(126))
_BINARY_HEADERS = tuple(bytes((0x80 | OP_BINARY, n)) for n in range(126))


def frame_header(opcode: int, length: int) -> bytes:
    first = 0x80 | opcode
    if length < 126:
        return bytes((first, length))
    if length < 1 << 16:
        return struct.pack("!BBH", first, 126, length)
    return struct.pack("!BBQ", first, 127, length)


def text_frames(payloads: Iterable[bytes]) -> bytes:
    """One buffer holding a text frame for each (already valid UTF-8) payload."""
    headers = _TEXT_HEADERS
    parts: list[bytes] = []
    append = parts.append
    for payload in payloads:
        size = len(payload)
        append(headers[size] if size < 126 else frame_header(OP_TEXT, size))
        append(payload)
    return b"".join(parts)


def binary_frame(payload: bytes) -> bytes:
    size = len(payload)
    header = _BINARY_HEADERS[size] if size < 126 else frame_header(OP_BINARY, size)
    return header + payload


def close_frame(code: int, reason: bytes) -> bytes:
    """A Close frame: the code, then a reason of at most 123 bytes (the caller cuts it)."""
    payload = struct.pack("!H", code) + reason
    return frame_header(OP_CLOSE, len(payload)) + payload


class FrameWriter:
    """Writes whole frames to one WebSocket's transport and reports when it should pause."""

    __slots__ = ("_protocol", "_transport", "closed")

    def __init__(self, transport: asyncio.Transport | None, protocol: BaseProtocol) -> None:
        self._transport = transport
        self._protocol = protocol
        self.closed = False

    def write(self, frames: bytes) -> None:
        transport = self._transport
        if self.closed or transport is None or transport.is_closing():
            return
        transport.write(frames)

    def close_with(self, frame: bytes) -> None:
        """Write a last frame (a Close) and end the connection for the client at once.

        The client gets the frame and the end of the stream (a half-close) without waiting
        for anything else; the socket itself is closed by ``finish``, later. Until then it is
        not read: a client that reconnects as soon as it sees the end of the stream is served
        before its Close and its FIN are (see ``Bridge._close_at_exit``). A TLS connection
        cannot be half-closed, and is closed now.
        """
        self.closed = True
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        transport.write(frame)
        if transport.can_write_eof():
            transport.write_eof()
            transport.pause_reading()
        else:
            transport.close()

    def finish(self) -> None:
        """Close the socket (what is still buffered is sent first)."""
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        """Drop the connection without a Close frame (the client stopped answering pings)."""
        self.closed = True
        if self._transport is not None:
            self._transport.abort()

    @property
    def peer_gone(self) -> bool:
        """True once the connection itself has closed (the client vanished or was dropped)."""
        transport = self._transport
        return transport is None or transport.is_closing()

    @property
    def must_pause(self) -> bool:
        """True while the socket's send buffer is over its high-water mark."""
        return self._protocol.writing_paused and not self.closed

    async def drain(self) -> None:
        """Wait until the socket's send buffer has drained below its low-water mark."""
        if not self.must_pause:
            return
        try:
            # aiohttp's protocol already tracks pause_writing/resume_writing; wait on it rather
            # than keep a second copy of that state.
            await self._protocol._drain_helper()
        except (ConnectionError, asyncio.CancelledError):
            self.closed = True
            raise
