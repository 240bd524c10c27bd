"""Running ``--cgidir`` scripts as CGI/1.1 (RFC 3875) for plain HTTP requests (SPEC A5).

A script is exec'd directly (never through a shell) in its own folder with the environment the
server built, the request body streamed to its stdin; its header block (``Status:``,
``Content-Type:``, ``Location:``, others) becomes the response head and the rest of its stdout
is streamed back as the body. Its stderr lines go to the log. Decisions follow websocketd (Go's
``net/http/cgi``): a ``Location`` without ``Status`` is a 302, a response with neither status,
location nor Content-Type is an error, a header line without a colon is skipped. A script that
cannot be run, or ends before finishing its header block, or sends a bad ``Status``, gives a 500
with a short text body and a logged error, never a traceback. Nothing outside the folder is run:
paths are checked with the static server's ``resolve_under``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
from collections.abc import Awaitable
from pathlib import Path

from aiohttp import web

from wsdev.config import Config
from wsdev.process import track, untrack
from wsdev.staticfiles import resolve_under, url_segments

logger = logging.getLogger(__name__)

_HEADER_BLOCK_LIMIT = 64 * 1024
_CHUNK = 64 * 1024
_STDERR_LINE_LIMIT = 64 * 1024
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_STATUS = re.compile(r"([2-5][0-9][0-9])(?:\s+(.*))?")
# Status is consumed; framing is the server's business, a script's idea of it would corrupt the
# connection (Content-Length is kept: the body is cut to it).
_NOT_PASSED = frozenset(
    {"status", "connection", "keep-alive", "transfer-encoding", "upgrade", "te", "trailer"}
)
_SIGKILL = getattr(signal, "SIGKILL", signal.SIGTERM)
_KILL_GRACE = 1.0


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
    CONTENT_TYPE and SCRIPT_FILENAME are added here from the request. ``config`` is part of the
    interface the server calls, though nothing in it changes how a script runs today.
    """
    env = dict(env)
    if request.content_length:
        env["CONTENT_LENGTH"] = str(request.content_length)
    if content_type := request.headers.get("Content-Type"):
        env["CONTENT_TYPE"] = content_type
    env["SCRIPT_FILENAME"] = str(script)
    try:
        proc = await asyncio.create_subprocess_exec(
            str(script),
            cwd=script.parent,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=_HEADER_BLOCK_LIMIT,
            # Its own group, so ending a script also ends whatever it started (SPEC B8).
            start_new_session=os.name == "posix",
        )
    except OSError as exc:
        _log(script, "CGI script %s cannot be run: %s", script, exc.strerror or exc)
        return _failure()
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    _RUNNING.add(proc)
    track(proc.pid)  # asyncio waits for it: the orphan reaper must leave it alone
    feeder = asyncio.ensure_future(_feed_stdin(request, proc.stdin))
    stderr_reader = asyncio.ensure_future(_log_stderr(proc.stderr, script))
    complete = False
    try:
        response, complete = await _respond(request, proc, script)
        return response
    finally:
        _RUNNING.discard(proc)
        feeder.cancel()
        # A finished script is reaped in the background so a straggler never holds the
        # connection; one whose client left, or whose handler was cancelled, is ended.
        ending = _reap(proc, script) if complete else _terminate(proc)
        _background(ending, stderr_reader)


async def _respond(
    request: web.BaseRequest, proc: asyncio.subprocess.Process, script: Path
) -> tuple[web.StreamResponse, bool]:
    """The response, and whether the script's whole output reached the client."""
    assert proc.stdout is not None
    try:
        status, reason, headers = await _read_head(proc.stdout, script)
    except CgiError as exc:
        detail = ""
        if exc.ended:
            with contextlib.suppress(asyncio.TimeoutError):
                code = await asyncio.wait_for(proc.wait(), _KILL_GRACE)
                detail = f" ({_describe_exit(code)})" if code else ""
        _log(script, "CGI script %s %s%s", script, exc, detail)
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
    chunk = await proc.stdout.read(_CHUNK)
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
                _log(script, "CGI script %s wrote more than its Content-Length", script)
                chunk = chunk[: declared - sent]
                overflow = True
            if chunk and send_body:
                await response.write(chunk)
            sent += len(chunk)
            if overflow:
                break
            chunk = await proc.stdout.read(_CHUNK)
        if declared is not None and sent < declared and send_body:
            missing = declared - sent
            _log(
                script,
                "CGI script %s wrote %d bytes fewer than its Content-Length",
                script,
                missing,
            )
            # The client must not wait for bytes that will never come.
            if request.transport is not None:
                request.transport.close()
            return response, True
        await response.write_eof()
    except ConnectionError:
        return response, False  # the client left
    return response, not overflow


async def _read_head(
    stdout: asyncio.StreamReader, script: Path
) -> tuple[int, str | None, list[tuple[str, str]]]:
    """The status, reason and headers of a CGI header block (RFC 3875 §6)."""
    headers: list[tuple[str, str]] = []
    size = 0
    while True:
        try:
            raw = await stdout.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            raise CgiError(
                "ended before writing its headers"
                if not headers and not exc.partial
                else "ended before finishing its header block with an empty line",
                ended=True,
            ) from None
        except asyncio.LimitOverrunError:
            raise CgiError("wrote a header line over 64 KiB") from None
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


async def _feed_stdin(request: web.BaseRequest, stdin: asyncio.StreamWriter) -> None:
    try:
        async for chunk in request.content.iter_chunked(_CHUNK):
            stdin.write(chunk)
            await stdin.drain()
    except (ConnectionError, BrokenPipeError):
        pass  # the script stopped reading, which it may
    finally:
        with contextlib.suppress(OSError):
            stdin.close()


async def _log_stderr(stderr: asyncio.StreamReader, script: Path) -> None:
    """Log each stderr line; lines are cut at 64 KiB so a long one never stops the reading."""
    pending = b""
    while chunk := await stderr.read(_CHUNK):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        while len(pending) >= _STDERR_LINE_LIMIT:
            lines.append(pending[:_STDERR_LINE_LIMIT])
            pending = pending[_STDERR_LINE_LIMIT:]
        for line in lines:
            _log_stderr_line(script, line)
    if pending:
        _log_stderr_line(script, pending)


def _log_stderr_line(script: Path, line: bytes) -> None:
    text = line.rstrip(b"\r").decode("utf-8", "replace")
    _log(script, "%s", text, category="stderr")


def _log(script: Path, message: str, *args: object, category: str = "cgi") -> None:
    # websocketd's CGI lines carry the script as "cgiscript" context.
    context = (("cgiscript", str(script)),)
    logger.error(message, *args, extra={"category": category, "context": context})


async def _reap(proc: asyncio.subprocess.Process, script: Path) -> None:
    """Wait for a script that has closed its stdout, and log an unsuccessful exit."""
    try:
        code = await proc.wait()
    finally:
        untrack(proc.pid)
    if code:
        _log(script, "CGI script %s ended with %s", script, _describe_exit(code))


async def _terminate(proc: asyncio.subprocess.Process) -> None:
    try:
        for sig in (signal.SIGTERM, _SIGKILL):
            if proc.returncode is not None:
                return
            _signal_group(proc, sig)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(proc.wait(), _KILL_GRACE)
        await proc.wait()
    finally:
        untrack(proc.pid)


def _signal_group(proc: asyncio.subprocess.Process, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.name == "posix":
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)


def _describe_exit(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
        return f"signal {-code}"
    return f"exit status {code}"


# Scripts whose response is being streamed, and the endings (reaping, or SIGTERM then SIGKILL)
# of scripts whose response is done; module state, since the server calls plain functions.
_RUNNING: set[asyncio.subprocess.Process] = set()
_BACKGROUND: set[asyncio.Future[list[BaseException | None]]] = set()


async def end_all_scripts() -> None:
    """End every script still running (SIGTERM, then SIGKILL a second later) and reap them all.

    For shutdown (SPEC B6): called before the server stops serving, it also lets the requests of
    long-running scripts finish at once instead of waiting for aiohttp's shutdown timeout.
    """
    for proc in list(_RUNNING):
        _background(_terminate(proc))
    await wait_scripts_ended()


def kill_all_scripts() -> None:
    """SIGKILL every running script's group now (a second Ctrl+C, SPEC B6)."""
    for proc in list(_RUNNING):
        _signal_group(proc, _SIGKILL)


async def wait_scripts_ended() -> None:
    """Wait until every script whose response is done has ended and been reaped."""
    while _BACKGROUND:
        await asyncio.gather(*list(_BACKGROUND))


def _background(*steps: Awaitable[None]) -> None:
    task = asyncio.ensure_future(asyncio.gather(*steps, return_exceptions=True))
    # The loop keeps only weak references to tasks; hold one until it is done.
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)


def _failure() -> web.Response:
    return web.Response(status=500, text="500 Internal Server Error: the CGI script failed\n")
