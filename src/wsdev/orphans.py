"""Descendants that escape their process group: adopted, reaped, ended at shutdown (behaviour B6).

The escalation signals a child's whole process group (B8), but a grandchild that calls
``setsid`` leaves that group and would outlive wsdev. On Linux wsdev therefore makes itself a
*child subreaper* (``prctl(PR_SET_CHILD_SUBREAPER)``): such a grandchild, once its parent is gone,
is re-parented to wsdev instead of to init. wsdev reaps these adopted processes once they exit
(it looks every few seconds) and kills whatever is left when it shuts down. Where the kernel
offers no subreaper (macOS, old Linux), this module does nothing and says so at debug level.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import sys
from collections.abc import Callable, Collection
from pathlib import Path

logger = logging.getLogger(__name__)

PR_SET_CHILD_SUBREAPER = 36
REAP_EVERY_SECONDS = 5.0


def become_subreaper() -> bool:
    """Ask the kernel to re-parent orphaned descendants to this process (Linux only)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        ok = bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        ok = False
    if not ok:
        logger.debug("no child subreaper: escaped grandchildren cannot be tracked")
    return ok


def children() -> list[int]:
    """The pids of this process's children, from /proc (empty where there is no /proc)."""
    pids: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path("/proc/self/task").iterdir():
            with contextlib.suppress(OSError):
                pids.extend(int(p) for p in (task / "children").read_text().split())
    return pids


def _started_by_a_program(pid: int) -> bool:
    from wsdev.environ import SERVER_SOFTWARE

    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return f"SERVER_SOFTWARE={SERVER_SOFTWARE}".encode() in environ.split(b"\0")


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] == "Z"


class OrphanReaper:
    """Reaps adopted orphans as they exit; ``kill_all`` ends every one left at shutdown.

    ``own`` returns the pids wsdev started itself (their exits are awaited elsewhere and must
    not be taken from those waiters).
    """

    def __init__(self, own: Callable[[], Collection[int]]) -> None:
        self._own = own
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        if not become_subreaper():
            return
        self._loop = asyncio.get_running_loop()
        self._schedule()

    def _schedule(self) -> None:
        # A timer rather than SIGCHLD: every connection's child exit would wake the loop for a
        # look that almost never finds anything; an adopted zombie can wait a few seconds.
        assert self._loop is not None
        self._timer = self._loop.call_later(REAP_EVERY_SECONDS, self._tick)

    def _tick(self) -> None:
        self.reap()
        self._schedule()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def adopted(self) -> list[int]:
        own = set(self._own())
        return [pid for pid in children() if pid not in own]

    def reap(self) -> None:
        for pid in self.adopted():
            if _is_zombie(pid):
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)

    def kill_all(self) -> int:
        """SIGKILL every adopted process that came from a served program, and reap it.

        Only processes whose environment carries wsdev's SERVER_SOFTWARE are ended: a browser
        that ``--open`` launched is adopted too once its launcher exits, and must live on.
        """
        adopted = [pid for pid in self.adopted() if _started_by_a_program(pid)]
        for pid in adopted:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if os.getpgid(pid) == pid:
                    os.killpg(pid, signal.SIGKILL)
                else:
                    os.kill(pid, signal.SIGKILL)
        for pid in adopted:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self.reap()
        return len(adopted)
