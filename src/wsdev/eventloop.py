"""The event loop wsdev runs on: asyncio's, whose selector polls briefly before it sleeps.

A WebSocket round trip through a program is a relay of wake-ups: the client's message wakes
wsdev, the write to the program wakes the program, its answer wakes wsdev again. Every time
wsdev finds nothing to do it sleeps in ``epoll_wait``, and the CPU it ran on may go idle; waking
an idle CPU again can take longer than the work itself (on a virtual machine the host has to
wake the virtual CPU). Go's scheduler, and so websocketd, spins a little before parking a
thread for the same reason. Here the selector keeps polling, without blocking, for up to
``SPIN_SECONDS`` after its last event before it blocks: the answer that comes within that
window is picked up at once, and a loop with nothing to do spends at most that long finding
out, once per burst of work.
"""

from __future__ import annotations

import asyncio
import selectors
import sys
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

# Long enough for a program's answer to a line (a round trip through `cat` takes ~20-40 µs of
# the program's own time), short enough to cost nothing noticeable when the loop is idle.
SPIN_SECONDS = 50e-6


class PollingSelector(selectors.DefaultSelector):
    """``select`` polls for up to ``SPIN_SECONDS`` (never past its timeout) before blocking."""

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is not None and timeout <= 0:
            return super().select(0)
        spin = SPIN_SECONDS if timeout is None else min(SPIN_SECONDS, timeout)
        deadline = time.perf_counter() + spin
        while True:
            ready = super().select(0)
            if ready or time.perf_counter() >= deadline:
                break
        if ready:
            return ready
        return super().select(None if timeout is None else timeout - spin)


def new_event_loop() -> asyncio.AbstractEventLoop:
    return asyncio.SelectorEventLoop(PollingSelector())


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on wsdev's loop (on Python 3.10, on asyncio's own)."""
    if sys.version_info >= (3, 11):
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            return runner.run(main)
    return asyncio.run(main)
