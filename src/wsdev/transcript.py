"""The transcript format: one connection as JSON lines (behaviour H1; ``docs/transcripts.md``).

The first line is the header (what ran, how, for which request); every line after it is one
event of the connection with its time offset ``t`` in seconds: ``sent`` (the client's message),
``received`` (the program's), ``stderr``, ``close`` and ``exit``. Binary messages are base64 with
``"binary": true``. A ``received`` line may carry a matching rule (``"match": "regex"`` or
``"match": "json"`` with ``"ignore"``), which ``wsdev test`` honours and ``--update`` keeps.

The recorder, the console's download and ``wsdev test --update`` all write through this module,
so the three can never disagree about the format.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wsdev.errors import WsdevError

FORMAT = 1
KINDS = ("sent", "received", "stderr", "close", "exit")

# The bytes JSON must escape in a string. Text without any (stdout is valid UTF-8 by then, B3)
# can stand between the quotes as it is, so a batch of such lines is formatted at once.
_ESCAPED = bytes(range(0x20)) + b'"\\'
_ESCAPED_BUT_NEWLINE = _ESCAPED.replace(b"\n", b"")


class TranscriptError(WsdevError):
    """A transcript that cannot be read: the file and line, and what is wrong there."""


@dataclass(frozen=True, slots=True)
class Header:
    """What ran, how, and for which request; enough to start the program again."""

    command: str  # as typed after ``wsdev`` (the script's path under --dir)
    path: str
    query: str = ""
    binary: bool = False
    headers: tuple[tuple[str, str], ...] = ()
    version: str = ""
    started: str = ""  # local wall-clock time, ISO 8601
    extra: Mapping[str, Any] = field(default_factory=dict)  # unknown keys, kept by --update

    def to_json(self) -> dict[str, Any]:
        return {
            "wsdev": self.version,
            "format": FORMAT,
            "command": self.command,
            "mode": "binary" if self.binary else "text",
            "path": self.path,
            "query": self.query,
            "headers": [list(pair) for pair in self.headers],
            "started": self.started,
            **self.extra,
        }


@dataclass(frozen=True, slots=True)
class Step:
    """One event line. ``data``: text, bytes (binary), or ``close``'s code and ``exit``'s status
    (``None`` when a signal ended the program: ``extra`` then names it)."""

    kind: str
    t: float
    data: str | bytes | int | None
    rule: Mapping[str, Any] = field(default_factory=dict)  # "match"/"ignore" of a received line
    extra: Mapping[str, Any] = field(default_factory=dict)  # close's reason/by, exit's signal

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"t": round(self.t, 6)}
        if isinstance(self.data, bytes):
            out[self.kind] = base64.b64encode(self.data).decode("ascii")
            out["binary"] = True
        else:
            out[self.kind] = self.data
        out.update(self.extra)
        out.update(self.rule)
        return out


@dataclass(frozen=True, slots=True)
class Transcript:
    header: Header
    steps: tuple[Step, ...]
    source: Path | None = None

    @property
    def name(self) -> str:
        return self.source.name if self.source is not None else "<transcript>"

    def of_kind(self, kind: str) -> list[Step]:
        return [step for step in self.steps if step.kind == kind]

    def dumps(self) -> str:
        return "".join(dump_line(obj) for obj in self.lines())

    def lines(self) -> Iterable[dict[str, Any]]:
        yield self.header.to_json()
        for step in self.steps:
            yield step.to_json()


def dump_line(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"


def received_lines(
    t: float, payloads: Sequence[bytes], binary: bool, block: bytes | None = None
) -> bytes:
    """The ``received`` lines of one read of the program's stdout, as UTF-8 bytes.

    The recorder's hot path. Only the first line of the batch has its ``t`` (the others share
    it), and a batch of plain text (what a flood usually is) is formatted in C: from ``block``
    (the payloads each followed by a newline) with one replace, or with one join; only a batch
    with something to escape goes through ``json`` line by line.
    """
    first = f'{{"t":{t:.6f},"received":"'.encode()
    if binary:
        encoded = [base64.b64encode(p) for p in payloads]
        return b"".join((first, _BINARY_BETWEEN.join(encoded), b'","binary":true}\n'))
    if block is not None:
        return received_block(t, block)
    joined = b"".join(payloads)
    if len(joined.translate(None, _ESCAPED)) == len(joined):
        return b"".join((first, _TEXT_BETWEEN.join(payloads), b'"}\n'))
    lines = [json.dumps(p.decode(errors="replace"), ensure_ascii=False).encode() for p in payloads]
    return first[:-1] + b'}\n{"received":'.join(lines) + b"}\n"


def received_block(t: float, block: bytes) -> bytes:
    """``received_lines`` of text lines as read from stdout: each followed by a newline.

    Text with nothing to escape is formatted from the block with one replace; the rest goes
    line by line.
    """
    if len(block.translate(None, _ESCAPED_BUT_NEWLINE)) == len(block):
        first = f'{{"t":{t:.6f},"received":"'.encode()
        return b"".join((first, block[:-1].replace(b"\n", _TEXT_BETWEEN), b'"}\n'))
    return received_lines(t, block[:-1].split(b"\n"), False)


_TEXT_BETWEEN = b'"}\n{"received":"'
_BINARY_BETWEEN = b'","binary":true}\n{"received":"'


# ---------------------------------------------------------------- reading


def load(path: Path) -> Transcript:
    """Read the transcript at ``path``; a bad file raises ``TranscriptError`` naming the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TranscriptError(f"{path}: cannot read: {exc}") from None
    return loads(text, path)


def loads(text: str, source: Path | None = None) -> Transcript:
    where = str(source) if source is not None else "<transcript>"
    header: Header | None = None
    steps: list[Step] = []
    t = 0.0
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TranscriptError(f"{where}:{number}: not JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise TranscriptError(f"{where}:{number}: expected a JSON object")
        try:
            if header is None:
                header = _header(obj)
            else:
                # A line without ``t`` happened when the line before it did.
                t = float(obj.get("t", t))
                steps.append(_step(obj, t))
        except (KeyError, TypeError, ValueError) as exc:
            raise TranscriptError(f"{where}:{number}: {exc}") from None
    if header is None:
        raise TranscriptError(f"{where}: empty (a transcript starts with its header line)")
    return Transcript(header, tuple(steps), source)


_HEADER_KEYS = {"wsdev", "format", "command", "mode", "path", "query", "headers", "started"}


def _header(obj: dict[str, Any]) -> Header:
    if "command" not in obj or "path" not in obj:
        raise ValueError("the first line must be the header, with 'command' and 'path'")
    mode = obj.get("mode", "text")
    if mode not in ("text", "binary"):
        raise ValueError(f"mode {mode!r}: use 'text' or 'binary'")
    headers = obj.get("headers") or []
    if not all(isinstance(h, list) and len(h) == 2 for h in headers):
        raise ValueError("headers must be a list of [name, value] pairs")
    return Header(
        command=str(obj["command"]),
        path=str(obj["path"]),
        query=str(obj.get("query", "")),
        binary=mode == "binary",
        headers=tuple((str(n), str(v)) for n, v in headers),
        version=str(obj.get("wsdev", "")),
        started=str(obj.get("started", "")),
        extra={k: v for k, v in obj.items() if k not in _HEADER_KEYS},
    )


def _step(obj: dict[str, Any], t: float) -> Step:
    kinds = [k for k in KINDS if k in obj]
    if len(kinds) != 1:
        raise ValueError(f"an event line has exactly one of {', '.join(KINDS)}")
    kind = kinds[0]
    value = obj[kind]
    data: str | bytes | int | None
    if kind in ("sent", "received", "stderr"):
        if not isinstance(value, str):
            raise ValueError(f"{kind} must be a string")
        data = base64.b64decode(value, validate=True) if obj.get("binary") else value
    else:
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise ValueError(f"{kind} must be a whole number or null")
        data = value
    rule: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, item in obj.items():
        if key in ("t", kind, "binary"):
            continue
        if key in ("match", "ignore"):
            rule[key] = item
        else:
            extra[key] = item
    if rule:
        if kind != "received":
            raise ValueError("'match' and 'ignore' belong on a received line")
        _check_rule(rule)
    return Step(kind, t, data, rule, extra)


def _check_rule(rule: Mapping[str, Any]) -> None:
    match = rule.get("match", "exact")
    if match not in ("exact", "regex", "json"):
        raise ValueError(f"match {match!r}: use 'exact', 'regex' or 'json'")
    ignore = rule.get("ignore", [])
    if not isinstance(ignore, list) or not all(isinstance(k, str) for k in ignore):
        raise ValueError("ignore must be a list of key names")
    if "ignore" in rule and match != "json":
        raise ValueError('\'ignore\' needs "match": "json"')


# ---------------------------------------------------------------- finding transcripts


def collect(paths: Sequence[str]) -> list[Path]:
    """The transcripts ``paths`` name: files as given, folders searched for ``*.jsonl``."""
    found: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*.jsonl") if p.is_file())
        elif path.is_file():
            found.append(path)
        else:
            raise TranscriptError(f"{name}: no such file or folder")
    return found


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` whole, so an interrupted ``--update`` never leaves half a transcript."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
