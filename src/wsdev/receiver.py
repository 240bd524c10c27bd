"""A session's incoming frames: plain data frames to the program, the rest to the engine.

The engine (``websockets``' sans-I/O ``ServerProtocol``) parses frames in Python, a step at a time;
on a conversation that is most of the cost of each message. A plain frame (whole, unfragmented,
masked, text or binary, within the size limit, no reserved bit, no fragmented message under way)
breaks no rule the engine checks and leaves it no state to keep, so it is read here. Everything
else (control frames, fragments, any frame that breaks a rule) goes to the engine whole, which
answers it as RFC 6455 says (behaviour B11). What the engine leaves to its user is checked here:
a text message must be UTF-8 (1007).
"""

from __future__ import annotations

import codecs
from typing import Protocol, cast

from websockets.frames import CloseCode, Frame, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol

try:  # websockets' own C unmasking, as its frame parser uses it
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - built without its C extension
    from websockets.utils import apply_mask

OP_TEXT = Opcode.TEXT
OP_BINARY = Opcode.BINARY
OP_CONT = Opcode.CONT
OP_CLOSE = Opcode.CLOSE


class Listener(Protocol):
    """Where the receiver's findings go (the session's ``Connection``)."""

    def message(self, payload: bytes, binary: bool) -> None: ...
    def control(self) -> None: ...
    def engine_spoke(self) -> None:
        """The engine has read frames: send what it has to send, notice if it has closed."""


class Receiver:
    """Splits one session's incoming bytes into frames; see the module's docstring."""

    __slots__ = (
        "_connection",
        "_engine",
        "_engine_takes_all",
        "_fragments",
        "_limit",
        "_pending",
        "_text_decoder",
    )

    def __init__(self, engine: ServerProtocol, limit: int, connection: Listener) -> None:
        self._engine = engine
        self._limit = limit
        self._connection = connection
        self._pending = b""  # the start of a frame not yet whole
        self._engine_takes_all = False  # from now on every byte goes to the engine
        self._fragments: list[bytes] | None = None  # a fragmented message under way
        self._text_decoder: codecs.IncrementalDecoder | None = None

    def feed(self, data: bytes) -> None:
        """Split what came into frames: plain data frames are taken here, the rest is the engine's.

        A plain frame is a whole, unfragmented, masked text or binary message within the size
        limit, with no reserved bit set and no fragmented message under way: every rule the
        engine would check of it holds by that definition, and the engine keeps no state for
        it. Taking it here saves the engine's frame parsing on every message of a
        conversation. Anything else (control frames, fragments, a frame that breaks a rule)
        goes to the engine whole, or as it comes once it is larger than any message may be.
        """
        if self._pending:
            data = self._pending + data
            self._pending = b""
        size = len(data)
        limit = self._limit
        position = 0
        while position < size and self._engine_takes_all is False:
            if size - position < 2:
                break
            first, second = data[position], data[position + 1]
            length = second & 0x7F
            start = position + 2
            if length == 126:
                start += 2
                if size < start:
                    break
                length = int.from_bytes(data[start - 2 : start], "big")
            elif length == 127:
                start += 8
                if size < start:
                    break
                length = int.from_bytes(data[start - 8 : start], "big")
            if length > limit:
                # Too large for any message: the engine says so (1009) as soon as it can.
                self._engine_takes_all = True
                break
            masked = second & 0x80
            end = start + 4 + length if masked else start + length
            if size < end:
                break
            opcode = first & 0x0F
            if (
                first & 0xF0 == 0x80
                and masked
                and (opcode == 1 or opcode == 2)
                and self._fragments is None
                and self._open
            ):
                payload = apply_mask(data[start + 4 : end], data[start : start + 4])
                if opcode == 1:
                    self._text(payload)
                else:
                    self._connection.message(payload, True)
            else:
                self._to_engine(data[position:end])
            position = end
        if self._engine_takes_all:
            if position < size:  # a Close that ended the data leaves nothing more to give
                self._to_engine(data[position:])
        elif position < size:
            self._pending = data[position:]

    def _to_engine(self, data: bytes) -> None:
        engine = self._engine
        engine.receive_data(data)
        for event in engine.events_received():
            self._frame(event)  # type: ignore[arg-type]
        self._connection.engine_spoke()
        if engine.state is not State.OPEN:
            self._engine_takes_all = True  # it discards what comes after its Close

    def _text(self, payload: bytes) -> None:
        if payload.isascii():
            self._connection.message(payload, False)
            return
        try:
            payload.decode()
        except UnicodeDecodeError:
            self._invalid_text()
            self._connection.engine_spoke()
            self._engine_takes_all = True
            return
        self._connection.message(payload, False)

    def _frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        # Received frames carry bytes (the type also allows what frames being sent may carry).
        data = cast(bytes, frame.data)
        if opcode is OP_TEXT or opcode is OP_BINARY:
            if not frame.fin:
                self._fragments = [data]
                if opcode is OP_TEXT:
                    self._text_decoder = codecs.getincrementaldecoder("utf-8")()
                    self._check_text(data, final=False)
                return
            if opcode is OP_TEXT and not data.isascii():
                self._check_text_whole(data)
            if self._open:
                self._connection.message(data, opcode is OP_BINARY)
        elif opcode is OP_CONT:
            fragments = self._fragments
            if fragments is None:
                return  # the engine has failed the connection already
            fragments.append(data)
            if self._text_decoder is not None:
                self._check_text(data, final=frame.fin)
            if frame.fin:
                self._fragments = None
                binary = self._text_decoder is None
                self._text_decoder = None
                if self._open:
                    self._connection.message(b"".join(fragments), binary)
        elif opcode is not OP_CLOSE:  # a Close the engine has answered already
            self._connection.control()

    @property
    def _open(self) -> bool:
        return self._engine.state is State.OPEN

    def _check_text_whole(self, data: bytes) -> None:
        try:
            data.decode()
        except UnicodeDecodeError:
            self._invalid_text()

    def _check_text(self, data: bytes, *, final: bool) -> None:
        decoder = self._text_decoder
        assert decoder is not None
        try:
            decoder.decode(data, final)
        except UnicodeDecodeError:
            self._text_decoder = None
            self._fragments = None
            self._invalid_text()

    def _invalid_text(self) -> None:
        engine = self._engine
        if engine.state is State.OPEN:
            # RFC 6455 §8.1: a text message that is not UTF-8 fails the connection with 1007.
            engine.fail(CloseCode.INVALID_DATA, "invalid UTF-8 in a text message")
