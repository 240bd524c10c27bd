"""The event loop wsdev runs on: asyncio's, whose selector polls for a while before it sleeps.

A WebSocket session is a relay of wake-ups: the client's message wakes wsdev, the write to the
program wakes the program, its answer wakes wsdev again; a new connection wakes wsdev, and so
does the first line of the program it starts. Every time wsdev finds nothing to do it sleeps in
``epoll_wait``, the CPU it ran on may go idle, and waking an idle CPU can take longer than the
work itself (on a virtual machine the host has to wake the virtual CPU: 50-100 µs here, more
than a whole round trip through `cat`). Go's scheduler, and so websocketd, keeps threads
spinning for work for the same reason.

So the selector keeps polling, without blocking, for ``SPIN`` before it blocks. It yields the
CPU between polls, so a process that is ready to run on this CPU (often the program wsdev just
started, which the kernel puts on wsdev's CPU) runs first. The poll is short because a CPU that
wsdev keeps busy is one the others cannot have: on two CPUs, a client woken by wsdev's answer
while the program wsdev started runs on the other one waits for that program to finish (half a
millisecond for ``echo``) if wsdev polls on. Polling 1 ms gave 9% fewer connections per second
than polling 50 µs, and an echo's round trip no faster. An idle wsdev blocks after one poll, as
any asyncio program does.

The selector is also the one place that knows when the loop has nothing else to do, so it runs
what can wait for that moment (``until_idle``): the last bookkeeping of a connection that has
ended (its log line, its pipes, the unwinding of its request) would otherwise come before the
next client's handshake, and a client that connects again at once would wait for it. Such work
waits at most ``IDLE_WAIT_LIMIT``, so a loop that is never idle still gets it done.
"""

from __future__ import annotations

import asyncio
import os
import selectors
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

# How long the selector polls before it blocks: enough for an answer already on its way.
SPIN = 50e-6
# epoll_wait counts in milliseconds and rounds a shorter timeout up to a whole one.
BLOCKING_RESOLUTION = 1e-3
# The longest work queued for an idle moment waits when the loop stays busy.
IDLE_WAIT_LIMIT = 5e-3

_yield = getattr(os, "sched_yield", lambda: None)


class PollingSelector(selectors.DefaultSelector):
    """``select`` polls (never past its timeout) before blocking; see the module's docstring."""

    def __init__(self) -> None:
        super().__init__()
        self._when_idle: list[Callable[[], object]] = []
        self._idle_deadline = 0.0

    def call_when_idle(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` (quick, not raising) once the loop has nothing else to do."""
        if not self._when_idle:
            self._idle_deadline = time.perf_counter() + IDLE_WAIT_LIMIT
        self._when_idle.append(callback)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if self._when_idle:
            # A zero timeout means the loop has callbacks ready to run: it is not idle.
            idle = not ready and (timeout is None or timeout > 0)
            if idle or time.perf_counter() >= self._idle_deadline:
                callbacks, self._when_idle = self._when_idle, []
                for callback in callbacks:
                    callback()
                return ready  # what they made ready runs before any wait
        if ready or (timeout is not None and timeout <= 0):
            return ready  # work at hand: no wait to poll through
        started = time.perf_counter()
        window = SPIN
        if timeout is not None and timeout - window < BLOCKING_RESOLUTION:
            window = timeout  # blocking for the rest would overshoot the timer: poll to it
        deadline = started + window
        while not ready and time.perf_counter() < deadline:
            _yield()
            ready = super().select(0)
        if not ready:
            remaining = None if timeout is None else max(0.0, started + timeout - deadline)
            ready = super().select(remaining)
        return ready


class EventLoop(asyncio.SelectorEventLoop):
    """asyncio's selector loop on a ``PollingSelector``, which it can ask for idle moments."""

    def __init__(self) -> None:
        self._polling = PollingSelector()
        super().__init__(self._polling)

    def call_when_idle(self, callback: Callable[[], object]) -> None:
        self._polling.call_when_idle(callback)


async def until_idle() -> None:
    """Return once the loop has nothing else to do (see the module's docstring).

    On another loop (asyncio's own, as on Python 3.10) it returns at once.
    """
    loop = asyncio.get_running_loop()
    if not isinstance(loop, EventLoop):
        return
    idle: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not idle.done():  # cancelled, with the task that waited
            idle.set_result(None)

    loop.call_when_idle(wake)
    await idle


def new_event_loop() -> asyncio.AbstractEventLoop:
    return EventLoop()


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on wsdev's loop (on Python 3.10, on asyncio's own)."""
    if sys.version_info >= (3, 11):
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            return runner.run(main)
    return asyncio.run(main)
