"""``wsdev test``: replay transcripts against their programs, in pytest's habits (behaviour H2).

One line per transcript as it finishes, then each failure's differences, then a summary line
``N passed, M failed``; the exit status is 0 only when every transcript passed. ``-x`` stops at
the first failure, ``-k`` selects by name, ``-j N`` replays N at a time, ``--update`` rewrites
the transcripts that differ with what the program now replies.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, TextIO

from wsdev import eventloop
from wsdev.errors import UsageError, WsdevError
from wsdev.matching import Mismatch, compare, report, updated
from wsdev.replay import ReplayOptions, replay
from wsdev.transcript import TranscriptError, collect, load, write_atomically

# Exit statuses as pytest has them: some failed, a usage error, nothing to run.
EXIT_FAILED = 1
EXIT_NO_TESTS = 5
DEFAULT_FOLDER = "tests"

USAGE = "wsdev test [OPTIONS] [TRANSCRIPT|DIR]... [-- COMMAND ARGS]"
DESCRIPTION = """\
Replay each transcript's client side against its program and compare the program's replies
with the recorded ones. Folders are searched for *.jsonl; with no TRANSCRIPT or DIR, tests/ is.
The program is the recorded command, run from the current folder, or COMMAND ARGS after '--'.
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"wsdev test: {message} (see wsdev test --help)")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="wsdev test", usage=USAGE, description=DESCRIPTION)
    parser.add_argument("paths", nargs="*", metavar="TRANSCRIPT|DIR")
    parser.add_argument("-x", "--exitfirst", action="store_true", help="stop at the first failure")
    parser.add_argument(
        "-k",
        dest="keyword",
        metavar="EXPR",
        help="only transcripts whose name matches EXPR "
        "(substrings with and, or, not, parentheses; case-insensitive)",
    )
    parser.add_argument(
        "-j", dest="jobs", type=int, default=1, metavar="N", help="replay N transcripts at a time"
    )
    parser.add_argument(
        "--update", action="store_true", help="rewrite transcripts that differ with the new replies"
    )
    parser.add_argument("--stderr", action="store_true", help="compare stderr lines too")
    parser.add_argument(
        "--over-websocket",
        action="store_true",
        help="replay through a real wsdev server and WebSocket client on 127.0.0.1",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=5.0,
        metavar="S",
        help="seconds to wait for each reply and for the program's end (default 5)",
    )
    parser.add_argument(
        "--passenv", metavar="LIST", help="environment variables passed to the program, as wsdev's"
    )
    return parser


@dataclass(frozen=True, slots=True)
class Result:
    path: Path
    passed: bool
    mismatches: tuple[Mismatch, ...] = ()
    error: str = ""  # the transcript could not be read or its program not started
    updated: bool = False
    seconds: float = 0.0

    @property
    def details(self) -> str:
        return self.error or report(list(self.mismatches))


def keyword_matches(expression: str, name: str) -> bool:
    """pytest's ``-k``: substrings of ``name`` joined by ``and``, ``or``, ``not`` and brackets."""
    tokens = re.findall(r"\(|\)|[^\s()]+", expression)
    words = []
    for token in tokens:
        if token in ("and", "or", "not", "(", ")"):
            words.append(token)
        else:
            words.append(str(token.lower() in name.lower()))
    try:
        # Only True, False, and, or, not and brackets can be in it: safe to evaluate.
        return bool(eval(" ".join(words) or "True", {"__builtins__": {}}, {}))
    except SyntaxError:
        raise UsageError(f"wsdev test: -k {expression!r} is not a valid expression") from None


async def run_one(path: Path, options: ReplayOptions, *, stderr: bool, update: bool) -> Result:
    started = time.monotonic()
    try:
        transcript = load(path)
        outcome = await replay(transcript, options)
    except WsdevError as exc:
        return Result(path, False, error=str(exc), seconds=time.monotonic() - started)
    mismatches = compare(transcript, outcome, stderr=stderr)
    seconds = time.monotonic() - started
    if mismatches and update:
        write_atomically(path, updated(transcript, outcome).dumps())
        return Result(path, True, tuple(mismatches), updated=True, seconds=seconds)
    return Result(path, not mismatches, tuple(mismatches), seconds=seconds)


class Progress:
    """The result lines, and on a terminal a progress line below them while many run."""

    def __init__(self, out: TextIO, total: int, *, live: bool) -> None:
        self._out = out
        self._total = total
        self._done = 0
        self._live = live and total > 1

    def result(self, result: Result) -> None:
        self._done += 1
        word = "UPDATED" if result.updated else "PASSED" if result.passed else "FAILED"
        if result.updated:
            word += f" ({len(result.mismatches)} changed)"
        self._clear()
        self._out.write(f"{result.path} {word} ({result.seconds:.2f}s)\n")
        if self._live and self._done < self._total:
            self._out.write(f"[{self._done}/{self._total}] replaying…")
        self._out.flush()

    def _clear(self) -> None:
        if self._live:
            self._out.write("\r\x1b[K")


async def run_all(
    paths: Sequence[Path],
    options: ReplayOptions,
    *,
    jobs: int,
    exitfirst: bool,
    stderr: bool,
    update: bool,
    progress: Progress,
) -> list[Result]:
    results: list[Result] = []
    queue = list(paths)
    stop = False

    async def worker() -> None:
        nonlocal stop
        while queue and not stop:
            path = queue.pop(0)
            result = await run_one(path, options, stderr=stderr, update=update)
            results.append(result)
            progress.result(result)
            if exitfirst and not result.passed:
                stop = True

    await asyncio.gather(*(worker() for _ in range(max(1, jobs))))
    return results


def summary(results: Sequence[Result], seconds: float) -> str:
    passed = sum(1 for r in results if r.passed and not r.updated)
    failed = sum(1 for r in results if not r.passed)
    changed = [r for r in results if r.updated]
    parts = [f"{passed} passed"]
    if failed:
        parts.append(f"{failed} failed")
    if changed:
        replies = sum(len(r.mismatches) for r in changed)
        parts.append(f"{len(changed)} updated ({replies} differences rewritten)")
    return ", ".join(parts) + f" in {seconds:.2f}s"


def main(argv: Sequence[str], out: TextIO | None = None) -> int:
    """``wsdev test ARGS``; errors that are the user's raise ``WsdevError`` to the caller."""
    out = sys.stdout if out is None else out
    args = list(argv)
    command: list[str] = []
    if "--" in args:
        split = args.index("--")
        args, command = args[:split], args[split + 1 :]
        if not command:
            raise UsageError("wsdev test: nothing after '--': give COMMAND ARGS or leave '--' out")
    parsed = _parser().parse_args(args)
    if parsed.jobs < 1:
        raise UsageError("wsdev test: -j needs a number of at least 1")
    if parsed.timeout <= 0:
        raise UsageError("wsdev test: --timeout needs a positive number of seconds")
    names = parsed.paths or [DEFAULT_FOLDER]
    try:
        paths = collect(names)
    except TranscriptError as exc:
        if parsed.paths:
            raise
        raise UsageError(f"wsdev test: {exc}: give transcripts or folders of them") from None
    if parsed.keyword:
        paths = [p for p in paths if keyword_matches(parsed.keyword, str(p))]
    if not paths:
        out.write(f"no transcripts found in {', '.join(names)}\n")
        return EXIT_NO_TESTS
    options = ReplayOptions(
        command=tuple(command),
        over_websocket=parsed.over_websocket,
        timeout=parsed.timeout,
        passenv=parsed.passenv,
    )
    started = time.monotonic()
    progress = Progress(out, len(paths), live=out.isatty())
    results = eventloop.run(
        run_all(
            paths,
            options,
            jobs=parsed.jobs,
            exitfirst=parsed.exitfirst,
            stderr=parsed.stderr,
            update=parsed.update,
            progress=progress,
        )
    )
    failures = [r for r in results if not r.passed]
    if failures:
        out.write("\n==== FAILURES ====\n")
        for result in failures:
            out.write(f"\n---- {result.path} ----\n{result.details}\n")
        out.write("\n")
    out.write(summary(results, time.monotonic() - started) + "\n")
    return EXIT_FAILED if failures else 0
