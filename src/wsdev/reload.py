"""Restart on edit: watch the program's files and restart its connections when they change (D1–D2).

The reloader is a supervisor loop in uvicorn's style: the watcher gathers changed files, and the
restarter closes every live connection with 1012 once per burst. A burst ends after ``QUIET_S``
without a change (an editor's save is several writes; a formatter on save is a second save), and
a restart is not followed by the next until the programs it closed have ended, so there is never
more than one in flight. New connections simply run the program as it is on disk now. Under
``--reload=new`` the restart closes nothing (open connections keep their program), so there is
nothing to wait for.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import watchfiles

from wsdev.watchset import WatchSet

logger = logging.getLogger(__name__)
# watchfiles logs "N changes detected" at INFO; our own restart line says more.
logging.getLogger("watchfiles").setLevel(logging.WARNING)

# How often the watcher looks at what it has gathered. watchfiles' own grouping of a burst
# cannot be relied on: it ends a group when the set of changed files stops growing, so the
# second save of the same file already makes a new group. The quiet period is ours.
STEP_MS = 25
# A burst of saves is one restart: it ends after this much quiet (D2).
QUIET_S = 0.15
# A program that ignores SIGINT may take the whole A4 escalation to end; a restart waits for the
# old programs no longer than this before the next one may start.
IN_FLIGHT_LIMIT_S = 5.0


class Restartable(Protocol):
    def restart(self, files: Sequence[str]) -> Sequence[asyncio.Future[None]]:
        """Close every live session with 1012 (none under --reload=new); returns the endings of
        the programs closed."""
        ...


class _Filter(watchfiles.DefaultFilter):
    """watchfiles' ignores (.git, __pycache__, node_modules, swap files…), the files outside the
    watch set, and wsdev's own output.

    ``wsdev ./bot.py > wsdev.log`` in the watched folder must not restart on every log line.
    """

    def __init__(
        self, watched: WatchSet, own_outputs: frozenset[str], ignore_paths: Sequence[Path] = ()
    ) -> None:
        super().__init__(
            ignore_dirs=(*self.ignore_dirs, "venv", "site-packages", ".ruff_cache"),
            ignore_entity_patterns=(*self.ignore_entity_patterns, r"\.log$"),
            ignore_paths=ignore_paths,  # --record's folder: transcripts are output (H1)
        )
        self._watched = watched
        self._own_outputs = own_outputs

    def __call__(self, change: watchfiles.Change, path: str) -> bool:
        return (
            path not in self._own_outputs
            and super().__call__(change, path)
            and self._watched.wants(path)
        )


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
        self,
        watched: WatchSet,
        server: Restartable,
        after: Callable[[], None] | None = None,
        ignore: Sequence[Path] = (),
    ) -> None:
        """``after`` runs after each restart (to look the edited program over again);
        ``ignore``: folders whose changes never restart (wsdev's own output)."""
        self._watched = watched
        self._server = server
        self._after = after
        self._filter = _Filter(watched, _own_output_files(), ignore)
        self._pending: set[str] = set()
        self._changed = asyncio.Event()
        self._last_change = 0.0

    def _display(self, path: str) -> str:
        try:
            return os.path.relpath(path)
        except ValueError:
            return path

    async def run(self, stop: asyncio.Event) -> None:
        """Watch until ``stop`` is set (or the task is cancelled).

        The watcher sets its watches up in this coroutine's first step, so a caller that lets
        that step run knows no later save is missed.
        """
        loop = asyncio.get_running_loop()
        restarter = asyncio.ensure_future(self._restart_after_quiet())
        try:
            async for changes in watchfiles.awatch(
                *self._watched.roots,
                watch_filter=self._filter,
                stop_event=stop,
                step=STEP_MS,
                raise_interrupt=False,
                ignore_permission_denied=True,
            ):
                self._pending.update(self._display(path) for _, path in changes)
                self._last_change = loop.time()
                self._changed.set()
        finally:
            restarter.cancel()

    async def _restart_after_quiet(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._changed.wait()
            while (left := self._last_change + QUIET_S - loop.time()) > 0:
                await asyncio.sleep(left)
            self._changed.clear()
            files = sorted(self._pending)
            self._pending.clear()
            try:
                endings = self._server.restart(files)
                if self._after is not None:
                    self._after()
            except Exception:
                logger.exception("restart failed", extra={"category": "server"})
                continue
            if endings:
                # One restart in flight (D2): saves made meanwhile make the next one.
                await asyncio.wait(endings, timeout=IN_FLIGHT_LIMIT_S)
