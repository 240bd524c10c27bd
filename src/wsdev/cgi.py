"""Running ``--cgidir`` scripts as CGI/1.1 (RFC 3875) for plain HTTP requests (behaviour A5).

A script is exec'd directly (never through a shell) in its own folder with the environment the
server built, the request body streamed to its stdin; its header block (``Status:``,
``Content-Type:``, ``Location:``, others) becomes the response head and the rest of its stdout
is streamed back as the body. Its stderr lines go to the log. Decisions follow websocketd (Go's
``net/http/cgi``): a ``Location`` without ``Status`` is a 302, a response with neither status,
location nor Content-Type is an error, a header line without a colon is skipped. A script that
cannot be run, or ends before finishing its header block, or sends a bad ``Status``, gives a 500
with a short text body and a logged error, never a traceback. Nothing outside the folder is run:
paths are checked with the static server's ``resolve_under``.

A script is started, watched and ended as a WebSocket program is (``process``, ``pipes``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
from pathlib import Path

from aiohttp import web

from wsdev.config import Config
from wsdev.events import ExitStatus
from wsdev.pipes import PipeReader, PipeWriter, WriteFlow
from wsdev.process import Child, spawn
from wsdev.staticfiles import resolve_under, url_segments

logger = logging.getLogger(__name__)

_HEADER_BLOCK_LIMIT = 64 * 1024
_CHUNK = 64 * 1024
# Past this much unsent output stdout is not read, so a script waits for a slow client. It is
# more than a header line may be, so a line over the limit is seen whole and refused.
_OUTPUT_BUFFER = 2 * _HEADER_BLOCK_LIMIT
_STDERR_LINE_LIMIT = 64 * 1024
# How long a script that ended without a head may take to be reaped, for its exit in the log.
_EXIT_WAIT = 1.0
# Once a script is reaped, how long what it left behind may hold stderr before we stop reading.
_STDERR_GRACE = 2.0
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_STATUS = re.compile(r"([2-5][0-9][0-9])(?:\s+(.*))?")
# Status is consumed; framing is the server's business, a script's idea of it would corrupt the
# connection (Content-Length is kept: the body is cut to it).
_NOT_PASSED = frozenset(
    {"status", "connection", "keep-alive", "transfer-encoding", "upgrade", "te", "trailer"}
)


class CgiError(Exception):
    """The script's output is not a CGI response; the message says why, for the log."""

    def __init__(self, message: str, *, ended: bool = False) -> None:
        super().__init__(message)
        self.ended = ended  # its stdout reached EOF, so it is ending by itself


def find_cgi_script(root: Path, url_path: str) -> tuple[Path, str, str] | None:
    """The script a request path names under ``root``: ``(file, SCRIPT_NAME, PATH_INFO)``.

    ``url_path`` is the path as sent (percent-encoded; a query is ignored). As in websocketd,
    only a path naming a file exactly is a script (``/x.sh/extra`` is not), SCRIPT_NAME is ``/``
    and PATH_INFO the whole decoded path, which is what Go's CGI handler gives a script.
    """
    segments = url_segments(url_path)
    if segments is None:
        return None
    script = resolve_under(root, segments)
    if script is None or not script.is_file():
        return None
    return script, "/", "/" + "/".join(segments)


async def serve_cgi(
    request: web.BaseRequest, config: Config, script: Path, env: dict[str, str]
) -> web.StreamResponse:
    """Run ``script`` for ``request`` with ``env`` and stream its response back.

    ``env`` is the CGI environment the server built (``environ.cgi_environ``); CONTENT_LENGTH,
    CONTENT_TYPE and SCRIPT_FILENAME are added here from the request. ``config.closems``
    stretches the steps of the ladder that ends a script whose response was cut short.
    """
    env = dict(env)
    if request.content_length:
        env["CONTENT_LENGTH"] = str(request.content_length)
    if content_type := request.headers.get("Content-Type"):
        env["CONTENT_TYPE"] = content_type
    env["SCRIPT_FILENAME"] = str(script)
    try:
        child = spawn([str(script)], env, cwd=str(script.parent))
    except OSError as exc:
        _log(script, "CGI script %s cannot be run: %s", script, exc.strerror or exc)
        return _failure()
    running = _Script(script, child, config.closems)
    feeder = asyncio.ensure_future(_feed_stdin(request, running))
    complete = False
    try:
        response, complete = await _respond(request, running)
        return response
    finally:
        feeder.cancel()
        # A finished script is reaped in the background so a straggler never holds the
        # connection; one whose client left, or whose handler was cancelled, is ended.
        finishing = asyncio.ensure_future(running.finish(complete))
        # The loop keeps only weak references to tasks; hold one until it is done.
        _FINISHING.add(finishing)
        finishing.add_done_callback(_FINISHING.discard)


class _Script:
    """A started script: its process, our ends of its pipes, and its ending."""

    def __init__(self, path: Path, child: Child, closems: int) -> None:
        loop = asyncio.get_running_loop()
        self.path = path
        self.child = child
        self._closems = closems
        self.stdin_flow = WriteFlow()
        # high=0: a drained stdin holds nothing back, so the close after the body loses nothing.
        self.stdin = PipeWriter(loop, child.stdin, self.stdin_flow, high=0)
        self.stdout = _Output()
        self.stdout.pipe = PipeReader(loop, child.stdout, self.stdout)
        self._stderr_done: asyncio.Future[None] = loop.create_future()
        self._stderr = PipeReader(loop, child.stderr, _StderrLines(path, self._stderr_done))
        self._ending: asyncio.Future[ExitStatus] | None = None
        _SCRIPTS.add(self)

    def end(self) -> asyncio.Future[ExitStatus]:
        """Start the escalation ladder, once however often asked; done when it is reaped."""
        if self._ending is None:
            self.stdin.abort()  # the ladder's steps count from the close of stdin
            self._ending = asyncio.ensure_future(self.child.end(self._closems))
        return self._ending

    async def finish(self, complete: bool) -> None:
        """Wait for the script to end (``complete``) or end it, then let go of its pipes."""
        try:
            if complete:
                # Shielded: a cancelled wait must not cancel the child's own exit future.
                status = await asyncio.shield(self.child.exited)
                if not status.ok:
                    _log(self.path, "CGI script %s ended with %s", self.path, _describe(status))
            else:
                await asyncio.shield(self.end())  # cancelled, the ladder must still finish
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._stderr_done), _STDERR_GRACE)
        finally:
            self.stdin.abort()
            self.stdout.close()
            self._stderr.close()
            _SCRIPTS.discard(self)


async def _respond(request: web.BaseRequest, script: _Script) -> tuple[web.StreamResponse, bool]:
    """The response, and whether the script's whole output reached the client."""
    path, stdout = script.path, script.stdout
    try:
        status, reason, headers = await _read_head(stdout, path)
    except CgiError as exc:
        detail = ""
        if exc.ended:
            with contextlib.suppress(asyncio.TimeoutError):
                ended = await asyncio.wait_for(asyncio.shield(script.child.exited), _EXIT_WAIT)
                detail = "" if ended.ok else f" ({_describe(ended)})"
        _log(path, "CGI script %s %s%s", path, exc, detail)
        return _failure(), False
    response = web.StreamResponse(status=status, reason=reason)
    declared: int | None = None
    for name, value in headers:
        if name.lower() == "content-length":
            declared = int(value) if value.isdigit() else None
        else:
            response.headers.add(name, value)
    # A bodiless answer (a redirect, say) is sent with Content-Length: 0, as Go does, rather than
    # chunked with a made-up Content-Type.
    chunk = await stdout.read()
    if declared is None and not chunk:
        declared = 0
    response.content_length = declared
    send_body = request.method != "HEAD" and status not in (204, 304)
    sent = 0
    overflow = False
    try:
        await response.prepare(request)
        while chunk:
            if declared is not None and sent + len(chunk) > declared:
                # Go's CGI host kills such a script; so do we (the caller ends it).
                _log(path, "CGI script %s wrote more than its Content-Length", path)
                chunk = chunk[: declared - sent]
                overflow = True
            if chunk and send_body:
                # Waits while the client's transport is paused; meanwhile stdout fills
                # ``_OUTPUT_BUFFER`` and is no longer read, so the script waits too.
                await response.write(chunk)
            sent += len(chunk)
            if overflow:
                break
            chunk = await stdout.read()
        if declared is not None and sent < declared and send_body:
            missing = declared - sent
            _log(path, "CGI script %s wrote %d bytes fewer than its Content-Length", path, missing)
            # The client must not wait for bytes that will never come.
            if request.transport is not None:
                request.transport.close()
            return response, True
        await response.write_eof()
    except ConnectionError:
        return response, False  # the client left
    return response, not overflow


async def _read_head(
    stdout: _Output, script: Path
) -> tuple[int, str | None, list[tuple[str, str]]]:
    """The status, reason and headers of a CGI header block (RFC 3875 §6)."""
    headers: list[tuple[str, str]] = []
    size = 0
    while True:
        raw = await stdout.readline()
        if not raw.endswith(b"\n"):
            raise CgiError(
                "ended before writing its headers"
                if not headers and not raw
                else "ended before finishing its header block with an empty line",
                ended=True,
            )
        size += len(raw)
        if size > _HEADER_BLOCK_LIMIT:
            raise CgiError("wrote a header block over 64 KiB")
        line = raw.rstrip(b"\r\n").decode("latin-1")
        if not line:
            break
        name, colon, value = line.partition(":")
        name, value = name.strip(), value.strip()
        if not colon or not _TOKEN.fullmatch(name) or _CONTROL.search(value):
            _log(script, "CGI script %s: skipped a bogus header line: %r", script, line)
            continue
        headers.append((name, value))
    status_values = [value for name, value in headers if name.lower() == "status"]
    headers = [(name, value) for name, value in headers if name.lower() not in _NOT_PASSED]
    has = {name.lower() for name, _ in headers}
    if status_values:
        match = _STATUS.fullmatch(status_values[-1])
        if match is None:
            raise CgiError(f"sent a bad Status header: {status_values[-1]!r}")
        return int(match.group(1)), match.group(2) or None, headers
    if "location" in has:
        return 302, None, headers
    if "content-type" not in has:
        raise CgiError("sent no Content-Type, Status or Location header")
    return 200, None, headers


async def _feed_stdin(request: web.BaseRequest, script: _Script) -> None:
    stdin = script.stdin
    try:
        async for chunk in request.content.iter_chunked(_CHUNK):
            stdin.write(chunk)
            await script.stdin_flow.drain()
            if stdin.is_closing():
                break  # the script closed its stdin, which it may, or it is being ended
    except ConnectionError:
        pass  # the client left mid-body
    finally:
        stdin.abort()  # after the last drain nothing is buffered: this is an ordinary close


class _Output(asyncio.Protocol):
    """The script's stdout, buffered until the response takes it (see ``_OUTPUT_BUFFER``)."""

    def __init__(self) -> None:
        self.pipe: PipeReader | None = None
        self._buffer = bytearray()
        self._ended = False
        self._waiter: asyncio.Future[None] | None = None

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) >= _OUTPUT_BUFFER and self.pipe is not None:
            self.pipe.pause_reading()
        self._wake()

    def eof_received(self) -> bool | None:
        self.connection_lost(None)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended = True
        self._wake()

    async def readline(self) -> bytes:
        """One line with its newline; at the end of stdout, whatever is left without one."""
        while True:
            end = self._buffer.find(b"\n")
            if end > _HEADER_BLOCK_LIMIT or (end < 0 and len(self._buffer) > _HEADER_BLOCK_LIMIT):
                raise CgiError("wrote a header line over 64 KiB")
            if end >= 0:
                return self._take(end + 1)
            if not await self._more():
                return self._take(len(self._buffer))

    async def read(self) -> bytes:
        """Whatever has come (waiting for something), or b"" at the end of stdout."""
        while not self._buffer and await self._more():
            pass
        return self._take(len(self._buffer))

    def close(self) -> None:
        if self.pipe is not None:
            self.pipe.close()

    def _take(self, size: int) -> bytes:
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        pipe = self.pipe
        if pipe is not None and not pipe.is_reading() and len(self._buffer) < _OUTPUT_BUFFER:
            pipe.resume_reading()
        return data

    async def _more(self) -> bool:
        """Wait for the next output or the end of it; False once at the end."""
        if self._ended:
            return False
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None
        return True

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class _StderrLines(asyncio.Protocol):
    """Logs each stderr line; lines are cut at 64 KiB so a long one never stops the reading."""

    def __init__(self, script: Path, done: asyncio.Future[None]) -> None:
        self._script = script
        self._done = done
        self._pending = b""

    def data_received(self, data: bytes) -> None:
        *lines, pending = (self._pending + data).split(b"\n")
        while len(pending) >= _STDERR_LINE_LIMIT:
            lines.append(pending[:_STDERR_LINE_LIMIT])
            pending = pending[_STDERR_LINE_LIMIT:]
        self._pending = pending
        for line in lines:
            self._emit(line)

    def eof_received(self) -> bool | None:
        self.connection_lost(None)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._pending:
            self._emit(self._pending)
            self._pending = b""
        if not self._done.done():
            self._done.set_result(None)

    def _emit(self, line: bytes) -> None:
        text = line.rstrip(b"\r").decode("utf-8", "replace")
        _log(self._script, "%s", text, category="stderr")


def _log(script: Path, message: str, *args: object, category: str = "cgi") -> None:
    # websocketd's CGI lines carry the script as "cgiscript" context.
    context = (("cgiscript", str(script)),)
    logger.error(message, *args, extra={"category": category, "context": context})


def _describe(status: ExitStatus) -> str:
    """``exit status 3`` or ``signal SIGTERM``, as the log has always said it."""
    return status.describe() if status.signal is not None else f"exit status {status.code}"


# Scripts from their start until their pipes are let go, and the tasks finishing those whose
# response is done; module state, since the server calls plain functions.
_SCRIPTS: set[_Script] = set()
_FINISHING: set[asyncio.Task[None]] = set()


async def end_all_scripts() -> None:
    """End every script still running (the SIGINT → SIGTERM → SIGKILL ladder) and reap them all.

    For shutdown (behaviour B6): called before the server stops serving, it also lets the
    requests of long-running scripts finish at once instead of waiting for aiohttp's shutdown
    timeout.
    """
    endings = [script.end() for script in list(_SCRIPTS)]
    if endings:
        await asyncio.wait(endings)  # not gather: cancelled, it would cancel the ladders
    await wait_scripts_ended()


def kill_all_scripts() -> None:
    """SIGKILL every running script's group now (a second Ctrl+C, behaviour B6)."""
    for script in list(_SCRIPTS):
        script.child.signal_group(signal.SIGKILL)


async def wait_scripts_ended() -> None:
    """Wait until every script whose response is done has ended and been reaped."""
    while _FINISHING:
        await asyncio.wait(list(_FINISHING))


def _failure() -> web.Response:
    return web.Response(status=500, text="500 Internal Server Error: the CGI script failed\n")
