"""Every example in examples/ runs under wsdev and answers as its header comment promises."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from conftest import EXAMPLES, converse, run_wsdev, timeout


@pytest.mark.parametrize(
    ("example", "greeting", "send", "expected"),
    [
        ("greeter.sh", 0, ["Ada"], ["Hello, Ada!"]),
        ("bot.py", 1, ["upper hi", "count 2"], ["HI", "1", "2"]),
        ("chat.py", 1, ["my name is ada", "my name?"], ["Nice to meet you, Ada!", "You are Ada."]),
        ("backend.sh", 1, ["set a 1", "get a", "list"], ["ok", "1", "a=1"]),
    ],
)
async def test_example_answers(
    example: str, greeting: int, send: list[str], expected: list[str]
) -> None:
    async with run_wsdev(str(EXAMPLES / example)) as server:
        got = await converse(server.ws_url + "/", send, read=len(expected) + greeting)
    assert got.messages[greeting:] == expected


async def test_json_bot_answers_and_survives_bad_input() -> None:
    async with run_wsdev(str(EXAMPLES / "json_bot.py")) as server:
        got = await converse(
            server.ws_url + "/",
            ['{"op": "add", "args": [1, 2]}', "not json", '{"op": "stats", "args": [3, 1, 2]}'],
            read=4,
        )
        await server.wait_for_log(r"\| stderr +\|.*request 2:")
    replies = [json.loads(m) for m in got.messages]
    assert replies[0]["ready"] is True
    assert replies[1] == {"id": 1, "ok": True, "result": 3}
    assert replies[2]["ok"] is False
    assert replies[3]["result"]["median"] == 2


async def test_env_example_shows_path_and_query() -> None:
    async with run_wsdev(str(EXAMPLES / "env.sh")) as server:
        got = await converse(server.ws_url + "/room/7?user=ada")
    assert "PATH_INFO=/room/7" in got.messages
    assert "QUERY_STRING=user=ada" in got.messages


async def test_counter_counts_then_exits() -> None:
    async with run_wsdev(str(EXAMPLES / "counter.sh")) as server:
        got = await converse(server.ws_url + "/", read=2)
    assert got.messages == ["1", "2"]


async def test_room_example_shares_chat_and_scores_between_processes(tmp_path: Path) -> None:
    from websockets.asyncio.client import connect

    async def recv_until(ws: object, text: str) -> str:
        async def find() -> str:
            while True:
                message = await ws.recv()  # type: ignore[attr-defined]
                if text in message:
                    return str(message)

        return await asyncio.wait_for(find(), timeout(10))

    env = {"ROOM_DIR": str(tmp_path / "room")}
    room = str(EXAMPLES / "room.py")
    async with run_wsdev("--passenv=PATH,ROOM_DIR", room, env=env) as server:
        url = server.ws_url + "/"
        async with connect(url + "?name=ada") as ada, connect(url + "?name=bo") as bo:
            await recv_until(ada, "Welcome to the quiz room, ada!")
            await recv_until(bo, "Welcome to the quiz room, bo!")
            await ada.send("say hello room")
            assert await recv_until(bo, "hello room") == "[ada] hello room"
            await bo.send("ask")
            await recv_until(bo, "Q1: What is 2 + 2?")
            await bo.send("answer 4")
            await recv_until(bo, "Right! bo has 1 point(s)")
            await ada.send("scores")
            assert await recv_until(ada, "Scores:") == "Scores: bo 1, ada 0"
