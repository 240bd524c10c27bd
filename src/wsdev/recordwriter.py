"""The recorder's writer process: turns recorded events into transcript files (behaviour H1).

``--record`` must not slow a connection, and formatting a flood is real work (a million short
lines become some 20 MB of JSON lines). Done on a thread it would still hold wsdev's one
interpreter lock half the time, so it is done here, in a process of its own on another core:
wsdev hands over the bytes it already has (a read of stdout is one frame, as read) and this
process formats and writes them.

The frames on stdin (``FRAME``, then ``length`` bytes of payload):

==========  =================================================================================
kind        payload
==========  =================================================================================
``O``       a new transcript: its file name, a NUL, its header line (formatted by wsdev)
``T``       text the program wrote: its lines, each followed by a newline
``B``       a binary message the program wrote
``S``/``s`` a text/binary message the client sent
``E``       a line of stderr (UTF-8)
``X``       the end: the close and exit lines (formatted by wsdev); the file is closed
==========  =================================================================================

Each frame names its connection by a number and carries the event's time offset. What this
process has to say goes to stdout as JSON lines: ``{"opened": PATH}`` for each transcript made,
``{"failed": NUMBER, "error": TEXT}`` for one that cannot be written (reported once, dropped).
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import sys
from pathlib import Path
from typing import BinaryIO

from wsdev.transcript import Step, dump_line, received_block, received_lines

# kind, connection number, time offset, payload length.
FRAME = struct.Struct("<cIdI")
READ_SIZE = 1 << 20


class TranscriptFiles:
    """The open transcripts by connection number; every failure is reported once."""

    def __init__(self, folder: Path, reports: BinaryIO) -> None:
        self._folder = folder
        self._reports = reports
        self._files: dict[int, BinaryIO] = {}
        self._failed: set[int] = set()
        self._touched: set[int] = set()

    def handle(self, kind: bytes, number: int, t: float, payload: bytes) -> None:
        if number in self._failed:
            return
        try:
            if kind == b"O":
                self._open(number, payload)
                return
            file = self._files.get(number)
            if file is None:
                return
            file.write(_lines(kind, t, payload))
            self._touched.add(number)
            if kind == b"X":
                self._touched.discard(number)
                del self._files[number]
                file.close()
        except (OSError, ValueError) as exc:  # a full disk; a name the file system refuses
            self._fail(number, exc)

    def flush(self) -> None:
        """After each read of stdin: what was handed over is on disk for a reader to see."""
        for number in list(self._touched):  # a failure takes its number out
            file = self._files.get(number)
            if file is not None:
                try:
                    file.flush()
                except OSError as exc:
                    self._fail(number, exc)
        self._touched.clear()
        self._reports.flush()

    def close(self) -> None:
        for number, file in list(self._files.items()):
            try:
                file.close()
            except OSError as exc:
                self._fail(number, exc)
        self._files.clear()
        self._reports.flush()

    def _open(self, number: int, payload: bytes) -> None:
        name, _, header = payload.partition(b"\0")
        path = self._folder / name.decode()
        for attempt in range(2, 100):
            try:
                file = open(path, "xb")  # noqa: SIM115 - closed at the connection's end
                break
            except FileExistsError:
                path = path.with_name(name.decode().replace(".jsonl", f"-{attempt}.jsonl"))
        else:
            raise OSError(f"too many transcripts named {name.decode()}")
        self._files[number] = file
        file.write(header)
        self._report({"opened": str(path)})

    def _fail(self, number: int, exc: Exception) -> None:
        self._failed.add(number)
        self._touched.discard(number)
        file = self._files.pop(number, None)
        if file is not None:
            with contextlib.suppress(OSError):
                file.close()
        self._report({"failed": number, "error": str(exc)})

    def _report(self, what: dict[str, object]) -> None:
        self._reports.write(json.dumps(what).encode() + b"\n")


def _lines(kind: bytes, t: float, payload: bytes) -> bytes:
    if kind == b"T":
        return received_block(t, payload)
    if kind == b"B":
        return received_lines(t, (payload,), True)
    if kind == b"S":
        return dump_line(Step("sent", t, payload.decode()).to_json()).encode()
    if kind == b"s":
        return dump_line(Step("sent", t, payload).to_json()).encode()
    if kind == b"E":
        return dump_line(Step("stderr", t, payload.decode()).to_json()).encode()
    return payload  # X: formatted by wsdev


def run(folder: Path, frames: int = 0, reports: BinaryIO = sys.stdout.buffer) -> None:
    """Read frames from descriptor ``frames`` until it closes, writing transcripts."""
    files = TranscriptFiles(folder, reports)
    pending = bytearray()
    header = FRAME.size
    while chunk := os.read(frames, READ_SIZE):
        pending += chunk
        view = memoryview(pending)
        at = 0
        while len(view) - at >= header:
            kind, number, t, length = FRAME.unpack_from(view, at)
            end = at + header + length
            if end > len(view):
                break
            files.handle(kind, number, t, bytes(view[at + header : end]))
            at = end
        view.release()
        del pending[:at]
        files.flush()
    files.close()


def main() -> None:
    # Background work: when the cores are busy, the connections (and the programs) go first,
    # and this process catches up when they are not.
    with contextlib.suppress(OSError):
        os.nice(10)
    run(Path(sys.argv[1]))


if __name__ == "__main__":
    main()
