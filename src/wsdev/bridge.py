"""One session: a client's WebSocket on one side, its program on the other (A3, A4, B1–B4).

Output flows from the program's stdout pipe straight into frames on the socket, one write per
pipe read; while the socket's send buffer is full the pipe is not read, so a fast program waits
for a slow client instead of growing wsdev's memory. A client's messages go to the program's
stdin from the callback that read them; while stdin is full the client's socket is not read.

The session's state is one ``Lifecycle`` (see there): ``OPEN``, then ``DRAINING`` once half of
the program's end has come (its exit, or the end of its stdout), ``CLOSING`` once the Close is
decided, ``ENDED`` when nothing is left. The Close goes out from the callback that decides it;
ending the program (the A4 escalation) and the bookkeeping run in one task per session, started
the moment the session stops being ``OPEN``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable, Sequence
from typing import Protocol

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
    StderrLine,
)
from wsdev.lifecycle import Cause, Lifecycle, Phase
from wsdev.limits import SessionClock
from wsdev.pipes import PipeReader, PipeWriter
from wsdev.process import Child
from wsdev.sinks import Sink
from wsdev.streams import BinaryReader, LineReader, StderrReader, StdinFlow


class ClientSide(Protocol):
    """What a session needs of its client: a ``connection.Connection`` when serving, a stand-in
    when ``wsdev test`` drives a program's pipes directly (behaviour H2)."""

    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def close(self, code: int, reason: str) -> None: ...
    def abort(self) -> None: ...
    def ping(self) -> None: ...


# Once the program has exited, how long stdout and stderr may stay open (held by an escaped
# grandchild) before wsdev stops waiting for their last lines.
EOF_GRACE_SECONDS = 2.0
# Bytes the program's stdin may hold beyond the pipe before the client is no longer read (B4):
# room for a whole message, so a Close that follows a large message is still read.
STDIN_BUFFER = 1024 * 1024
CLOSE_GOING_AWAY = 1001
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011


class Bridge:
    """Runs one session from the 101 response to its last event."""

    def __init__(
        self,
        *,
        connection: ClientSide,
        sink: Sink,
        config: Config,
        bus: EventBus,
        conn: ConnectionInfo,
        child: Child,
        released: Callable[[Bridge], object],
    ) -> None:
        """``released`` is called once the program has ended and the Close is decided: from
        then on the session no longer counts as running (``--maxforks``), though its last
        bookkeeping (stderr's last lines, its pipes, ``Disconnected``) may still be to come."""
        self._connection = connection
        self._sink = sink
        self._config = config
        self._bus = bus
        self.conn = conn
        self.child = child
        self.state = Lifecycle()
        self._released: Callable[[Bridge], object] | None = released
        self._last_seen = time.monotonic()
        self._ping_timer: asyncio.TimerHandle | None = None
        self._clock: SessionClock | None = None  # --max-lifetime, --idle-timeout
        self._stdout_done = False
        loop = asyncio.get_running_loop()
        self._stdout_eof: asyncio.Future[None] = loop.create_future()
        self._stderr_eof: asyncio.Future[None] = loop.create_future()
        self._ending: asyncio.Task[None] | None = None
        self._status: ExitStatus | None = None
        self._stdin_flow = StdinFlow(connection.pause_reading, connection.resume_reading)
        reader: asyncio.Protocol = (
            BinaryReader(self) if config.binary else LineReader(self, config.max_line_bytes)
        )
        self._stdout = PipeReader(loop, child.stdout, reader)
        self._stderr = PipeReader(loop, child.stderr, StderrReader(self))
        self._stdin = PipeWriter(loop, child.stdin, self._stdin_flow, high=STDIN_BUFFER)

    def start(self, env: dict[str, str]) -> None:
        """Announce the session; its program's output flows to the client from now on."""
        child = self.child
        self.conn.pid = child.pid
        self._bus.publish(ProcessStarted(self.conn, child.pid))
        self._sink.started(self.conn, env, self._config.binary)
        child.on_exit = self._program_progress
        if not child.running:
            self._program_progress()
        if self._config.pingms > 0:
            self._schedule_ping()
        if SessionClock.wanted(self._config):
            self._clock = SessionClock(self._config, self.close)

    @property
    def closing(self) -> bool:
        """The Close is decided: nothing more goes to the client."""
        return self.state.closing

    @property
    def ending(self) -> asyncio.Task[None] | None:
        return self._ending

    # ------------------------------------------------------------ client -> program

    def on_message(self, data: bytes, binary: bool) -> None:
        """A text message is one line of stdin; a binary one is written as it is (A3).

        The program has it before the event goes out: an echo's round trip waits on this write,
        not on the dashboard's or the log's bookkeeping.
        """
        self._last_seen = time.monotonic()
        if self.state.phase is not Phase.OPEN:
            return
        if self._clock is not None:
            self._clock.touch()
        self._stdin.write(data if binary else data + b"\n")
        if self._bus.wants_messages:
            self._bus.publish_message(MessageIn(self.conn, data if binary else data.decode()))

    def seen(self) -> None:
        self._last_seen = time.monotonic()

    def client_closed(self, code: int) -> None:
        """The client closed (its Close is answered), vanished (1006) or broke the protocol."""
        if self.state.close(Cause.CLIENT, code, "client closed"):
            self._finish()

    # ------------------------------------------------------------ the server's own ending

    def close(self, code: int, reason: str, files: Sequence[str] = ()) -> None:
        """End the session from the server's side: restart (1012), shutdown (1001), 1009."""
        if not self.state.close(Cause.SERVER, code, reason):
            return
        if files:
            self._sink.restarting(files)
        self._connection.close(code, reason)
        self._finish()

    # ------------------------------------------------------------ program -> client

    def on_lines(self, lines: list[bytes], nbytes: int, block: bytes | None = None) -> None:
        self._sink.lines(lines)
        if self._bus.wants_messages:
            self._bus.publish_message(MessagesOut(self.conn, lines, nbytes, False, block))

    def on_chunk(self, data: bytes) -> None:
        self._sink.chunk(data)
        if self._bus.wants_messages:
            self._bus.publish_message(MessagesOut(self.conn, (data,), len(data), True))

    def output_paused(self, paused: bool) -> None:
        """The client's socket is full (or has room again): stop (or resume) reading stdout."""
        stdout = self._stdout
        if paused:
            stdout.pause_reading()
        elif not stdout.is_closing():
            stdout.resume_reading()

    def on_stdout_eof(self) -> None:
        if self._stdout_done:
            return
        self._stdout_done = True
        self._stdout_eof.set_result(None)
        if self.child.running:
            # The exit usually comes with the end of stdout: reaping it now sends the Close now.
            self.child.poll()
        self._program_progress()

    def on_stderr(self, lines: list[str]) -> None:
        self._sink.stderr(lines)
        for line in lines:
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
        self.close(CLOSE_TOO_BIG, "line too long")

    def on_invalid_utf8(self) -> None:
        self._bus.publish(
            ConnectionError_(
                self.conn, "stdout is not valid UTF-8; invalid bytes sent as U+FFFD", "websocket"
            )
        )

    # ------------------------------------------------------------ the program's end

    def _program_progress(self) -> None:
        """Half of the program's end has come (its exit, or the end of stdout), or both.

        Both, and nothing of its process group left: the Close goes now, from this callback,
        as the exit status says (B2). Only one: the session drains, and its ending task waits
        for the other half (ending the program through the A4 escalation if it is still
        running, or giving an escaped grandchild's hold on stdout a grace period).
        """
        state = self.state
        if state.phase is not Phase.OPEN and state.phase is not Phase.DRAINING:
            return
        child = self.child
        if not child.running and self._stdout_done and not child.group_alive():
            self._close_as_exited(child.exited.result())
        elif state.move(Phase.DRAINING):
            self._finish()

    def _close_as_exited(self, status: ExitStatus) -> None:
        code, reason = _exit_close(status)
        if self.state.close(Cause.PROGRAM, code, reason):
            self._sink.exited(status)
            self._connection.close(code, reason)
            self._finish()  # first: the release hands its ending to a shutdown to wait for
            self._release()

    def _finish(self) -> None:
        if self._ending is None:
            self._ending = asyncio.ensure_future(self._end())

    async def _end(self) -> None:
        """End the program, send the program's Close if it is still due, then the bookkeeping."""
        if self._ping_timer is not None:
            self._ping_timer.cancel()
        if self._clock is not None:
            self._clock.cancel()
        if self.state.cause is Cause.PROGRAM:
            # The client has its Close: the rest waits for a moment that keeps nobody waiting.
            await until_idle()
        # Closing stdin starts the A4 schedule (a program that reads stdin ends by itself).
        self._stdin.abort()
        status = await self.child.end(self._config.closems)
        self._status = status
        deadline = asyncio.get_running_loop().time() + EOF_GRACE_SECONDS
        if self.state.phase is Phase.DRAINING:
            if not self._stdout_eof.done():
                # Everything the program wrote goes out before its Close (B1).
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._stdout_eof), EOF_GRACE_SECONDS)
            self._close_as_exited(status)
        self._release()
        # What is left is bookkeeping: a client that connects again at once is served first.
        await until_idle()
        if not self._stderr_eof.done():
            remaining = max(0.0, deadline - asyncio.get_running_loop().time())
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._stderr_eof), remaining)
        # Pipes an escaped grandchild still holds are not ours to keep open.
        self._stdout.close()
        self._stderr.close()
        state = self.state
        state.move(Phase.ENDED)
        duration = time.monotonic() - self.conn.started
        code = state.code if state.code is not None else CLOSE_INTERNAL
        by = state.cause.value if state.cause is not None else ""
        self._bus.publish(Disconnected(self.conn, code, state.reason, status, duration, by))

    def _release(self) -> None:
        released, self._released = self._released, None
        if released is not None:
            released(self)

    def kill(self) -> None:
        """A second Ctrl+C: SIGKILL the program's whole group now."""
        self.child.signal_group(signal.SIGKILL)

    # ------------------------------------------------------------ keep-alive (--pingms)

    def _schedule_ping(self) -> None:
        interval = self._config.pingms / 1000
        self._ping_timer = asyncio.get_running_loop().call_later(interval, self._ping)

    def _ping(self) -> None:
        if time.monotonic() - self._last_seen > 2 * self._config.pingms / 1000:
            # Silent for two intervals: the client is gone without saying so.
            self._connection.abort()
            self.client_closed(1006)
            return
        self._connection.ping()
        self._schedule_ping()


def _exit_close(status: ExitStatus) -> tuple[int, str]:
    """The Close for a program that ended the session itself: its code and reason (B2)."""
    return (1000 if status.ok else CLOSE_INTERNAL), status.describe()


__all__ = ["Bridge", "ExitStatus"]
