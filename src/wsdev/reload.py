"""Restart on edit: watch the program's files and restart its connections when they change (D1–D2).

The reloader is a supervisor loop in uvicorn's style, ``for changes in watcher: restart()``:
watchfiles coalesces a burst of saves (an editor writing a temp file and renaming it) into one
batch, and each batch closes every live connection with 1012 once. New connections simply run
the program as it is on disk now.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import watchfiles

from wsdev.config import Config

logger = logging.getLogger(__name__)
# watchfiles logs "N changes detected" at INFO; our own restart line says more.
logging.getLogger("watchfiles").setLevel(logging.WARNING)

# How long the watcher waits for a burst of writes to settle before reporting it.
STEP_MS = 50


class Restartable(Protocol):
    def restart(self, files: Sequence[str]) -> None: ...


def watched_paths(config: Config) -> tuple[Path, ...]:
    """What to watch: ``--watch``, else the script (and the working folder when it holds it)."""
    from wsdev.cli import script_of

    if config.watch:
        return config.watch
    cwd = Path.cwd().resolve()
    if config.script_dir is not None:
        return (config.script_dir,)
    script = script_of(config)
    if script is None:
        return ()
    script = script.resolve()
    if script.is_relative_to(cwd):
        return (cwd,)
    return (script,)


class _Filter(watchfiles.DefaultFilter):
    """watchfiles' ignores (.git, __pycache__, node_modules, swap files…), plus wsdev's own output.

    ``wsdev ./bot.py > wsdev.log`` in the watched folder must not restart on every log line.
    """

    def __init__(self, own_outputs: frozenset[str], ignore_paths: Sequence[Path] = ()) -> None:
        super().__init__(
            ignore_entity_patterns=(*self.ignore_entity_patterns, r"\.log$"),
            ignore_paths=ignore_paths,  # --record's folder: transcripts are output (H1)
        )
        self._own_outputs = own_outputs

    def __call__(self, change: watchfiles.Change, path: str) -> bool:
        return path not in self._own_outputs and super().__call__(change, path)


def _own_output_files() -> frozenset[str]:
    """The files wsdev's stdout and stderr are redirected to, if they are files."""
    names = set()
    for fd in (1, 2):
        try:
            names.add(os.path.realpath(f"/proc/self/fd/{fd}"))
        except OSError:
            continue
    return frozenset(n for n in names if os.path.isfile(n))


class Reloader:
    def __init__(
        self, paths: Sequence[Path], server: Restartable, ignore: Sequence[Path] = ()
    ) -> None:
        self._paths = tuple(paths)
        self._server = server
        self._filter = _Filter(_own_output_files(), ignore)

    def _display(self, path: str) -> str:
        try:
            return os.path.relpath(path)
        except ValueError:
            return path

    async def run(self, stop: asyncio.Event) -> None:
        async for changes in watchfiles.awatch(
            *self._paths,
            watch_filter=self._filter,
            stop_event=stop,
            step=STEP_MS,
            debounce=1600,
            raise_interrupt=False,
            ignore_permission_denied=True,
        ):
            files = sorted({self._display(path) for _, path in changes})
            self._server.restart(files)
