"""``eventloop.py``: the selector that polls before it sleeps, and the loop wsdev runs on."""

from __future__ import annotations

import asyncio
import selectors
import socket
import sys
import threading
import time

import pytest

from wsdev import eventloop
from wsdev.eventloop import SPIN, PollingSelector

# eventloop.run runs wsdev's loop from Python 3.11 on (asyncio.Runner); on 3.10, asyncio's own.
wsdevs_loop = pytest.mark.skipif(
    sys.version_info < (3, 11), reason="Python 3.10 runs on asyncio's own loop"
)


def test_ready_events_come_back_at_once() -> None:
    left, right = socket.socketpair()
    with PollingSelector() as selector, left, right:
        selector.register(left, selectors.EVENT_READ)
        right.send(b"x")
        started = time.perf_counter()
        ready = selector.select(5)
        assert [key.fileobj for key, _ in ready] == [left]
        assert time.perf_counter() - started < 1


def test_an_event_during_the_blocking_wait_is_seen() -> None:
    left, right = socket.socketpair()
    with PollingSelector() as selector, left, right:
        selector.register(left, selectors.EVENT_READ)
        sender = threading.Timer(0.05, right.send, (b"x",))
        sender.start()
        ready = selector.select(5)  # spins, then blocks; the send comes 50 ms later
        sender.join()
        assert [key.fileobj for key, _ in ready] == [left]


def test_timeouts_are_kept() -> None:
    left, right = socket.socketpair()
    with PollingSelector() as selector, left, right:
        selector.register(left, selectors.EVENT_READ)
        started = time.perf_counter()
        assert selector.select(0.05) == []
        waited = time.perf_counter() - started
        assert 0.05 <= waited < 1
        started = time.perf_counter()
        assert selector.select(SPIN / 10) == []  # shorter than the poll: not stretched
        assert time.perf_counter() - started < 0.05
        assert selector.select(0) == []


def test_a_long_wait_is_spent_blocked_not_polling() -> None:
    """The poll before a wait is short: the rest of the wait leaves the CPU to others."""
    left, right = socket.socketpair()
    with PollingSelector() as selector, left, right:
        selector.register(left, selectors.EVENT_READ)
        cpu_before = time.process_time()
        for _ in range(5):
            assert selector.select(0.02) == []  # 100 ms of waiting in all
        cpu_used = time.process_time() - cpu_before
        # Polling through the waits would use all 100 ms; five polls of SPIN use well under 10.
        assert cpu_used < 0.01 + 5 * SPIN, f"{cpu_used * 1000:.1f} ms of CPU in 100 ms of waits"


@wsdevs_loop
def test_run_uses_the_polling_selector_and_returns_the_result() -> None:
    async def which_selector() -> str:
        await asyncio.sleep(0.01)
        return type(asyncio.get_running_loop()._selector).__name__  # type: ignore[attr-defined]

    assert eventloop.run(which_selector()) == "PollingSelector"


@wsdevs_loop
def test_idle_work_waits_for_work_already_under_way() -> None:
    """``until_idle`` returns only after callbacks that keep scheduling each other are done."""
    done: list[int] = []

    def step(n: int) -> None:
        done.append(n)
        if n < 50:
            asyncio.get_running_loop().call_soon(step, n + 1)

    async def main() -> list[int]:
        asyncio.get_running_loop().call_soon(step, 1)
        await eventloop.until_idle()
        return list(done)

    assert eventloop.run(main()) == list(range(1, 51))


@wsdevs_loop
def test_idle_work_waits_at_most_the_limit_on_a_loop_that_never_idles() -> None:
    async def main() -> tuple[float, bool]:
        loop = asyncio.get_running_loop()
        busy_until = time.perf_counter() + 2

        def busy() -> None:
            if time.perf_counter() < busy_until:
                loop.call_soon(busy)

        loop.call_soon(busy)
        started = time.perf_counter()
        await eventloop.until_idle()
        return time.perf_counter() - started, time.perf_counter() < busy_until

    waited, still_busy = eventloop.run(main())
    assert still_busy  # it did not wait for the busy spell to end
    assert waited < 0.5  # IDLE_WAIT_LIMIT (5 ms), with room for a slow machine
    assert waited >= eventloop.IDLE_WAIT_LIMIT * 0.9


@wsdevs_loop
def test_a_cancelled_wait_for_idle_is_dropped_quietly() -> None:
    async def main() -> bool:
        waiting = asyncio.ensure_future(eventloop.until_idle())
        await asyncio.sleep(0)  # it is queued for the idle moment
        waiting.cancel()
        await asyncio.sleep(0.01)  # the loop idles, the selector wakes a cancelled future
        return waiting.cancelled()

    assert eventloop.run(main())


def test_on_asyncios_own_loop_until_idle_returns_at_once() -> None:
    async def main() -> str:
        await eventloop.until_idle()
        return "done"

    assert asyncio.run(main()) == "done"
