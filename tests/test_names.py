"""Who is who (behaviour C9): the name given in the console is kept by wsdev, named in the log,
and given to the program only under ``--names``."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from websockets.asyncio.client import connect

from conftest import ScriptWriter, local_config, run_wsdev, timeout
from wsdev.clientname import clean_name, with_name
from wsdev.events import Connected, Event, EventBus
from wsdev.server import Server

# Prints its whole environment as its first message, then echoes.
ENV_BOT = f"""#!{sys.executable}
import json, os, sys
print(json.dumps(dict(os.environ)), flush=True)
for line in sys.stdin:
    print("echo: " + line, end="", flush=True)
"""


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("ada", "ada"),
        ("  Ada Lovelace \t", "Ada Lovelace"),
        ("a\x00d\x1ba\x7f\u200b", "ada"),  # control and format characters go
        ("é" * 40, "é" * 32),  # at most 32 characters, not bytes
        ("   ", ""),
        ("\n\r", ""),
    ],
)
def test_a_name_is_trimmed_printable_and_short(given: str, kept: str) -> None:
    assert clean_name(given) == kept


def test_the_name_joins_the_query_percent_encoded() -> None:
    assert with_name("", "ada") == "name=ada"
    assert with_name("room=1", "Ada L.&x=1") == "room=1&name=Ada%20L.%26x%3D1"


async def _first_env(url: str) -> tuple[dict[str, str], dict[str, str]]:
    """The console envelope's hello env and the program's own environment (its first line)."""
    async with connect(url, open_timeout=timeout(10)) as ws:
        hello = json.loads(await asyncio.wait_for(ws.recv(), timeout(10)))
        assert hello["type"] == "hello", hello
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), timeout(10)))
            if message["type"] == "stdout":
                return hello["env"], json.loads(message["data"])


async def _serve_and_ask(
    script: Path, target: str, *flags: str
) -> tuple[list[Connected], dict[str, str], dict[str, str]]:
    bus = EventBus()
    seen: list[Connected] = []

    def on_event(event: Event) -> None:
        if isinstance(event, Connected):
            seen.append(event)

    bus.subscribe(on_event, messages=False)
    server = Server(local_config(script, *flags), bus)
    await server.start()
    try:
        told, env = await _first_env(f"ws://127.0.0.1:{server.port}{target}")
    finally:
        await server.close()
    return seen, told, env


ENVELOPE = "/_wsdev/ws?path=/chat&query=" + quote("room=1", safe="") + "&name=%20Ada%07%20L.%20"


async def test_without_names_wsdev_keeps_the_name_and_the_program_never_sees_it(
    tmp_script: ScriptWriter,
) -> None:
    script = tmp_script("env.py", ENV_BOT)
    seen, told, env = await _serve_and_ask(script, ENVELOPE)
    assert [event.conn.client_name for event in seen] == ["Ada L."]
    assert env["QUERY_STRING"] == "room=1" and env["REQUEST_URI"] == "/chat?room=1"
    assert told["QUERY_STRING"] == "room=1"
    # Not in any variable: not the query, not the request URI, not a header.
    assert not [key for key, value in env.items() if "Ada" in value or "name=" in value]


async def test_with_names_the_program_sees_it_in_its_query(tmp_script: ScriptWriter) -> None:
    script = tmp_script("env.py", ENV_BOT)
    seen, told, env = await _serve_and_ask(script, ENVELOPE, "--names")
    assert [event.conn.client_name for event in seen] == ["Ada L."]
    assert env["QUERY_STRING"] == "room=1&name=Ada%20L."
    assert env["REQUEST_URI"] == "/chat?room=1&name=Ada%20L."
    assert env["PATH_INFO"] == "/chat" and told["QUERY_STRING"] == env["QUERY_STRING"]


async def test_only_the_console_gives_names(tmp_script: ScriptWriter) -> None:
    """A plain client's own ``name=`` is its query, as under websocketd; it names nobody."""
    script = tmp_script("env.py", ENV_BOT)
    bus = EventBus()
    seen: list[Connected] = []
    bus.subscribe(lambda e: seen.append(e) if isinstance(e, Connected) else None, messages=False)
    server = Server(local_config(script, "--names"), bus)
    await server.start()
    try:
        async with connect(f"ws://127.0.0.1:{server.port}/?name=eve") as ws:
            env = json.loads(await asyncio.wait_for(ws.recv(), timeout(10)))
    finally:
        await server.close()
    assert env["QUERY_STRING"] == "name=eve"
    assert [event.conn.client_name for event in seen] == [""]


async def test_an_empty_name_is_no_name(tmp_script: ScriptWriter) -> None:
    script = tmp_script("env.py", ENV_BOT)
    seen, _, env = await _serve_and_ask(script, "/_wsdev/ws?path=/&query=&name=%20%0A", "--names")
    assert [event.conn.client_name for event in seen] == [""]
    assert env["QUERY_STRING"] == ""


async def test_the_log_names_who_connected(tmp_script: ScriptWriter) -> None:
    script = tmp_script("env.py", ENV_BOT)
    async with run_wsdev(str(script)) as server:
        url = f"{server.ws_url}/_wsdev/ws?path=/&query=&name=ada"
        await _first_env(url)
        line = (await server.wait_for_log(r".*\| CONNECT\b.*")).group(0)
        assert "name:'ada'" in line and "remote:'127.0.0.1'" in line


def test_the_events_feed_names_the_connection() -> None:
    from wsdev.events import ConnectionInfo
    from wsdev.feed import event_to_json

    conn = ConnectionInfo("1", 1, "10.0.0.5", "/", "", "", "", "bot.py", client_name="ada")
    assert event_to_json(Connected(conn))["conn"]["name"] == "ada"
