"""A child's pipe ends, read and written straight from the event loop's readiness callbacks.

asyncio's pipe transports would do, but each costs a coroutine, a task, an ``fstat`` and several
loop turns to set up, and the write side watches its pipe with one more epoll registration.
A connection needs three pipes before its program's first line can reach the client, and a
short-lived program (``echo hi``) pays that on every connection: these two classes set up in
one call each and keep only what the bridge uses (the ``asyncio.Protocol`` callbacks, pausing,
a bounded write buffer).

Both must be closed through their own ``close``/``abort``, never by closing the fd: the loop's
selector has to forget an fd before it is closed, or a new fd with the same number would
inherit a stale registration.
"""

from __future__ import annotations

import asyncio
import os
import select

# What one read takes from a pipe (asyncio's pipe transports read this much too).
MAX_READ = 256 * 1024

# Asks whether a pipe has more to read, or its end, without reading it (``_more_waiting``).
_PEEK = select.poll() if hasattr(select, "poll") else None


class PipeReader:
    """The read end of a pipe, feeding ``data_received``, ``eof_received``, ``connection_lost``."""

    __slots__ = ("_closed", "_fd", "_loop", "_protocol", "_reading")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, fd: int, protocol: asyncio.Protocol
    ) -> None:
        self._loop = loop
        self._fd = fd
        self._protocol = protocol
        self._closed = False
        os.set_blocking(fd, False)
        loop.add_reader(fd, self._read_ready)
        self._reading = True

    def _read_ready(self) -> None:
        # At most two reads. When the first empties the pipe, a program that has just written
        # its last line is exiting and the end of the pipe is often already there: take it in
        # this callback rather than one loop turn later (its Close goes out from here).
        for second in (False, True):
            if second and not _more_waiting(self._fd):
                return
            try:
                data = os.read(self._fd, MAX_READ)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._close(exc)
                return
            if not data:
                self._stop_reading()
                self._protocol.eof_received()
                self._close(None)
                return
            self._protocol.data_received(data)
            if len(data) == MAX_READ or not self._reading or self._closed:
                return

    def is_reading(self) -> bool:
        return self._reading

    def is_closing(self) -> bool:
        return self._closed

    def pause_reading(self) -> None:
        if self._reading and not self._closed:
            self._stop_reading()

    def resume_reading(self) -> None:
        if not self._reading and not self._closed:
            self._loop.add_reader(self._fd, self._read_ready)
            self._reading = True

    def close(self) -> None:
        self._close(None)

    def _stop_reading(self) -> None:
        if self._reading:
            self._reading = False
            self._loop.remove_reader(self._fd)

    def _close(self, exc: Exception | None) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop_reading()
        os.close(self._fd)
        self._protocol.connection_lost(exc)


def _more_waiting(fd: int) -> bool:
    """Whether a read of ``fd`` would return at once: data, its end, or an error.

    A read that finds the pipe empty says so with an exception, and raising one costs several
    times what this ``poll`` does. That read is the usual case, after every line of a
    conversation (a program answers, then waits), so it is worth not making.
    """
    if _PEEK is None:
        return True  # the read finds out
    _PEEK.register(fd, select.POLLIN)
    try:
        return bool(_PEEK.poll(0))
    finally:
        _PEEK.unregister(fd)


class PipeWriter:
    """The write end of a pipe: writes at once while the pipe has room, buffers the rest.

    Past ``high`` buffered bytes the protocol's ``pause_writing`` is called, and its
    ``resume_writing`` once the buffer is down to a quarter of that, as asyncio's transports do.
    A reader that closed its end is noticed by the next write (EPIPE), or at once while
    buffered bytes are waiting (the loop reports the pipe's error as writable).
    """

    __slots__ = ("_buffer", "_closed", "_fd", "_high", "_loop", "_paused", "_protocol")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, fd: int, protocol: asyncio.BaseProtocol, high: int
    ) -> None:
        self._loop = loop
        self._fd = fd
        self._protocol = protocol
        self._high = high
        self._buffer = bytearray()
        self._paused = False
        self._closed = False
        os.set_blocking(fd, False)

    def write(self, data: bytes) -> None:
        if self._closed or not data:
            return
        if not self._buffer:
            try:
                written = os.write(self._fd, data)
            except (BlockingIOError, InterruptedError):
                written = 0
            except OSError as exc:
                self._close(exc)
                return
            if written == len(data):
                return
            self._loop.add_writer(self._fd, self._write_ready)
            data = data[written:]
        self._buffer += data
        if not self._paused and len(self._buffer) > self._high:
            self._paused = True
            self._protocol.pause_writing()

    def _write_ready(self) -> None:
        try:
            written = os.write(self._fd, self._buffer)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._close(exc)
            return
        del self._buffer[:written]
        if not self._buffer:
            self._loop.remove_writer(self._fd)
        if self._paused and len(self._buffer) <= self._high // 4:
            self._paused = False
            self._protocol.resume_writing()

    def flush(self) -> None:
        """Write everything buffered now, waiting for the reader as a blocking write does."""
        if self._closed or not self._buffer:
            return
        self._loop.remove_writer(self._fd)
        os.set_blocking(self._fd, True)
        try:
            while self._buffer:
                del self._buffer[: os.write(self._fd, self._buffer)]
        except OSError as exc:
            self._close(exc)
            return
        os.set_blocking(self._fd, False)
        if self._paused:
            self._paused = False
            self._protocol.resume_writing()

    def get_write_buffer_size(self) -> int:
        return len(self._buffer)

    def is_closing(self) -> bool:
        return self._closed

    def abort(self) -> None:
        """Close now, dropping whatever the reader has not taken yet."""
        self._close(None)

    def _close(self, exc: Exception | None) -> None:
        if self._closed:
            return
        self._closed = True
        if self._buffer:
            self._buffer.clear()
            self._loop.remove_writer(self._fd)
        os.close(self._fd)
        self._protocol.connection_lost(exc)


class WriteFlow(asyncio.Protocol):
    """Flow control for a ``PipeWriter``: ``drain`` waits while the writer is paused.

    A writer made with ``high=0`` pauses whenever anything is left in its buffer, so ``drain``
    then returns only once every byte is in the pipe: closing after it loses nothing.
    """

    def __init__(self) -> None:
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.close()

    def close(self) -> None:
        self._paused = False
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        self._waiter = None

    @property
    def paused(self) -> bool:
        return self._paused

    async def drain(self) -> None:
        if self._paused:
            if self._waiter is None:
                self._waiter = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._waiter)
