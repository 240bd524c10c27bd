"""Limits for a shared server: per-client connections, lifetime, idle timeout (behaviour B13)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
import websockets
from websockets.asyncio.client import ClientConnection, connect

from conftest import run_wsdev, timeout
from wsdev.cli import build_config, parse_args
from wsdev.errors import UsageError

CAT = "/bin/cat"


@contextlib.asynccontextmanager
async def client(url: str, source: str = "127.0.0.1") -> AsyncIterator[ClientConnection]:
    """A WebSocket client whose connection comes from ``source`` (any 127.x address works)."""
    async with connect(url, local_addr=(source, 0), open_timeout=timeout(10)) as ws:
        yield ws


async def echo(ws: ClientConnection, text: str) -> None:
    await ws.send(text)
    assert await asyncio.wait_for(ws.recv(), timeout(10)) == text


async def closed_with(ws: ClientConnection) -> tuple[int, str]:
    with contextlib.suppress(websockets.ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), timeout(10))
    await asyncio.wait_for(ws.wait_closed(), timeout(10))
    received = ws.protocol.close_rcvd
    assert received is not None, "the server sent no Close"
    return received.code, received.reason


async def test_a_client_address_gets_at_most_n_connections() -> None:
    async with run_wsdev("--max-per-client=2", CAT) as server:
        url = server.ws_url + "/"
        async with client(url) as first, client(url) as second:
            await echo(first, "one")
            await echo(second, "two")
            with pytest.raises(websockets.InvalidStatus) as refused:
                async with client(url):
                    pass
            assert refused.value.response.status_code == 429
            body = refused.value.response.body.decode()
            assert "--max-per-client=2" in body and "127.0.0.1" in body
            await server.wait_for_log(r"--max-per-client=2")
            # Another address is counted on its own.
            async with client(url, source="127.0.0.2") as other:
                await echo(other, "elsewhere")
            # The console hears the same refusal as a Close 1013 with the reason.
            async with client(server.ws_url + "/_wsdev/ws?path=/") as console:
                code, reason = await closed_with(console)
            assert code == 1013
            assert "--max-per-client=2" in reason

        # Once their programs have ended, the address may connect again.
        async def reconnect() -> None:
            while True:
                try:
                    async with client(url) as again:
                        await echo(again, "back")
                        return
                except websockets.InvalidStatus as exc:
                    assert exc.response.status_code == 429
                    await server.wait_for_log(r"DISCONNECT|disconnected", within=5)

        await asyncio.wait_for(reconnect(), timeout(15))


async def test_an_idle_client_is_closed_with_a_reason_naming_the_flag() -> None:
    async with run_wsdev("--idle-timeout=0.3", CAT) as server:
        async with client(server.ws_url + "/") as ws:
            await echo(ws, "hello")
            code, reason = await closed_with(ws)
    assert code == 1008
    assert reason == "idle for 0.3 s (--idle-timeout)"


async def test_messages_keep_a_connection_from_being_idle() -> None:
    # Twelve messages 0.15 s apart span 1.8 s, three times the idle period: had the first
    # message's time been the only one counted, the connection would have closed midway.
    async with run_wsdev("--idle-timeout=0.6", CAT) as server:
        async with client(server.ws_url + "/") as ws:
            for index in range(12):
                await echo(ws, f"still here {index}")
                await asyncio.sleep(0.15)
            code, reason = await closed_with(ws)
    assert (code, reason) == (1008, "idle for 0.6 s (--idle-timeout)")


async def test_a_connection_ends_at_its_lifetime_even_while_busy() -> None:
    async with run_wsdev("--max-lifetime=0.5", CAT) as server:
        async with client(server.ws_url + "/") as ws:

            async def chatter() -> None:
                with contextlib.suppress(websockets.ConnectionClosed):
                    while True:
                        await ws.send("busy")
                        await asyncio.sleep(0.05)

            talking = asyncio.ensure_future(chatter())
            try:
                code, reason = await closed_with(ws)
            finally:
                talking.cancel()
        await server.wait_for_log(r"--max-lifetime")
    assert (code, reason) == (1008, "open for 0.5 s (--max-lifetime)")


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--idle-timeout=soon", "expected seconds"),
        ("--max-lifetime=-1", "must be 0 or more seconds"),
        ("--max-lifetime=nan", "must be 0 or more seconds"),
        ("--max-per-client=x", "expected a whole number"),
    ],
)
def test_bad_limit_values_are_usage_errors(flag: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        build_config(parse_args([flag, CAT]))


def test_limits_are_read_from_flags_and_from_the_environment() -> None:
    config = build_config(
        parse_args(["--idle-timeout=90", "--max-lifetime", "1.5", CAT]),
        environ={"WSDEV_MAX_PER_CLIENT": "3"},
    )
    assert (config.idle_timeout, config.max_lifetime, config.max_per_client) == (90.0, 1.5, 3)
