"""The protocols that read a program's stdout and stderr pipes and write its stdin.

stdout in text mode becomes lines (a trailing partial line waits, a line over the limit ends the
connection with 1009, invalid UTF-8 becomes U+FFFD: behaviour B1, B3, B4); in ``--binary`` mode
each read is one chunk. stderr becomes lines, very long ones in pieces so stderr is always read
(B5). What they find goes to an ``OutputHandler`` (the connection's ``Bridge``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

STALL_SECONDS = 1.0
# A stderr line longer than this is logged in pieces, so stderr is always being read (B5).
STDERR_PIECE = 64 * 1024


class OutputHandler(Protocol):
    """What the pipe readers report to."""

    def on_lines(self, lines: list[bytes], nbytes: int, block: bytes | None = None) -> None:
        """``block``, when given, is ``lines`` as read: each followed by a newline."""

    def on_chunk(self, data: bytes) -> None: ...
    def on_stdout_eof(self) -> None: ...
    def on_stderr(self, lines: list[str]) -> None:
        """The complete stderr lines of one read (very long ones in pieces)."""

    def on_stderr_eof(self) -> None: ...
    def on_stalled(self, pending: int) -> None: ...
    def on_line_too_long(self) -> None: ...
    def on_invalid_utf8(self) -> None: ...


class StdinFlow(asyncio.Protocol):
    """Flow control for the child's stdin pipe: while it is full, the client is not read (B4).

    ``pause`` and ``resume`` stop and restart reading the client's socket, so a client that
    floods a program that does not read waits in its own send buffer, not in wsdev's memory.
    """

    __slots__ = ("_pause", "_resume", "paused")

    def __init__(self, pause: Callable[[], object], resume: Callable[[], object]) -> None:
        self._pause = pause
        self._resume = resume
        self.paused = False

    def pause_writing(self) -> None:
        if not self.paused:
            self.paused = True
            self._pause()

    def resume_writing(self) -> None:
        if self.paused:
            self.paused = False
            self._resume()

    def connection_lost(self, exc: Exception | None) -> None:
        self.resume_writing()  # a closed stdin holds nothing back any more


class LineReader(asyncio.Protocol):
    """stdout in text mode: complete lines become messages, a trailing partial line waits."""

    def __init__(self, bridge: OutputHandler, limit: int) -> None:
        self._bridge = bridge
        self._partial = bytearray()
        self._limit = limit
        self._stall: asyncio.TimerHandle | None = None
        self._warned_utf8 = False
        self._discarding = False

    def data_received(self, data: bytes) -> None:
        if self._discarding:
            return
        last_newline = data.rfind(b"\n")
        if last_newline == -1:
            self._partial += data
            self._check_partial()
            return
        if self._partial:
            self._partial += data[: last_newline + 1]
            block = bytes(self._partial)
            self._partial = bytearray(data[last_newline + 1 :])
        else:
            block = data if last_newline == len(data) - 1 else data[: last_newline + 1]
            self._partial = bytearray(data[last_newline + 1 :])
        lines = block.split(b"\n")
        lines.pop()  # what followed the last newline is in _partial
        nbytes = len(block) - len(lines)  # the payloads, without their newlines
        if b"\r" in block:
            lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
            nbytes = sum(map(len, lines))
        if len(block) > self._limit:
            too_long = next((i for i, line in enumerate(lines) if len(line) > self._limit), None)
            if too_long is not None:
                self._refuse_line(lines[:too_long])
                return
        # The block as read goes along while it is exactly the lines (a recorder formats it
        # whole); a carriage return or a U+FFFD repair makes the lines differ from it.
        exact: bytes | None = block if b"\r" not in block else None
        if not block.isascii():
            fixed = self._valid_utf8(block, lines)
            if fixed is not lines:
                lines, nbytes, exact = fixed, sum(map(len, fixed)), None
        self._bridge.on_lines(lines, nbytes, exact)
        self._check_partial()

    def _refuse_line(self, before: list[bytes]) -> None:
        """A line over the limit: send what came before it, then close with 1009 (behaviour B4)."""
        if before:
            self._bridge.on_lines(
                self._valid_utf8(b"\n".join(before), before), sum(map(len, before))
            )
        self._discarding = True
        self._partial = bytearray()
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None
        self._bridge.on_line_too_long()

    def _valid_utf8(self, block: bytes, lines: list[bytes]) -> list[bytes]:
        try:
            block.decode()
        except UnicodeDecodeError:
            if not self._warned_utf8:
                self._warned_utf8 = True
                self._bridge.on_invalid_utf8()
            return [line.decode(errors="replace").encode() for line in lines]
        return lines

    def _check_partial(self) -> None:
        if len(self._partial) > self._limit:
            self._refuse_line([])
            return
        if self._partial and self._stall is None:
            self._stall = asyncio.get_running_loop().call_later(STALL_SECONDS, self._stalled)
        elif not self._partial and self._stall is not None:
            self._stall.cancel()
            self._stall = None

    def _stalled(self) -> None:
        self._stall = None
        if self._partial:
            self._bridge.on_stalled(len(self._partial))

    def eof_received(self) -> bool | None:
        if self._stall is not None:
            self._stall.cancel()
        if self._partial and not self._discarding:
            # A last line without a newline still goes out (behaviour B1).
            last = bytes(self._partial)
            self._partial = bytearray()
            if last.endswith(b"\r"):
                last = last[:-1]
            self._bridge.on_lines(self._valid_utf8(last, [last]), len(last))
        self._bridge.on_stdout_eof()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._stall is not None:
            self._stall.cancel()
        self._bridge.on_stdout_eof()


class BinaryReader(asyncio.Protocol):
    """stdout in ``--binary`` mode: each read becomes one binary message."""

    def __init__(self, bridge: OutputHandler) -> None:
        self._bridge = bridge

    def data_received(self, data: bytes) -> None:
        self._bridge.on_chunk(data)

    def eof_received(self) -> bool | None:
        self._bridge.on_stdout_eof()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._bridge.on_stdout_eof()


class StderrReader(asyncio.Protocol):
    """stderr: each line is published (and logged); very long lines in pieces.

    The lines of one read go to the handler together, so a program flooding stderr costs one
    write to the console per read, as stdout does (behaviour C6).
    """

    def __init__(self, bridge: OutputHandler) -> None:
        self._bridge = bridge
        self._partial = b""

    def data_received(self, data: bytes) -> None:
        data = self._partial + data
        *lines, self._partial = data.split(b"\n")
        while len(self._partial) > STDERR_PIECE:
            lines.append(self._partial[:STDERR_PIECE])
            self._partial = self._partial[STDERR_PIECE:]
        if lines:
            self._emit(lines)

    def _emit(self, lines: list[bytes]) -> None:
        self._bridge.on_stderr(
            [line.removesuffix(b"\r").decode(errors="replace") for line in lines]
        )

    def eof_received(self) -> bool | None:
        if self._partial:
            self._emit([self._partial])
            self._partial = b""
        self._bridge.on_stderr_eof()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._bridge.on_stderr_eof()
