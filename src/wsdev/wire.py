"""Server-to-client data frames, encoded in bulk so many go out in one socket write.

A program that prints a million lines needs better than a call into the WebSocket engine and a
write per message. A server's data frames are unmasked and, with compression off, just a header
and the payload, so the lines of one pipe read become one buffer and one ``write``. The engine
(``connection``) keeps everything else: it parses what the client sends and writes the control
frames (pong, Close), which interleave safely with these because every write is whole frames.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

OP_TEXT = 0x1
OP_BINARY = 0x2

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
