"""One connection: a WebSocket on one side, one child process on the other (SPEC A3, A4, B1–B4).

Output flows from the child's stdout pipe straight into frames on the socket, one buffer per pipe
read; when the socket's send buffer is full the pipe is no longer read, so a fast program waits
for a slow client instead of growing wsdev's memory. Input flows from ``receive()`` into the
child's stdin, and ``receive()`` is not called again while stdin is full, so a client flooding
a program that does not read waits too (aiohttp then stops reading the socket).

A connection ends in one place, ``_end``, whichever side ends it: the client closing or
vanishing, stdout reaching EOF, the child exiting, or the server closing it (shutdown 1001,
restart 1012, a line too long 1009). When the program ends it (it has exited and its stdout is
at its end) the Close goes out sooner, from whichever callback sees the second of the two
(``_close_at_exit``), and ``_end`` does the rest once the loop has time for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence

from aiohttp import WSMessage, WSMsgType

from wsdev.config import Config
from wsdev.eventloop import until_idle
from wsdev.events import (
    ConnectionError_,
    ConnectionInfo,
    Disconnected,
    EventBus,
    ExitStatus,
    MessageIn,
    MessagesOut,
    OutputStalled,
    ProcessStarted,
    SpawnFailed,
    StderrLine,
)
from wsdev.inbound import DirectWebSocketResponse
from wsdev.pipes import PipeReader, PipeWriter, WriteFlow
from wsdev.process import Child, abandon, spawn
from wsdev.sinks import Sink
from wsdev.wire import FrameWriter, close_frame

logger = logging.getLogger(__name__)

STALL_SECONDS = 1.0
# Once the child is gone, how long stdout may stay open (held by an escaped grandchild).
EOF_GRACE_SECONDS = 2.0
# A stderr line longer than this is logged in pieces, so stderr is always being read (B5).
STDERR_PIECE = 64 * 1024
PING_FRAME = bytes((0x89, 0))
# Bytes the child's stdin may hold beyond the pipe before the client is no longer read (B4):
# room for a whole message, so a client's Close that follows a large message is still read and
# answered while the program catches up.
STDIN_BUFFER = 1024 * 1024
# How often a receive loop blocked on a full stdin checks that its client is still there.
STDIN_VANISH_CHECK = 0.25
CLOSE_GOING_AWAY = 1001
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011


class Bridge:
    """Runs one connection from the 101 response to the last log line."""

    def __init__(
        self,
        *,
        ws: DirectWebSocketResponse,
        writer: FrameWriter,
        sink: Sink,
        config: Config,
        bus: EventBus,
        conn: ConnectionInfo,
        argv: Sequence[str],
        env: Mapping[str, str],
        launched: Child | OSError | None = None,
        released: Callable[[Bridge], object] | None = None,
    ) -> None:
        """``released`` is called once the connection is closed and its program has ended:
        from then on it no longer counts as running (``--maxforks``), though its last
        bookkeeping (stderr's last lines, its pipes, ``Disconnected``) may still be to come."""
        self.ws = ws
        self._writer = writer
        self._sink = sink
        self._config = config
        self._bus = bus
        self.conn = conn
        self._argv = argv
        self._env = env
        self._child: Child | None = None
        self._stdin: PipeWriter | None = None
        self._stdin_flow = WriteFlow()
        self._stdout: PipeReader | None = None
        self._stderr: PipeReader | None = None
        self._stdout_eof = asyncio.get_running_loop().create_future()
        self._stderr_eof = asyncio.get_running_loop().create_future()
        self._ending: asyncio.Future[None] | None = None
        self._client_code: int | None = None  # set once the client has closed or vanished
        self._last_seen = time.monotonic()
        self._ping_timer: asyncio.TimerHandle | None = None
        self._resuming: asyncio.Future[None] | None = None
        self._spawn_error: OSError | None = None
        # The Close sent once the program had ended, if ``_close_at_exit`` sent it.
        self._exit_close: tuple[int, str] | None = None
        self._released = released
        # False until ``run``: a connection started early (``start``) ends only once it runs.
        self._running = False
        self._held_close: tuple[int | None, str, tuple[str, ...]] | None = None
        # The server's own ending (restart, shutdown, 1009) is under way in ``_end``: the
        # program's exit, seen in the same turn, must not send a Close of its own first.
        self._server_closing = False
        # A stdout line went over the limit: that, not the exit status, is why it closes.
        self._line_too_long = False
        self._keep(launched)

    # ------------------------------------------------------------ lifecycle

    def _start_program(self) -> None:
        """Start the child, unless the server already did (see ``launch``).

        It always has, unless ``handshake_acceptable`` refused a handshake that aiohttp took.
        """
        if self._child is None and self._spawn_error is None:
            self._keep(launch(self._argv, self._env))

    def _keep(self, launched: Child | OSError | None) -> None:
        if isinstance(launched, OSError):
            self._spawn_error = launched
        else:
            self._child = launched

    def abandon(self) -> None:
        """The handshake failed after the program was started: end it as a disconnect would."""
        child, self._child = self._child, None
        if child is not None:
            abandon(child, self._config.closems)

    def start(self) -> bool:
        """Connect the program's pipes: its output reaches the client from now on.

        False if it could not be started. ``run`` starts it if nobody has; the server starts
        it sooner for a connection whose 101 went out with the program's start (``prelaunch``).
        Until ``run``, the connection's ending waits: the task that runs it is on its way.
        """
        if self._stdout is not None:
            return True
        self._start_program()
        child = self._child
        if child is None:
            return False
        loop = asyncio.get_running_loop()
        self.conn.pid = child.pid
        self._bus.publish(ProcessStarted(self.conn, child.pid))
        self._sink.started(self.conn, self._env, self._config.binary)
        out_reader: asyncio.Protocol = (
            _BinaryReader(self) if self._config.binary else _LineReader(self)
        )
        self._stdout = PipeReader(loop, child.stdout, out_reader)
        self._stderr = PipeReader(loop, child.stderr, _StderrReader(self))
        self._stdin = PipeWriter(loop, child.stdin, self._stdin_flow, high=STDIN_BUFFER)
        self._env = {}  # spawned: no need to keep a copy alive per connection
        child.on_exit = self._on_exit
        return True

    async def run(self) -> None:
        if not self.start():
            assert self._spawn_error is not None
            await self._spawn_failed(self._spawn_error)
            return
        child = self._child
        assert child is not None
        self._running = True
        held, self._held_close = self._held_close, None
        if held is not None and held[0] is not None:
            self.close(*held)  # the server's own ending came first (restart, shutdown, 1009)
        if not child.running:  # it exited before anyone was listening
            self._on_exit()
        elif held is not None:
            self.close(*held)
        self.ws.deliver_to(self._deliver)
        if self._config.pingms > 0:
            self._schedule_ping()
        try:
            await self._receive_loop()
        finally:
            if self._client_code is None and not self.ws.closed:
                # Cancelled (server going away) before anyone decided how to end: say so.
                self.close(CLOSE_GOING_AWAY, "server shutting down")
            elif self._ending is None:
                self.close()
            assert self._ending is not None
            await asyncio.shield(self._ending)

    def close(self, code: int | None = None, reason: str = "", files: Sequence[str] = ()) -> None:
        """End the connection; ``code`` None means "as the child's exit says" (SPEC B2)."""
        if not self._running:
            if self._held_close is None:
                self._held_close = (code, reason, tuple(files))
            return
        if self._ending is None:
            self._server_closing = code is not None
            self._ending = asyncio.ensure_future(self._end(code, reason, files))

    @property
    def ending(self) -> asyncio.Future[None] | None:
        return self._ending

    async def _end(self, code: int | None, reason: str, files: Sequence[str]) -> None:
        child = self._child
        assert child is not None
        if self._exit_close is not None:
            # The client has its Close (``_close_at_exit``): the rest can wait for a moment
            # when it keeps no other client waiting.
            await until_idle()
        self.ws.deliver_to(None)
        if self._ping_timer is not None:
            self._ping_timer.cancel()
        if self._stdin is not None and not self._stdin.is_closing():
            # abort, not close: close would wait to flush what a stuck child never reads.
            self._stdin.abort()
        self._stdin_flow.close()
        closing: asyncio.Future[bool] | None = None
        if code is not None and self._client_code is None:
            # The server ends this connection: tell the client at once, end the child after.
            if files:
                self._sink.restarting(files)
            self._writer.closed = True
            closing = asyncio.ensure_future(self.ws.close(code=code, message=_reason(reason)))
        status = await child.end(self._config.closems)
        # An escaped grandchild may hold stdout and stderr open: one grace period for both.
        deadline = asyncio.get_running_loop().time() + EOF_GRACE_SECONDS
        child_ended_it = self._client_code is None and closing is None
        if child_ended_it and self._exit_close is None and not self._stdout_eof.done():
            # Everything the program wrote goes out before the Close (SPEC B1). The end of
            # stdout, if it comes in time, sends the Close itself (``_close_at_exit``).
            # (The check for done: wait_for costs loop turns even then.)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._stdout_eof), EOF_GRACE_SECONDS)
        if self._exit_close is not None:
            code, reason = self._exit_close
            self._writer.finish()
        elif self._client_code is None and closing is None:
            self._sink.exited(status)
            code, reason = self._program_close(status)
            self._writer.closed = True
            with contextlib.suppress(Exception):
                await self.ws.close(code=code, message=_reason(reason))
        elif closing is not None:
            with contextlib.suppress(Exception):
                await closing
        else:
            code, reason = self._client_code, "client closed"
        duration = time.monotonic() - self.conn.started
        self._release()
        # What is left is bookkeeping: a client that connects again at once is served first.
        await until_idle()
        if not self._stderr_eof.done():
            remaining = max(0.0, deadline - asyncio.get_running_loop().time())
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._stderr_eof), remaining)
        # Pipes an escaped grandchild still holds are not ours to keep open.
        for pipe in (self._stdout, self._stderr):
            if pipe is not None:
                pipe.close()
        self._bus.publish(Disconnected(self.conn, code, reason, status, duration))

    def _on_exit(self) -> None:
        self._close_at_exit()
        self.close()

    def _close_at_exit(self) -> None:
        """The program has exited and stdout is at its end: send the Close now (SPEC B1, B2).

        Called from the reaper and from stdout's EOF, whichever comes second, this is
        ``_end``'s usual ending without its loop turns (a task, the exit waiter, aiohttp's
        ``close`` and the wake-up of the receive loop it needs): on a short connection those
        turns were most of the time from the program's exit to the client seeing the close.
        It does nothing when someone has already closed (client, server), when a process of
        the program's group lives on (it gets the signals first, in ``_end``), or on an
        aiohttp whose closing state wsdev cannot set.
        """
        child = self._child
        if (
            child is None
            or not self._running
            or child.running
            or not self._stdout_eof.done()
            or self._writer.closed
            or self._server_closing
            or self._client_code is not None
            or child.group_alive()
        ):
            return
        status = child.exited.result()
        code, reason = self._program_close(status)
        if not self.ws.closed_by_server(code):
            return
        self._exit_close = (code, reason)
        self._sink.exited(status)
        self._writer.close_with(close_frame(code, _reason(reason)))
        self._release()

    def _program_close(self, status: ExitStatus) -> tuple[int, str]:
        """The Close for a connection its program ended: as the exit says, unless a line was
        too long. The exit may be seen first, but the line was written before it (SPEC B4)."""
        if self._line_too_long:
            return CLOSE_TOO_BIG, "line too long"
        return _exit_close(status)

    def _release(self) -> None:
        released, self._released = self._released, None
        if released is not None:
            released(self)

    async def _spawn_failed(self, exc: OSError) -> None:
        message = f"cannot run {self._argv[0]}: {exc.strerror or exc}"
        self._bus.publish(SpawnFailed(self.conn, message))
        self._sink.error(message, 500)
        self._writer.closed = True
        with contextlib.suppress(Exception):
            await self.ws.close(code=CLOSE_INTERNAL, message=b"cannot start program")
        self._bus.publish(
            Disconnected(
                self.conn, CLOSE_INTERNAL, message, None, time.monotonic() - self.conn.started
            )
        )

    # ------------------------------------------------------------ client -> child

    async def _receive_loop(self) -> None:
        ws = self.ws
        while True:
            msg = await ws.receive()
            self._last_seen = time.monotonic()
            kind = msg.type
            if kind is WSMsgType.TEXT or kind is WSMsgType.BINARY:
                self._to_stdin(msg)
                if self._stdin_flow.paused:
                    await self._drain_stdin()
            elif kind is WSMsgType.PING:
                with contextlib.suppress(Exception):
                    await ws.pong(msg.data)
            elif kind is WSMsgType.PONG:
                pass
            elif kind is WSMsgType.CLOSE:
                # Answer a client's Close at once with its own code (SPEC A4).
                self._client_code = msg.data if isinstance(msg.data, int) and msg.data else 1000
                self._writer.closed = True
                with contextlib.suppress(Exception):
                    await ws.close(code=self._client_code)
                return
            else:
                # CLOSING: we are closing it; CLOSED/ERROR: the client vanished or broke the
                # protocol (aiohttp has already answered, e.g. 1009 for an oversized message).
                if self._ending is None:
                    self._client_code = ws.close_code or 1006
                    self._writer.closed = True
                return

    def _deliver(self, msg: WSMessage) -> bool:
        """A message straight from the parser (see ``inbound``): to stdin now, if it may go.

        Declined, it waits in the queue for the receive loop: control frames, which the loop
        answers, and data while stdin is full, since the loop's wait for stdin to drain is what
        stops the client from being read further (SPEC B4).
        """
        kind = msg.type
        if kind is not WSMsgType.TEXT and kind is not WSMsgType.BINARY:
            return False
        if self._stdin_flow.paused:
            return False
        self._last_seen = time.monotonic()
        self._to_stdin(msg)
        return True

    def _to_stdin(self, msg: WSMessage) -> None:
        """A text message is one line of stdin; a binary one is written as it is (SPEC A3).

        The program has it before the event goes out: an echo's round trip waits on this
        write, not on the dashboard's or the log's bookkeeping.
        """
        stdin = self._stdin
        if stdin is not None and not stdin.is_closing():
            stdin.write(msg.data.encode() + b"\n" if msg.type is WSMsgType.TEXT else msg.data)
        if self._bus.wants_messages:
            self._bus.publish_message(MessageIn(self.conn, msg.data))

    async def _drain_stdin(self) -> None:
        """Wait until the program has read enough of its stdin, or the client is gone.

        While stdin is full nothing reads the socket (that is what bounds memory), so nothing
        would notice the client vanishing: look at the connection itself now and then.
        """
        drained = asyncio.ensure_future(self._stdin_flow.drain())
        try:
            while not drained.done():
                await asyncio.wait((drained,), timeout=STDIN_VANISH_CHECK)
                if self._writer.peer_gone:
                    self._client_code = 1006
                    self._writer.closed = True
                    self.close()
                    return
        finally:
            drained.cancel()

    # ------------------------------------------------------------ child -> client

    def on_lines(self, lines: list[bytes], nbytes: int) -> None:
        self._sink.lines(lines)
        if self._bus.wants_messages:
            self._bus.publish_message(MessagesOut(self.conn, lines, nbytes, False))
        self._apply_backpressure()

    def on_chunk(self, data: bytes) -> None:
        self._sink.chunk(data)
        if self._bus.wants_messages:
            self._bus.publish_message(MessagesOut(self.conn, (data,), len(data), True))
        self._apply_backpressure()

    def on_stdout_eof(self) -> None:
        if not self._stdout_eof.done():
            self._stdout_eof.set_result(None)
            # The exit usually comes with the end of stdout: if it has, the Close goes now,
            # before the work ``close`` starts (which would otherwise run first).
            child = self._child
            if child is not None and child.running:
                child.poll()  # reaping it calls _on_exit, which sends the Close
            self._close_at_exit()
        self.close()

    def on_stderr(self, line: str) -> None:
        self._sink.stderr(line)
        self._bus.publish(StderrLine(self.conn, line))

    def on_stderr_eof(self) -> None:
        if not self._stderr_eof.done():
            self._stderr_eof.set_result(None)

    def on_stalled(self, pending: int) -> None:
        self._sink.stalled(pending)
        self._bus.publish(OutputStalled(self.conn, pending))

    def on_line_too_long(self) -> None:
        limit = self._config.max_line_bytes
        message = f"stdout line longer than {limit} bytes; closing with 1009"
        self._bus.publish(ConnectionError_(self.conn, message))
        self._line_too_long = True
        self.close(CLOSE_TOO_BIG, "line too long")

    def on_invalid_utf8(self) -> None:
        self._bus.publish(
            ConnectionError_(
                self.conn, "stdout is not valid UTF-8; invalid bytes sent as U+FFFD", "websocket"
            )
        )

    def _apply_backpressure(self) -> None:
        stdout = self._stdout
        if stdout is not None and self._writer.must_pause and stdout.is_reading():
            stdout.pause_reading()
            self._resuming = asyncio.ensure_future(self._resume_after_drain(stdout))

    async def _resume_after_drain(self, stdout: PipeReader) -> None:
        with contextlib.suppress(Exception):
            await self._writer.drain()
        if not stdout.is_closing():
            stdout.resume_reading()

    # ------------------------------------------------------------ keep-alive (--pingms)

    def _schedule_ping(self) -> None:
        interval = self._config.pingms / 1000
        self._ping_timer = asyncio.get_running_loop().call_later(interval, self._ping)

    def _ping(self) -> None:
        if time.monotonic() - self._last_seen > 2 * self._config.pingms / 1000:
            # Silent for two intervals: the client is gone without saying so.
            self._client_code = 1006
            self._writer.abort()
            self._stdin_flow.close()  # a receive loop waiting on a full stdin must stop too
            self.close()
            return
        self._writer.write(PING_FRAME)
        self._schedule_ping()


def launch(argv: Sequence[str], env: Mapping[str, str]) -> Child | OSError:
    """Start a connection's program, or say why it could not start.

    The server launches it as soon as the environment is known, before the rest of the
    connection is set up and before the 101 goes out: the program's own start-up (exec, a shell
    or an interpreter loading) then overlaps all of that, and its first output is on its way by
    the time the socket is ready. A failure is reported once the client can hear about it.
    """
    try:
        return spawn(argv, env)
    except OSError as exc:
        return exc


def _exit_close(status: ExitStatus) -> tuple[int, str]:
    """The Close for a program that ended the connection itself: its code and reason (B2)."""
    return (1000 if status.ok else CLOSE_INTERNAL), status.describe()


def _reason(text: str) -> bytes:
    """A close reason, cut to the 123 bytes a Close frame can carry."""
    return text.encode()[:123]


class _LineReader(asyncio.Protocol):
    """stdout in text mode: complete lines become messages, a trailing partial line waits."""

    def __init__(self, bridge: Bridge) -> None:
        self._bridge = bridge
        self._partial = bytearray()
        self._limit = bridge._config.max_line_bytes
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
        if not block.isascii():
            fixed = self._valid_utf8(block, lines)
            if fixed is not lines:
                lines, nbytes = fixed, sum(map(len, fixed))
        self._bridge.on_lines(lines, nbytes)
        self._check_partial()

    def _refuse_line(self, before: list[bytes]) -> None:
        """A line over the limit: send what came before it, then close with 1009 (SPEC B4)."""
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
            # A last line without a newline still goes out (SPEC B1).
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


class _BinaryReader(asyncio.Protocol):
    """stdout in ``--binary`` mode: each read becomes one binary message."""

    def __init__(self, bridge: Bridge) -> None:
        self._bridge = bridge

    def data_received(self, data: bytes) -> None:
        self._bridge.on_chunk(data)

    def eof_received(self) -> bool | None:
        self._bridge.on_stdout_eof()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._bridge.on_stdout_eof()


class _StderrReader(asyncio.Protocol):
    """stderr: each line is published (and logged); very long lines in pieces."""

    def __init__(self, bridge: Bridge) -> None:
        self._bridge = bridge
        self._partial = b""

    def data_received(self, data: bytes) -> None:
        data = self._partial + data
        *lines, self._partial = data.split(b"\n")
        for line in lines:
            self._emit(line)
        while len(self._partial) > STDERR_PIECE:
            self._emit(self._partial[:STDERR_PIECE])
            self._partial = self._partial[STDERR_PIECE:]

    def _emit(self, line: bytes) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        self._bridge.on_stderr(line.decode(errors="replace"))

    def eof_received(self) -> bool | None:
        if self._partial:
            self._emit(self._partial)
            self._partial = b""
        self._bridge.on_stderr_eof()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._bridge.on_stderr_eof()


__all__ = ["Bridge", "ExitStatus", "launch"]
