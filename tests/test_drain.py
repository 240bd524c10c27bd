"""A graceful drain at shutdown with --drain, and health while serving and draining (B12).

Without --drain, SIGTERM closes every session with 1001 at once: tests/test_process.py.
"""

from __future__ import annotations

import asyncio
import signal

import aiohttp
import pytest
import websockets
from websockets.asyncio.client import connect

from conftest import ServerProcess, run_wsdev, timeout
from wsdev.events import Draining
from wsdev.tally import Tally


async def exited(server: ServerProcess) -> int:
    """The exit status of a server already told to stop (a second signal would change what
    is tested)."""
    return await asyncio.wait_for(server.proc.wait(), timeout(15))


async def test_drain_refuses_new_sessions_and_waits_for_live_ones() -> None:
    async with run_wsdev("--drain=600", "cat") as server:
        async with aiohttp.ClientSession() as http:
            async with http.get(server.http_url + "/_wsdev/health") as health:
                assert (health.status, await health.text()) == (200, "ok\n")
            async with http.get(server.http_url + "/_wsdev/metrics") as metrics:
                assert metrics.status == 404  # metrics are off without --metrics
        first = await connect(server.ws_url + "/")
        second = await connect(server.ws_url + "/")
        server.proc.send_signal(signal.SIGTERM)
        await server.wait_for_log(r"draining: 2 connections left; the rest close with 1001 in \d")
        # A new session is refused, so a proxy sends it elsewhere; health says why.
        with pytest.raises(websockets.InvalidStatus) as refused:
            await connect(server.ws_url + "/")
        assert refused.value.response.status_code == 503
        async with aiohttp.ClientSession() as http:
            async with http.get(server.http_url + "/_wsdev/health") as health:
                assert (health.status, await health.text()) == (503, "draining\n")
        # The live sessions go on as before.
        await second.send("still served")
        assert await second.recv() == "still served"
        await first.close()
        await server.wait_for_log(r"draining: 1 connection left")
        await second.send("and still")
        assert await second.recv() == "and still"
        await second.close()
        await server.wait_for_log(r"drained: no connection left")
        assert await exited(server) == 0
        # Both ended by themselves: neither was closed by the server.
        assert first.close_code == second.close_code == 1000


async def test_drain_closes_what_is_left_with_1001_when_time_is_up() -> None:
    async with run_wsdev("--drain=1", "cat") as server:
        ws = await connect(server.ws_url + "/")
        server.proc.send_signal(signal.SIGTERM)
        await server.wait_for_log(r"drain over: closing 1 connection with 1001")
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1001
        assert await exited(server) == 0


async def test_a_second_sigterm_ends_the_drain_at_once() -> None:
    async with run_wsdev("--drain=600", "cat") as server:
        ws = await connect(server.ws_url + "/")
        server.proc.send_signal(signal.SIGTERM)
        await server.wait_for_log(r"draining: 1 connection left")
        server.proc.send_signal(signal.SIGTERM)
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1001
        assert await exited(server) == 0
        assert any("drain over: closing 1 connection" in line for line in server.lines)


def test_the_dashboard_shows_the_countdown() -> None:
    tally = Tally()
    tally.handle(Draining(seconds_left=12, live=3))
    assert [entry.text for entry in tally.log] == ["draining: 3 left, 1001 in 12 s"]
