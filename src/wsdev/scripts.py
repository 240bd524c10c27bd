"""What a program file says about itself: whether it is Python (B9), and the mistakes that stop
it from running at all (F), each with a hint that says what to do.

Only the first bytes of the file are read, so this is cheap enough to ask at every connection
of ``--dir`` mode, where any file in the folder may be the program.
"""

from __future__ import annotations

import errno
import itertools
import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from wsdev.config import Config

# Enough for any real #! line, and for telling text from a compiled program.
HEAD_BYTES = 512
PYTHON_SUFFIXES = (".py", ".pyw")
# A --dir folder is looked over at start-up up to this many entries (a huge one is not read).
STARTUP_SCAN_LIMIT = 200
# A compiled program starts with one of these; it needs no #! line.
_BINARY_MAGIC = (b"\x7fELF", b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xca\xfe\xba\xbe", b"MZ")


@dataclass(frozen=True, slots=True)
class ScriptFacts:
    """What the head of a program file tells: Python or not, and why it cannot run (if so)."""

    python: bool
    problem: str | None  # one line: what is wrong and what to do


def read_head(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(HEAD_BYTES)
    except OSError:
        return b""


def inspect_script(path: Path, *, command_mode: bool = False) -> ScriptFacts:
    """The facts of the program file ``path``, run directly (as ``./bot.py`` or under ``--dir``).

    ``command_mode`` adds the advice that only makes sense on wsdev's command line (running the
    file through its interpreter instead).
    """
    head = read_head(path)
    first = head.split(b"\n", 1)[0]
    python = path.suffix in PYTHON_SUFFIXES or (first.startswith(b"#!") and b"python" in first)
    return ScriptFacts(python, _problem(path, head, python, command_mode=command_mode))


def _problem(path: Path, head: bytes, python: bool, *, command_mode: bool) -> str | None:
    name = path.name
    if head.startswith(b"#!"):
        first = head.split(b"\n", 1)[0]
        if first.endswith(b"\r"):
            # The kernel (or env) looks for "python3\r": "/usr/bin/env: 'python3\r'".
            return (
                f"{name} has Windows line endings (CRLF), so its #! line names a program that"
                f" does not exist; convert it to LF (dos2unix {shlex.quote(name)}, or the"
                " line-ending setting of your editor)"
            )
        return None
    if not _is_text(head):
        return None  # empty (the editor is still writing it) or a compiled program
    if not os.access(path, os.X_OK):
        return None  # not meant to be run (a README beside the programs); exec says so
    # A text file without #!: exec fails with "Exec format error" on every connection.
    return no_shebang_hint(path, python, command_mode=command_mode)


def no_shebang_hint(path: Path, python: bool, *, command_mode: bool) -> str:
    name = shlex.quote(path.name)
    if python:
        advice = "add #!/usr/bin/env python3 as its first line"
        if command_mode:
            advice += f", or run it as: wsdev python3 {name}"
    else:
        advice = "add a #! line naming its interpreter (e.g. #!/bin/sh) as its first line"
    return f"{path.name} has no #! line, so it cannot be run directly; {advice}"


def spawn_failure_hint(program: str, exc: OSError, *, command_mode: bool) -> str | None:
    """What to do when starting ``program`` failed with ``exc``, when the reason is a known one."""
    if exc.errno != errno.ENOEXEC:
        return None
    path = Path(program)
    return no_shebang_hint(path, inspect_script(path).python, command_mode=command_mode)


def is_script_file(path: Path) -> bool:
    """A program file people edit: a #! script, or text meant to be one (not a compiled program)."""
    return _is_text(read_head(path))


def _is_text(head: bytes) -> bool:
    return bool(head) and not head.startswith(_BINARY_MAGIC) and b"\0" not in head


def startup_problems(config: Config) -> list[str]:
    """The one-line hints for the programs wsdev will run, checked once at start-up (F).

    COMMAND when it is the script itself (``wsdev ./bot.py``); under ``--dir``, the programs at
    the top of the folder (the rest are checked when a connection asks for them).
    """
    if config.command:
        program = Path(config.command[0])
        problem = inspect_script(program, command_mode=True).problem
        return [problem] if problem else []
    if config.script_dir is None:
        return []
    problems = []
    try:
        entries = sorted(itertools.islice(config.script_dir.iterdir(), STARTUP_SCAN_LIMIT))
    except OSError:
        return []
    for entry in entries:
        if entry.is_file():
            problem = inspect_script(entry).problem
            if problem:
                problems.append(problem)
    return problems


def is_python_command(program: str) -> bool:
    """Whether COMMAND runs Python: a python interpreter, or a script that is Python (B9)."""
    path = Path(program)
    if path.name.startswith("python"):
        return True
    return inspect_script(path).python
