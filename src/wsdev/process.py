"""Child processes: spawning one per connection, waiting for it, ending it (behaviour A2, A4, B8).

Each child is started with ``posix_spawn`` straight into a process group of its own (no shell,
no helper thread), so the SIGINT → SIGTERM → SIGKILL escalation reaches a shell script's own
children too. Its exit is noticed through a pidfd on Linux, or through SIGCHLD elsewhere;
either way no thread waits for it. A program that wsdev's spawn helper started (``spawner``,
behaviour B16) has the same ``Child``, its exit reported by the helper.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar, Protocol

from wsdev.events import ExitStatus
from wsdev.spawnwire import start_program

logger = logging.getLogger(__name__)

# How often a group that outlived its child is checked for having ended.
GROUP_POLL_SECONDS = 0.01


def escalation_delays(closems: int) -> tuple[tuple[float, signal.Signals], ...]:
    """Seconds to wait before each signal, counted from the previous step (behaviour A4)."""
    extra = closems / 1000
    return (
        (0.100 + extra, signal.SIGINT),
        (0.250 + extra, signal.SIGTERM),
        (0.500 + extra, signal.SIGKILL),
    )


class ExitReporter(Protocol):
    """Who reaps a child that wsdev did not start itself (the spawn helper)."""

    def collect(self) -> None:
        """Deliver any exit already known, now."""


class Child:
    """One running program; ``exited`` resolves with its exit status.

    ``stdin``, ``stdout`` and ``stderr`` are our ends of its pipes: raw fds, the caller's to close.
    ``on_exit``, if set, is called as soon as the child has been reaped, before anything
    awaiting ``exited`` resumes (it must be quick and must not raise).
    """

    __slots__ = (
        "_exit_waiters",
        "_loop",
        "_pidfd",
        "_reporter",
        "exited",
        "on_exit",
        "pid",
        "stderr",
        "stdin",
        "stdout",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        pid: int,
        stdin: int,
        stdout: int,
        stderr: int,
        reported_by: ExitReporter | None = None,
    ) -> None:
        self._loop = loop
        self.pid = pid
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.exited: asyncio.Future[ExitStatus] = loop.create_future()
        self._exit_waiters: list[asyncio.Future[None]] = []
        self.on_exit: Callable[[], object] | None = None
        self._pidfd = -1
        # Started by the spawn helper, which reaps it and reports its exit (``exit_reported``).
        self._reporter = reported_by
        if reported_by is None:
            self._watch_exit()

    @property
    def running(self) -> bool:
        return not self.exited.done()

    def poll(self) -> bool:
        """Reap the child now if it has exited, ahead of the loop's report of its exit.

        True once it has been reaped. A program's exit and the end of its output come
        together: whoever sees the one can look for the other at once.
        """
        if self._reporter is not None:
            self._reporter.collect()
            return self.exited.done()
        return self._reap(block=False)

    def exit_reported(self, status: int) -> None:
        """The spawn helper has reaped the child: ``status`` as ``waitpid`` gave it."""
        if not self.exited.done():
            self._exited(status)

    def watch_here(self) -> None:
        """The spawn helper has gone: wsdev, the child's subreaper now, watches it itself."""
        if self._reporter is not None and not self.exited.done():
            self._reporter = None
            track(self.pid)
            self._watch_exit()

    def group_alive(self) -> bool:
        """Whether any process of the child's group (the child or what it started) is left."""
        try:
            os.killpg(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def signal_group(self, sig: int) -> bool:
        """Send ``sig`` to the whole process group; False when nobody was left to receive it."""
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            return False
        except PermissionError:
            # A member changed its credentials (setuid): signal at least our direct child.
            if self.running:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, sig)
        return True

    async def end(self, closems: int) -> ExitStatus:
        """Escalate SIGINT → SIGTERM → SIGKILL until the child and its group are gone.

        The caller closes stdin first; every step's time counts from there. A step is skipped
        once the child has exited and no process of its group is left. A group that outlives
        the child (a shell script's background job) gets the same steps on the same schedule,
        so it too has time to clean up after SIGINT and SIGTERM.
        """
        loop = self._loop
        due = loop.time()
        for delay, sig in escalation_delays(closems):
            due += delay
            if self.running:
                await self._exit_within(max(0.0, due - loop.time()))
            if not self.running and not await self._group_outlives(due):
                break
            self.signal_group(sig)
        return await self.exited

    async def _group_outlives(self, due: float) -> bool:
        """Whether a process of the (exited) child's group is still there at ``due``."""
        while self._reap_adopted() or self.group_alive():
            remaining = due - self._loop.time()
            if remaining <= 0:
                return True
            # Nothing announces the end of a process that is not our child: look now and then.
            await asyncio.sleep(min(GROUP_POLL_SECONDS, remaining))
        return False

    def _reap_adopted(self) -> bool:
        """Collect the members of the exited child's group that wsdev adopted (its subreaper,
        behaviour B6) and that have ended. Always False: it only clears the way for
        ``group_alive``, since a zombie is still a member of its group for ``killpg``, and one
        left for the periodic reaper would hold up the close until the SIGKILL step.

        Only called once the child itself is reaped, so its own status cannot be taken here.
        """
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-self.pid, os.WNOHANG)[0] != 0:
                pass
        return False

    async def _exit_within(self, delay: float) -> None:
        """Wait until the child has exited, or ``delay`` seconds.

        Lighter than ``asyncio.wait``: the reaper wakes the waiter itself, one loop turn sooner
        than a done callback on ``exited`` would, and that turn is on every connection's close.
        """
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._exit_waiters.append(waiter)
        timer = self._loop.call_later(delay, _wake, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            with contextlib.suppress(ValueError):
                self._exit_waiters.remove(waiter)

    def _watch_exit(self) -> None:
        if _PIDFD_WORKS:
            try:
                self._pidfd = os.pidfd_open(self.pid)
            except OSError:
                pass
            else:
                self._loop.add_reader(self._pidfd, self._reap, True)
                return
        _SigchldReaper.for_loop(self._loop).add(self)

    def _reap(self, block: bool) -> bool:
        """Collect the exit status if the child has exited; True once it has been reaped."""
        if self.exited.done():
            return True  # already, by ``poll``
        try:
            pid, status = os.waitpid(self.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            # Someone else reaped it (an old-style child watcher): the status is lost.
            pid, status = self.pid, 255 << 8
        if pid == 0:
            return False
        if self._pidfd >= 0:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = -1
        untrack(self.pid)
        self._exited(status)
        return True

    def _exited(self, status: int) -> None:
        self.exited.set_result(ExitStatus.from_wait_status(status))
        for waiter in self._exit_waiters:
            _wake(waiter)
        if self.on_exit is not None:
            self.on_exit()


def spawn(argv: Sequence[str], env: Mapping[str, str], cwd: str | None = None) -> Child:
    """Start ``argv`` (argv[0] an absolute path) in a new process group, with fresh pipes.

    Raises ``OSError`` when the program cannot be executed.
    """
    loop = asyncio.get_running_loop()
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        if cwd is None and hasattr(os, "posix_spawn"):
            pid = start_program(argv, dict(env), in_r, out_w, err_w)
        else:
            pid = _spawn_portable(argv, env, cwd, in_r, out_w, err_w)
    except BaseException as exc:
        for fd in (in_r, in_w, out_r, out_w, err_r, err_w):
            os.close(fd)
        if isinstance(exc, ValueError):
            # A NUL byte in an argument or variable (a request for "/%00"): no program can
            # be given that, so it is a failure to start, not a bug.
            raise OSError(errno.EINVAL, f"cannot start a program with {exc}") from None
        raise
    for fd in (in_r, out_w, err_w):
        os.close(fd)
    track(pid)
    return Child(loop, pid, in_w, out_r, err_r)


def _spawn_portable(
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: str | None,
    stdin: int,
    stdout: int,
    stderr: int,
) -> int:
    """Fallback spawn through ``subprocess`` (needed for a working directory of its own)."""
    import subprocess

    group: dict[str, object] = (
        {"process_group": 0} if sys.version_info >= (3, 11) else {"start_new_session": True}
    )
    proc = subprocess.Popen(
        list(argv),
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        env=dict(env),
        cwd=cwd,
        close_fds=True,
        restore_signals=True,
        **group,  # type: ignore[call-overload]
    )
    # We reap the child ourselves; stop subprocess from trying again later.
    proc.returncode = 0
    return int(proc.pid)


# ---------------------------------------------------------------- which processes are ours

_OWN_PIDS: set[int] = set()


def track(pid: int) -> None:
    """Note a process wsdev started and will wait for itself (CGI scripts register too)."""
    _OWN_PIDS.add(pid)


def untrack(pid: int) -> None:
    _OWN_PIDS.discard(pid)


def own_pids() -> frozenset[int]:
    """Children wsdev started and still waits for: not orphans to be reaped by anyone else."""
    return frozenset(_OWN_PIDS)


# ---------------------------------------------------------------- waiting for exits


def abandon(child: Child, closems: int = 0) -> None:
    """Close our pipe ends and end the child as a disconnect would, with nobody waiting."""
    for fd in (child.stdin, child.stdout, child.stderr):
        os.close(fd)
    ending = asyncio.ensure_future(child.end(closems))
    _ABANDONED.add(ending)
    ending.add_done_callback(_ABANDONED.discard)


# Children being ended by ``abandon`` (a task needs an owner, or it may be collected).
_ABANDONED: set[asyncio.Future[ExitStatus]] = set()


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _pidfd_supported() -> bool:
    if not hasattr(os, "pidfd_open"):
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:
        return False
    return True


_PIDFD_WORKS = _pidfd_supported()


class _SigchldReaper:
    """Portable fallback (macOS, old kernels): reap our children when SIGCHLD arrives."""

    _by_loop: ClassVar[dict[asyncio.AbstractEventLoop, _SigchldReaper]] = {}

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._children: dict[int, Child] = {}
        loop.add_signal_handler(signal.SIGCHLD, self._on_sigchld)

    @classmethod
    def for_loop(cls, loop: asyncio.AbstractEventLoop) -> _SigchldReaper:
        reaper = cls._by_loop.get(loop)
        if reaper is None:
            reaper = cls._by_loop[loop] = cls(loop)
        return reaper

    def add(self, child: Child) -> None:
        self._children[child.pid] = child
        # It may have exited before we were listening.
        self._on_sigchld()

    def _on_sigchld(self) -> None:
        for pid, child in list(self._children.items()):
            if child.poll():
                del self._children[pid]
