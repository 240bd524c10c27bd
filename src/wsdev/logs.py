"""websocketd's log format, so a tool that parses websocketd's log parses wsdev's (behaviour A6).

A line is ``RFC1123Z-time | LEVEL | category | key:'value' ... | message``. Levels follow
websocketd's order (debug < trace < access < info < error < fatal) and map onto ``logging``
levels, so modules keep using ``logging.getLogger(__name__)`` and pass the category and context
in ``extra``. ``LogWriter`` turns the event stream into lines; ``configure_logging`` installs the
one handler, which is the only place log output is set up.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import stat
import sys
import time
from datetime import datetime
from email.utils import format_datetime
from typing import IO, Any

from wsdev.config import Config
from wsdev.events import (
    Connected,
    ConnectionError_,
    ConnectionInfo,
    Disconnected,
    Event,
    EventBus,
    HttpRequest,
    OutputStalled,
    ProcessStarted,
    Rejected,
    Restarting,
    ServerError,
    ServerStarted,
    ServerStopping,
    SpawnFailed,
    StderrLine,
)

TRACE = 12
ACCESS = 15
FATAL = 50
LEVELS = {
    "debug": logging.DEBUG,
    "trace": TRACE,
    "access": ACCESS,
    "info": logging.INFO,
    "error": logging.ERROR,
    "fatal": FATAL,
}
_NAMES = {
    logging.DEBUG: "DEBUG",
    TRACE: "TRACE",
    ACCESS: "ACCESS",
    logging.INFO: "INFO",
    logging.WARNING: "ERROR",  # websocketd has no warning level; a warning is worth attention
    logging.ERROR: "ERROR",
    FATAL: "FATAL",
}

logger = logging.getLogger("wsdev")

# The output ``configure_logging`` installed last, flushed when the interpreter exits.
_installed: LogOutput | None = None
# What a log on a pipe may hold while its reader is not reading (behaviour A6).
BACKLOG_LIMIT = 8 * 1024 * 1024


def timestamp(when: datetime | None = None) -> str:
    """The time as Go's RFC1123Z: ``Sat, 28 Nov 2026 10:22:17 +0000``."""
    return format_datetime((when or datetime.now()).astimezone())


class LogOutput:
    """Where log lines go: each loop turn's lines in one write, at the end of that turn.

    A line is never held back by a timer (behaviour A6): the first line of a loop turn schedules
    one flush with ``call_soon``, which runs before the loop looks at any new I/O, so what a
    turn logged is written before anything the next turn does. A program flooding stderr costs
    one write per pipe read, not one per line. Without a running loop (start-up, shutdown,
    another thread) a line is written at once, and whatever is still pending when the
    interpreter exits is written then (``atexit``), so no exit short of SIGKILL loses a line.
    Once the reader of the log has gone (``wsdev … | head``), lines are dropped quietly.

    A log on a pipe or socket is written without blocking: a reader that stops reading for a
    while (``wsdev … | less`` left on one page) must not freeze every connection. What the pipe
    cannot take yet is kept, up to ``BACKLOG_LIMIT`` bytes, and written as the reader makes room;
    past that, lines are counted and the count is logged once there is room again.
    """

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._pending: list[str] = []
        self._second = -1
        self._stamp = ""
        self._broken = False
        self._fd = _pipe_fd(stream)
        self._backlog = bytearray()  # bytes the pipe could not take yet
        self._dropped = 0  # lines thrown away while the backlog was full
        self._watching: asyncio.AbstractEventLoop | None = None
        if self._fd >= 0:
            os.set_blocking(self._fd, False)

    def stamp(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            self._second = second
            self._stamp = timestamp(datetime.fromtimestamp(second))
        return self._stamp

    def line(self, created: float, level: str, category: str, assoc: str, message: str) -> None:
        if self._broken:
            return
        self._pending.append(
            f"{self.stamp(created)} | {level:<6} | {category:<10} | {assoc} | {message}\n"
        )
        if len(self._pending) == 1:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:
                self.flush()  # no loop in this thread: write at once

    def block(self, lines: list[str]) -> None:
        """Lines as they are, without the log's prefix (a QR code); dark on light on a terminal."""
        if self._broken:
            return
        tty = _isatty(self._stream)
        for text in lines:
            self._pending.append(f"\x1b[30;47m{text}\x1b[0m\n" if tty else f"{text}\n")
        self.flush()

    def flush(self) -> None:
        """Write every pending line now, in one write."""
        if not self._pending:
            return
        text = "".join(self._pending)
        self._pending.clear()
        if self._fd >= 0:
            self._write_pipe(text)
            return
        try:
            self._stream.write(text)
            self._stream.flush()
        except (BrokenPipeError, ValueError, OSError):
            self._broken = True
            with contextlib.suppress(OSError, ValueError):
                # Point the stream at /dev/null so the interpreter's last flush cannot complain.
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, self._stream.fileno())
                os.close(devnull)

    # ---------------------------------------------------------------- a log on a pipe

    def _write_pipe(self, text: str) -> None:
        if self._broken:
            return
        data = text.encode("utf-8", "backslashreplace")
        if self._backlog:
            if len(self._backlog) + len(data) > BACKLOG_LIMIT:
                self._dropped += text.count("\n")
            else:
                self._backlog += data
            return
        written = self._send(data)
        if written < len(data):
            self._backlog += data[written:]
            self._watch()

    def _send(self, data: bytes | bytearray) -> int:
        try:
            return os.write(self._fd, data)
        except BlockingIOError:
            return 0
        except OSError:  # the reader has gone: drop lines quietly from now on
            self._broken = True
            self._backlog.clear()
            return len(data)

    def _watch(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._finish()  # no loop to wait with: write the rest as a blocking write would
            return
        if self._watching is None:
            self._watching = loop
            loop.add_writer(self._fd, self._drain)

    def _drain(self) -> None:
        """The pipe has room: write what waited, then say how much was thrown away, if any."""
        del self._backlog[: self._send(self._backlog)]
        if self._backlog or self._broken:
            if self._broken and self._watching is not None:
                self._watching.remove_writer(self._fd)
                self._watching = None
            return
        if self._watching is not None:
            self._watching.remove_writer(self._fd)
            self._watching = None
        if self._dropped:
            dropped, self._dropped = self._dropped, 0
            now = time.time()
            self.line(
                now, "ERROR", "server", "", f"{dropped} log lines dropped: nobody read the log"
            )

    def _finish(self) -> None:
        """At exit, or with no loop: what is kept goes out with blocking writes."""
        if self._fd < 0 or self._broken:
            return
        if self._watching is not None:
            with contextlib.suppress(Exception):
                self._watching.remove_writer(self._fd)
            self._watching = None
        os.set_blocking(self._fd, True)
        try:
            while self._backlog:
                del self._backlog[: os.write(self._fd, self._backlog)]
        except OSError:
            self._broken = True
        finally:
            os.set_blocking(self._fd, False)

    def close(self) -> None:
        """The last lines, written before wsdev exits (``atexit``); the pipe is left blocking."""
        self.flush()
        self._finish()
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.set_blocking(self._fd, True)


def _pipe_fd(stream: IO[str]) -> int:
    """The stream's descriptor if it is a pipe or a socket (a reader that may stall), else -1."""
    try:
        fd = stream.fileno()
        mode = os.fstat(fd).st_mode
    except (OSError, ValueError, AttributeError):
        return -1
    return fd if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) else -1


class WebsocketdHandler(logging.Handler):
    """Formats ``logging`` records as websocketd does; ``extra`` may carry category, context."""

    def __init__(self, output: LogOutput) -> None:
        super().__init__()
        self.output = output

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info and logger.isEnabledFor(logging.DEBUG):
                message += "\n" + logging.Formatter().formatException(record.exc_info)
            context: tuple[tuple[str, str], ...] = getattr(record, "context", ())
            self.output.line(
                record.created,
                _NAMES.get(record.levelno, record.levelname),
                getattr(record, "category", "server"),
                _assoc(context),
                message,
            )
        except Exception:
            self.handleError(record)


def _assoc(context: tuple[tuple[str, str], ...]) -> str:
    return " ".join(f"{key}:'{value}'" for key, value in context)


def configure_logging(config: Config, stream: IO[str] | None = None) -> LogOutput:
    """Send wsdev's log, in websocketd's format, to ``stream`` (stdout) at ``--loglevel``."""
    global _installed
    output = LogOutput(stream or sys.stdout)
    # Whatever is pending when the interpreter exits is written then; only the newest output
    # is flushed, so a run that configures logging again leaves no stale stream behind.
    if _installed is not None:
        atexit.unregister(_installed.close)
    atexit.register(output.close)
    _installed = output
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(WebsocketdHandler(output))
    root.setLevel(LEVELS[config.loglevel])
    # aiohttp's own access log would be a second, differently shaped line per request.
    logging.getLogger("aiohttp.access").disabled = True
    # aiohttp logs a client's malformed request as an ERROR; it is the client's mistake, and
    # websocketd says nothing about it. Errors raised by wsdev's own handlers still show.
    logging.getLogger("aiohttp.server").addFilter(_not_a_bad_request)
    return output


def _not_a_bad_request(record: logging.LogRecord) -> bool:
    from aiohttp.http_exceptions import HttpProcessingError

    exc = record.exc_info[1] if record.exc_info else None
    return not isinstance(exc, HttpProcessingError) or logger.isEnabledFor(logging.DEBUG)


def connection_context(
    conn: ConnectionInfo, *, with_pid: bool = False
) -> tuple[tuple[str, str], ...]:
    """The context keys websocketd puts on a session's lines, in websocketd's order."""
    context = [
        ("url", conn.url),
        ("id", conn.id),
        ("remote", conn.remote),
        ("command", conn.command),
        # websocketd's name for "no Origin header" (a non-browser client).
        ("origin", conn.origin or "file:"),
    ]
    if conn.client_name:  # the name given in the console (behaviour C9)
        context.append(("name", conn.client_name))
    if with_pid and conn.pid is not None:
        context.append(("pid", str(conn.pid)))
    return tuple(context)


class LogWriter:
    """Subscribes to the event bus and writes each event worth a log line."""

    def __init__(self, bus: EventBus, config: Config, output: LogOutput) -> None:
        self._config = config
        self._output = output
        self._threshold = LEVELS[config.loglevel]
        # The log never shows a message: without the dashboard or a console feed, the bridge
        # then makes no event per message at all (``EventBus.wants_messages``).
        self._unsubscribe = bus.subscribe(self, messages=False)

    def close(self) -> None:
        self._unsubscribe()

    def _log(self, level: int, category: str, message: str, *args: Any, context: Any = ()) -> None:
        if level >= self._threshold:
            self._output.line(
                time.time(),
                _NAMES[level],
                category,
                _assoc(context),
                message % args if args else message,
            )

    def __call__(self, event: Event) -> None:
        if isinstance(event, StderrLine):
            self._log(logging.ERROR, "stderr", "%s", event.line, context=_ctx(event.conn))
        elif isinstance(event, Connected):
            self._log(ACCESS, "session", "CONNECT", context=connection_context(event.conn))
        elif isinstance(event, ProcessStarted):
            self._log(logging.DEBUG, "process", "Process started", context=_ctx(event.conn))
        elif isinstance(event, Disconnected):
            self._on_disconnected(event)
        elif isinstance(event, HttpRequest):
            self._log(
                ACCESS,
                "http",
                "%s",
                event.kind,
                context=(("url", event.url), ("remote", event.remote)),
            )
        elif isinstance(event, Rejected):
            rejected = (("url", event.url), ("remote", event.remote), ("origin", event.origin))
            # websocketd logs refused upgrades as errors; so does wsdev, for --loglevel=error.
            self._log(logging.ERROR, "http", "%d %s", event.status, event.reason, context=rejected)
        elif isinstance(event, SpawnFailed):
            self._log(logging.ERROR, "process", "%s", event.message, context=_ctx(event.conn))
        elif isinstance(event, ConnectionError_):
            self._log(logging.ERROR, event.category, "%s", event.message, context=_ctx(event.conn))
        elif isinstance(event, OutputStalled):
            self._log(
                logging.INFO,
                "process",
                "%d bytes written without a newline for over a second"
                " (is the program buffering its output?)",
                event.pending_bytes,
                context=_ctx(event.conn),
            )
        elif isinstance(event, ServerStarted):
            self._on_started(event)
        elif isinstance(event, Restarting):
            files = ", ".join(event.changed)
            done = "stay on the old version" if event.kept else "closed with 1012"
            self._log(
                logging.INFO,
                "server",
                "Restarting: %s changed (%d live connection(s) %s)",
                files,
                event.live,
                done,
            )
        elif isinstance(event, ServerStopping):
            self._log(logging.INFO, "server", "Shutting down: %s", event.reason)
        elif isinstance(event, ServerError):
            self._log(logging.ERROR, event.category, "%s", event.message)

    def _on_disconnected(self, event: Disconnected) -> None:
        conn = event.conn
        self._log(ACCESS, "session", "DISCONNECT", context=connection_context(conn, with_pid=True))
        if event.exit is not None:
            ended = event.exit.describe()
            code = str(event.code) if event.code is not None else "none"
            if event.reason and event.reason != ended:
                code += f": {event.reason}"  # the server's own reason, such as a limit's
            self._log(
                logging.INFO,
                "process",
                "Process ended: %s after %.2fs (close %s)",
                ended,
                event.duration,
                code,
                context=_ctx(conn),
            )

    def _on_started(self, event: ServerStarted) -> None:
        config = self._config
        if config.script_dir is not None:
            self._log(logging.INFO, "server", "Serving from directory      : %s", config.script_dir)
        elif event.command:
            self._log(logging.INFO, "server", "Serving using application   : %s", event.command)
        if config.staticdir is not None:
            self._log(logging.INFO, "server", "Serving static content from : %s", config.staticdir)
        if config.cgidir is not None:
            self._log(logging.INFO, "server", "Serving CGI scripts from    : %s", config.cgidir)
        for watched in event.watched:
            self._log(logging.INFO, "server", "Restarting on changes to    : %s", watched)
        if event.watched:
            keeps = config.reload_mode == "new"
            mode = "new (open connections keep their version)" if keeps else "all (1012 on save)"
            self._log(logging.INFO, "server", "Reload mode                 : %s", mode)
        for url in event.urls:
            self._log(logging.INFO, "server", "Starting WebSocket server   : %s", url)
        for url in event.console_urls:
            self._log(logging.INFO, "server", "Console                     : %s", url)
        self._room(event)
        # Written now, not at the end of this turn: a client's connection accepted later in the
        # same turn is answered in it, and the lines say what is served before anyone is.
        self._output.flush()

    def _room(self, event: ServerStarted) -> None:
        """Under --lan, the link a room types or scans (behaviour B14)."""
        config = self._config
        if not config.lan:
            return
        if not config.join_secret:
            self._log(
                logging.ERROR,
                "server",
                "--no-token: ANYONE on this network can open the console and run the program",
            )
        from wsdev.lan import room_link

        self._log(logging.INFO, "server", "Room limits                 : %s", room_limits(config))
        link = room_link(event.console_urls)
        if link is None:
            return
        from wsdev.lan import qr_lines

        self._log(logging.INFO, "server", "Room link (type or scan)    : %s", link)
        self._output.block(qr_lines(link))


def room_limits(config: Config) -> str:
    """The limits in force, each with its flag, as the start-up output says them (B13)."""
    parts = [
        f"--max-per-client={config.max_per_client}" if config.max_per_client else "",
        f"--idle-timeout={config.idle_timeout:g}" if config.idle_timeout else "",
        f"--max-lifetime={config.max_lifetime:g}" if config.max_lifetime else "",
        f"--maxforks={config.maxforks}" if config.maxforks else "",
    ]
    return " ".join(part for part in parts if part) or "none"


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (ValueError, OSError):
        return False


def _ctx(conn: ConnectionInfo) -> tuple[tuple[str, str], ...]:
    return connection_context(conn, with_pid=True)
