"""How a program's output is framed for the client on the other end of one connection.

``PlainSink`` speaks websocketd's protocol: one text frame per stdout line, or binary frames in
``--binary`` mode, and ``{"stream":…,"data":…}`` objects under ``--passstderr``. ``ConsoleSink``
speaks the browser console's envelope, which also carries the connection's own stderr, its exit
status and restarts, so the program itself sees exactly what a plain client would give it; the
lines of one read of a pipe go to the console as one envelope.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Protocol

from wsdev.events import ConnectionInfo, ExitStatus
from wsdev.wire import binary_frame, text_frames

# The console shows the program's whole environment, these first: how paths and queries arrive.
CONSOLE_ENV_KEYS = (
    "SCRIPT_NAME",
    "PATH_INFO",
    "QUERY_STRING",
    "REQUEST_URI",
    "REMOTE_ADDR",
    "UNIQUE_ID",
)


class FrameOutput(Protocol):
    """Where a sink's frames go: the session's connection."""

    def write(self, frames: bytes) -> None: ...


class Sink(Protocol):
    def started(self, conn: ConnectionInfo, env: Mapping[str, str], binary: bool) -> None: ...
    def lines(self, lines: Sequence[bytes]) -> None: ...
    def chunk(self, data: bytes) -> None: ...
    def stderr(self, lines: Sequence[str]) -> None:
        """The stderr lines of one read, sent in one write."""

    def stalled(self, pending: int) -> None: ...
    def exited(self, status: ExitStatus) -> None: ...
    def restarting(self, files: Sequence[str]) -> None: ...
    def error(self, message: str, status: int) -> None: ...


def _console_env(env: Mapping[str, str]) -> dict[str, str]:
    first = {key: env.get(key, "") for key in CONSOLE_ENV_KEYS}
    return {**first, **{key: env[key] for key in sorted(env) if key not in first}}


def _json(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def _batch(kind: str, lines: Sequence[str]) -> dict[str, object]:
    """The lines of one read as one envelope (behaviour C6): a browser pays for each message it
    receives (an event, a garbage-collected handle), so a flood comes as few messages. A single
    line keeps the ``data`` form, which is what an interactive reply almost always is."""
    if len(lines) == 1:
        return {"type": kind, "data": lines[0]}
    return {"type": kind, "lines": list(lines)}


class PlainSink:
    """websocketd's framing, for every client but the console."""

    __slots__ = ("_passstderr", "_writer")

    def __init__(self, writer: FrameOutput, *, passstderr: bool) -> None:
        self._writer = writer
        self._passstderr = passstderr

    def started(self, conn: ConnectionInfo, env: Mapping[str, str], binary: bool) -> None:
        pass

    def lines(self, lines: Sequence[bytes]) -> None:
        if self._passstderr:
            lines = [_json({"stream": "stdout", "data": line.decode()}) for line in lines]
        self._writer.write(text_frames(lines))

    def chunk(self, data: bytes) -> None:
        self._writer.write(binary_frame(data))

    def stderr(self, lines: Sequence[str]) -> None:
        if self._passstderr:
            self._writer.write(
                text_frames([_json({"stream": "stderr", "data": line}) for line in lines])
            )

    def stalled(self, pending: int) -> None:
        pass

    def exited(self, status: ExitStatus) -> None:
        pass

    def restarting(self, files: Sequence[str]) -> None:
        pass

    def error(self, message: str, status: int) -> None:
        pass


class ConsoleSink:
    """The browser console's envelope: JSON objects with a ``type``, binary stdout as is."""

    __slots__ = ("_writer",)

    def __init__(self, writer: FrameOutput) -> None:
        self._writer = writer

    def _send(self, obj: object) -> None:
        self._writer.write(text_frames([_json(obj)]))

    def started(self, conn: ConnectionInfo, env: Mapping[str, str], binary: bool) -> None:
        self._send(
            {
                "type": "hello",
                "id": conn.id,
                "seq": conn.seq,
                "pid": conn.pid,
                "command": conn.command,
                "binary": binary,
                "generation": conn.generation,
                "name": conn.client_name,  # as wsdev keeps it (behaviour C9)
                "env": _console_env(env),
            }
        )

    def lines(self, lines: Sequence[bytes]) -> None:
        if lines:
            self._send(_batch("stdout", [line.decode() for line in lines]))

    def chunk(self, data: bytes) -> None:
        self._writer.write(binary_frame(data))

    def stderr(self, lines: Sequence[str]) -> None:
        if lines:
            self._send(_batch("stderr", lines))

    def stalled(self, pending: int) -> None:
        self._send({"type": "stalled", "bytes": pending})

    def exited(self, status: ExitStatus) -> None:
        self._send(
            {
                "type": "exit",
                "status": status.describe(),
                "code": status.code,
                "signal": status.signal,
            }
        )

    def restarting(self, files: Sequence[str]) -> None:
        self._send({"type": "restart", "files": list(files)})

    def error(self, message: str, status: int) -> None:
        self._send({"type": "error", "message": message, "status": status})
