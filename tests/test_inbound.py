"""Client messages handed over straight from the parser, and queued when they may not be."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import websockets
from aiohttp import WSMessage, WSMsgType, web

from conftest import ScriptWriter, run_wsdev, timeout
from rawhttp import upgrade, upgrade_headers
from wsdev import inbound
from wsdev.inbound import DirectWebSocketResponse

DIRECT = inbound._PARSER is not None


@pytest.fixture
async def direct_server() -> AsyncIterator[tuple[str, asyncio.Queue[object]]]:
    """An aiohttp server whose handler records what reaches ``deliver`` and ``receive()``.

    ``deliver`` takes a message unless it reads "queue", so both paths are exercised.
    """
    seen: asyncio.Queue[object] = asyncio.Queue()

    def deliver(msg: WSMessage) -> bool:
        if msg.type is WSMsgType.TEXT and msg.data != "queue":
            seen.put_nowait(("delivered", msg.data))
            return True
        return False

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        ws = DirectWebSocketResponse(autoping=False, autoclose=False, compress=False)
        await ws.prepare(request)
        seen.put_nowait(("direct", ws.deliver_to(deliver)))
        while True:
            msg = await ws.receive()
            if msg.type is WSMsgType.CLOSE:
                seen.put_nowait(("received", "close"))
                await ws.close()
                return ws
            seen.put_nowait(("received", "ping" if msg.type is WSMsgType.PING else msg.data))

    runner = web.ServerRunner(web.Server(handle))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"ws://127.0.0.1:{port}/", seen
    finally:
        await runner.cleanup()


async def test_messages_go_to_deliver_and_what_it_declines_to_receive(
    direct_server: tuple[str, asyncio.Queue[object]],
) -> None:
    url, seen = direct_server

    async def next_seen() -> object:
        return await asyncio.wait_for(seen.get(), timeout(5))

    async with websockets.connect(url) as ws:
        # Direct delivery needs aiohttp 3.14's parser internals (see wsdev.inbound).
        assert await next_seen() == ("direct", aiohttp.__version__.startswith("3.14."))
        if not DIRECT:
            pytest.skip(f"aiohttp {aiohttp.__version__}: messages go through receive()")
        await ws.send("one")
        assert await next_seen() == ("delivered", "one")
        await ws.ping()  # control frames are the receive loop's
        assert await next_seen() == ("received", "ping")
        await ws.send("queue")
        assert await next_seen() == ("received", "queue")
        await ws.send("two")
        assert await next_seen() == ("delivered", "two")
    assert await next_seen() == ("received", "close")


async def test_without_the_parser_internals_every_message_goes_to_receive(
    direct_server: tuple[str, asyncio.Queue[object]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inbound, "_PARSER", None)  # as with an aiohttp other than 3.14
    url, seen = direct_server
    async with websockets.connect(url) as ws:
        assert await asyncio.wait_for(seen.get(), timeout(5)) == ("direct", False)
        for text in ("one", "queue", "two"):
            await ws.send(text)
    got = [await asyncio.wait_for(seen.get(), timeout(5)) for _ in range(4)]
    assert got == [
        ("received", "one"),
        ("received", "queue"),
        ("received", "two"),
        ("received", "close"),
    ]


async def test_order_is_kept_while_stdin_fills_and_drains(tmp_script: ScriptWriter) -> None:
    # The program reads nothing for a while: stdin's pipe and buffer fill, messages queue in
    # aiohttp, the socket stops being read; then it echoes everything, which must come back in
    # the order it was sent, whichever path each message took.
    prog = tmp_script(
        "slow.py",
        f"#!{sys.executable}\n"
        "import sys, time\n"
        "time.sleep(0.5)\n"
        "for line in sys.stdin:\n"
        "    sys.stdout.write(line[:12] + '\\n')\n",
    )
    count = 1500
    sent = [f"{i:012d}" + "x" * 2000 for i in range(count)]
    async with run_wsdev(str(prog)) as server:
        async with websockets.connect(server.ws_url + "/", max_size=None) as ws:

            async def send_all() -> None:
                for index, text in enumerate(sent):
                    await ws.send(text)
                    if index % 100 == 0:
                        await ws.ping()

            sender = asyncio.ensure_future(send_all())
            got = [await asyncio.wait_for(ws.recv(), timeout(20)) for _ in range(count)]
            await sender
    assert got == [text[:12] for text in sent]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param([("Upgrade", "h2c"), *upgrade_headers()[1:]], id="not-websocket"),
        pytest.param([h for h in upgrade_headers() if h[0] != "Connection"], id="no-connection"),
        pytest.param(
            [(k, "99" if k == "Sec-WebSocket-Version" else v) for k, v in upgrade_headers()],
            id="wrong-version",
        ),
        pytest.param([h for h in upgrade_headers() if h[0] != "Sec-WebSocket-Key"], id="no-key"),
        pytest.param(
            [
                (k, "bm90IDE2IGJ5dGVz" if k == "Sec-WebSocket-Key" else v)
                for k, v in upgrade_headers()
            ],
            id="short-key",
        ),
        pytest.param(
            [(k, "not base64!" if k == "Sec-WebSocket-Key" else v) for k, v in upgrade_headers()],
            id="garbage-key",
        ),
    ],
)
async def test_a_refused_handshake_starts_no_program(
    tmp_script: ScriptWriter, tmp_path: Path, headers: list[tuple[str, str]]
) -> None:
    # Programs start before the 101 goes out; one whose client is refused must never start.
    started = tmp_path / "started.txt"
    prog = tmp_script("probe.sh", f'#!/bin/sh\necho "$HTTP_X_PROBE" >> {started}\necho up\n')
    async with run_wsdev(str(prog)) as server:
        refused = await upgrade(server.port, headers=[*headers, ("X-Probe", "refused")])
        assert refused.status != 101
        # A client that is served afterwards: its program ends after the refused one would have.
        async with websockets.connect(
            server.ws_url + "/", additional_headers={"X-Probe": "served"}
        ) as ws:
            assert await ws.recv() == "up"
            await ws.wait_closed()
    assert started.read_text().split() == ["served"]
