"""Starting programs through the spawn helper, off the event loop (behaviour B16).

``Spawner.start`` launches ``wsdev.spawnhelper`` over a ``SOCK_SEQPACKET`` socket pair;
``Spawner.spawn`` makes a program's three pipes, hands the helper their far ends and calls back
with a ``process.Child`` once the helper has started it, or with the ``OSError`` it met. A
program's exit comes back from the helper too, and goes to its ``Child``.

Until the helper is ready, when a request is too big for it, or after it is gone, programs are
started in wsdev itself (``process.spawn``): the helper makes wsdev faster, never necessary.
If it dies, the programs it started are wsdev's own (wsdev is their subreaper, behaviour B6) and
are watched from here.
"""

from __future__ import annotations

import array
import asyncio
import errno
import logging
import os
import socket
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Mapping, Sequence

from wsdev.process import Child, spawn, track, untrack
from wsdev.spawnwire import (
    MAX_REQUEST,
    REPLY_BUFFER,
    decode_replies,
    encode_request,
)

logger = logging.getLogger(__name__)

# How long the helper may take to end once its socket is closed (it ends at once).
HELPER_EXIT_SECONDS = 5.0

Started = Callable[[Child | OSError], object]


class _Request:
    __slots__ = ("done", "ours")

    def __init__(self, ours: tuple[int, int, int], done: Started) -> None:
        self.ours = ours  # our ends: stdin to write, stdout and stderr to read
        self.done = done


class Spawner:
    """wsdev's end of the spawn helper; see the module's text."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sock: socket.socket | None = None
        self._helper: subprocess.Popen[bytes] | None = None
        self.ready = False
        self._next_id = 0
        self._waiting: dict[int, _Request] = {}
        self._children: dict[int, Child] = {}  # running programs the helper started, by pid
        self._unsent: deque[tuple[bytes, tuple[int, int, int]]] = deque()
        self._settled: asyncio.Future[bool] | None = None  # ready (True) or gone (False)
        self._gone: asyncio.Future[None] | None = None
        # The first program of a loop turn starts in wsdev (``_loop_has_more_to_do``).
        self.inline_when_idle = True
        self._inline_this_turn = False

    def start(self) -> None:
        """Launch the helper (Linux only: it watches exits through pidfds)."""
        if not sys.platform.startswith("linux") or not hasattr(os, "pidfd_open"):
            return
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._helper = subprocess.Popen(
                [sys.executable, "-m", "wsdev.spawnhelper", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                # Nothing of the helper's may reach the terminal (the dashboard owns it); if it
                # ends, wsdev says so with its exit status.
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        except OSError as exc:
            logger.debug("no spawn helper (%s): programs start in wsdev itself", exc)
            ours.close()
            return
        finally:
            theirs.close()
        track(self._helper.pid)  # its exit is ours to wait for, not the orphan reaper's
        ours.setblocking(False)
        self._loop, self._sock = loop, ours
        self._settled = loop.create_future()
        self._gone = loop.create_future()
        loop.add_reader(ours.fileno(), self._read)

    @property
    def helper_pid(self) -> int | None:
        return self._helper.pid if self._helper is not None else None

    async def until_ready(self) -> bool:
        """Wait until the helper is ready (True), or known not to be there (False)."""
        if self._settled is None:
            return False
        return await asyncio.shield(self._settled)

    async def until_gone(self) -> None:
        """Wait until the helper has ended and wsdev has taken over its programs."""
        if self._gone is not None:
            await asyncio.shield(self._gone)

    def _settle(self, ready: bool) -> None:
        self.ready = ready
        if self._settled is not None and not self._settled.done():
            self._settled.set_result(ready)

    def spawn(self, argv: Sequence[str], env: Mapping[str, str], done: Started) -> bool:
        """Start ``argv`` as ``process.spawn`` would; ``done`` gets the Child or the OSError.

        True when the helper starts it, and ``done`` is called later, from the loop; False
        when wsdev has started it itself, and ``done`` has been called already.
        """
        if self.ready and self._loop_has_more_to_do():
            try:
                request = encode_request(self._next_id + 1, argv, env)
            except ValueError:
                request = b""  # process.spawn says what is wrong with it
            if 0 < len(request) <= MAX_REQUEST:
                self._next_id += 1
                self._send(self._next_id, request, done)
                return True
        try:
            child: Child | OSError = spawn(argv, env)
        except OSError as exc:
            child = exc
        done(child)
        return False

    def _loop_has_more_to_do(self) -> bool:
        """Whether a program was already started in wsdev in this loop turn.

        A lone program is started in wsdev: the helper's round trip (two wake-ups, two
        messages) would add to that connection's wait, and nothing else is held up by it. A
        second one in the same turn means connections are arriving together: from then on, the
        helper starts them while the loop serves the others.
        """
        if not self.inline_when_idle:
            return True
        if self._inline_this_turn:
            return True
        self._inline_this_turn = True
        assert self._loop is not None
        self._loop.call_soon(self._next_turn)
        return False

    def _next_turn(self) -> None:
        self._inline_this_turn = False

    def _send(self, request_id: int, request: bytes, done: Started) -> None:
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        self._waiting[request_id] = _Request((in_w, out_r, err_r), done)
        theirs = (in_r, out_w, err_w)
        if self._unsent or not self._try_send(request, theirs):
            self._unsent.append((request, theirs))
            if len(self._unsent) == 1:
                assert self._loop is not None and self._sock is not None
                self._loop.add_writer(self._sock.fileno(), self._send_unsent)

    def _try_send(self, request: bytes, theirs: tuple[int, int, int]) -> bool:
        """Hand a request to the helper; False when its socket is full."""
        assert self._sock is not None
        try:
            self._sock.sendmsg(
                [request], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", theirs))]
            )
        except BlockingIOError:
            return False
        except OSError:
            # The helper is gone; its reader will notice and start these in wsdev.
            pass
        for fd in theirs:
            os.close(fd)
        return True

    def _send_unsent(self) -> None:
        while self._unsent:
            request, theirs = self._unsent[0]
            if not self._try_send(request, theirs):
                return
            self._unsent.popleft()
        assert self._loop is not None and self._sock is not None
        self._loop.remove_writer(self._sock.fileno())

    def _read(self) -> None:
        while self._sock is not None:
            try:
                data = self._sock.recv(REPLY_BUFFER)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._lost()
                return
            for kind, key, value in decode_replies(data):
                if kind == b"X":
                    child = self._children.pop(key, None)
                    if child is not None:
                        child.exit_reported(value)
                elif kind == b"S":
                    self._started(key, value)
                elif kind == b"F":
                    self._failed(key, value)
                elif kind == b"R":
                    self._settle(True)

    def collect(self) -> None:
        """Take in any reply already there (a program's exit, before the loop reports it)."""
        if self._sock is not None:
            self._read()

    def _started(self, request_id: int, pid: int) -> None:
        request = self._waiting.pop(request_id)
        assert self._loop is not None
        child = Child(self._loop, pid, *request.ours, reported_by=self)
        self._children[pid] = child
        request.done(child)

    def _failed(self, request_id: int, code: int) -> None:
        request = self._waiting.pop(request_id)
        for fd in request.ours:
            os.close(fd)
        request.done(OSError(code, os.strerror(code)))

    def _lost(self, closing: bool = False) -> None:
        """The helper has gone: what it started is watched here, what it had not is started here."""
        if self._sock is None:
            return
        assert self._loop is not None
        self._loop.remove_reader(self._sock.fileno())
        if self._unsent:
            self._loop.remove_writer(self._sock.fileno())
        self._sock.close()  # the helper ends when it sees this
        self._sock = None
        was_ready = self.ready
        self._settle(False)
        status = self._reap_helper()
        if was_ready and not closing:
            logger.warning(
                "the spawn helper has ended (%s); programs now start in wsdev itself",
                f"signal {-status}" if status < 0 else f"exit {status}",
            )
        # Once the helper is reaped, its programs are wsdev's (their subreaper, behaviour B6).
        for child in self._children.values():
            child.watch_here()
        self._children.clear()
        for _, theirs in self._unsent:
            for fd in theirs:
                os.close(fd)
        self._unsent.clear()
        waiting, self._waiting = self._waiting, {}
        for pending in waiting.values():
            for fd in pending.ours:
                os.close(fd)
            # Whether the helper started it is not known: its program, if any, was adopted
            # with its pipes closed, and ends like an orphan (behaviour B6).
            pending.done(OSError(errno.EAGAIN, "the spawn helper ended while starting it"))
        if self._gone is not None and not self._gone.done():
            self._gone.set_result(None)

    def _reap_helper(self) -> int:
        """Wait for the helper's end; its exit status (negative: the signal that ended it)."""
        helper, self._helper = self._helper, None
        if helper is None:
            return 0
        try:
            status = helper.wait(timeout=HELPER_EXIT_SECONDS)
        except subprocess.TimeoutExpired:
            helper.kill()
            status = helper.wait()
        untrack(helper.pid)
        return status

    def close(self) -> None:
        """Stop the helper (it ends when its socket closes) and wait for it."""
        self._lost(closing=True)
