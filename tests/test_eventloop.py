"""``eventloop.py``: the selector that polls before it sleeps, and the loop wsdev runs on."""

from __future__ import annotations

import asyncio
import os
import selectors
import socket
import threading
import time
from typing import Any

from conftest import TurnCounter
from wsdev import eventloop
from wsdev.eventloop import SPIN, PollingSelector


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


def test_run_uses_the_polling_selector_and_returns_the_result() -> None:
    async def which_selector() -> str:
        await asyncio.sleep(0.01)
        return type(asyncio.get_running_loop()._selector).__name__  # type: ignore[attr-defined]

    assert eventloop.run(which_selector()) == "PollingSelector"


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


class _Recorder(asyncio.Protocol):
    """A server protocol noting the loop turn of each callback (see ``TurnCounter``)."""

    def __init__(self, counter: TurnCounter, received: asyncio.Future[tuple[int, int]]) -> None:
        self._counter = counter
        self._received = received
        self._connected_turn = -1

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._connected_turn = self._counter.turn
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        if not self._received.done():
            self._received.set_result((self._connected_turn, self._counter.turn))
        self._transport.close()


def test_a_new_connection_and_what_it_sent_reach_the_protocol_in_two_turns() -> None:
    """Accepting connects the protocol at once, and what the client already sent is read in
    the same turn (asyncio's own accept takes a task and two more turns for that)."""

    async def main() -> tuple[int, int, int]:
        loop = asyncio.get_running_loop()
        counter = TurnCounter()
        received: asyncio.Future[tuple[int, int]] = loop.create_future()
        server = await loop.create_server(lambda: _Recorder(counter, received), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            with socket.create_connection(("127.0.0.1", port)) as client:
                client.sendall(b"hello")
                sent_turn = counter.turn
                connected_turn, data_turn = await asyncio.wait_for(received, 10)
        finally:
            counter.stop()
            server.close()
            await server.wait_closed()
        return sent_turn, connected_turn, data_turn

    sent, connected, data = eventloop.run(main())
    # One turn reports the listening socket and accepts; the next connects and reads.
    assert connected - sent <= 2
    assert data == connected


def test_running_out_of_files_while_accepting_is_reported_and_retried() -> None:
    """As with asyncio's accept, the loop's exception handler hears of it, accepting pauses,
    and the waiting connection is served once files are free again; but it hears of it once
    (asyncio's own accept goes on trying, and reporting, up to its backlog of 100 times)."""
    import resource

    async def main() -> tuple[list[str], tuple[int, int]]:
        loop = asyncio.get_running_loop()
        reported: list[str] = []
        loop.set_exception_handler(lambda _loop, context: reported.append(context["message"]))
        counter = TurnCounter()
        received: asyncio.Future[tuple[int, int]] = loop.create_future()
        server = await loop.create_server(lambda: _Recorder(counter, received), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        try:
            with socket.create_connection(("127.0.0.1", port)) as client:
                client.sendall(b"hello")
                # No file left for the server's accept: the limit is on fd numbers, and the
                # lowest free one is the next to be handed out.
                lowest_free = os.dup(0)
                os.close(lowest_free)
                resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))
                try:
                    while not reported:
                        await asyncio.sleep(0.01)
                finally:
                    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
                served = await asyncio.wait_for(received, 10)
        finally:
            counter.stop()
            server.close()
            await server.wait_closed()
        return reported, served

    reported, (connected, data) = eventloop.run(main())
    assert reported == ["socket.accept() out of system resource"]
    assert data == connected  # served, as any connection is


class _Chosen(asyncio.Protocol):
    """A protocol ``_ChoosingFactory`` picks from what came with the connection."""

    def __init__(self, seen: asyncio.Future[bytes], lost: asyncio.Future[object]) -> None:
        self._seen = seen
        self._lost = lost

    def data_received(self, data: bytes) -> None:
        if not self._seen.done():
            self._seen.set_result(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._lost.done():
            self._lost.set_result(exc)


class _ChoosingFactory:
    """A protocol factory that, shown the first bytes, takes the connection for ``_Chosen``
    and keeps what follows a ``|`` for it."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.looked_at: list[bytes] = []
        self.seen: asyncio.Future[bytes] = loop.create_future()
        self.lost: asyncio.Future[object] = loop.create_future()

    def __call__(self) -> asyncio.Protocol:
        return asyncio.Protocol()

    def protocol_for_data(
        self, sock: socket.socket, peer: Any, data: bytes
    ) -> tuple[asyncio.BaseProtocol, bytes] | None:
        assert peer == sock.getpeername()
        self.looked_at.append(data)
        if not data.startswith(b"take|"):
            return None
        return _Chosen(self.seen, self.lost), data[len(b"take|") :]


def test_a_factory_can_choose_the_protocol_from_what_came_with_the_connection() -> None:
    async def main() -> tuple[list[bytes], bytes]:
        loop = asyncio.get_running_loop()
        factory = _ChoosingFactory()
        server = await loop.create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            with socket.create_connection(("127.0.0.1", port)) as client:
                client.sendall(b"take|rest")
                seen = await asyncio.wait_for(factory.seen, 10)
        finally:
            server.close()
            await server.wait_closed()
        return factory.looked_at, seen

    looked_at, seen = eventloop.run(main())
    assert looked_at == [b"take|rest"]
    assert seen == b"rest"  # the chosen protocol gets the bytes the factory left for it


def test_a_chosen_protocol_hears_when_its_transport_cannot_be_made() -> None:
    """It may have started something for the connection (wsdev starts a program): it is told
    the connection is lost, so that can end."""

    async def main() -> object:
        loop = asyncio.get_running_loop()
        factory = _ChoosingFactory()
        server = await loop.create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]

        def no_transport(*args: object, **kwargs: object) -> None:
            raise RuntimeError("no transport today")

        loop._make_socket_transport = no_transport  # type: ignore[attr-defined]
        try:
            with socket.create_connection(("127.0.0.1", port)) as client:
                client.sendall(b"take|rest")
                return await asyncio.wait_for(factory.lost, 10)
        finally:
            del loop._make_socket_transport  # type: ignore[attr-defined]
            server.close()
            await server.wait_closed()

    lost = eventloop.run(main())
    assert isinstance(lost, RuntimeError)
