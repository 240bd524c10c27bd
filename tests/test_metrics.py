"""/_wsdev/health and /_wsdev/metrics (behaviour B12): scraped over HTTP and read by
Prometheus' own parser."""

from __future__ import annotations

import aiohttp
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from conftest import ScriptWriter, run_wsdev
from wsdev.cli import build_config, parse_args
from wsdev.metrics import may_read


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, by name and labels; the parser raises on bad syntax."""
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        assert family.documentation, f"{family.name} has no HELP"
        for sample in family.samples:
            found[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return found


async def test_metrics_count_sessions_messages_exits_refusals_and_stderr(
    tmp_script: ScriptWriter,
) -> None:
    script = tmp_script("once.sh", '#!/bin/sh\nread line\necho "$line"\necho oops >&2\nexit 3\n')
    async with run_wsdev("--metrics", "--maxforks=1", str(script)) as server:
        ws = await connect(server.ws_url + "/")
        with pytest.raises(websockets.InvalidStatus) as refused:
            await connect(server.ws_url + "/")
        assert refused.value.response.status_code == 429
        await ws.send("hello")
        assert await ws.recv() == "hello"
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()
        await server.wait_for_log(r"DISCONNECT")
        async with aiohttp.ClientSession() as http:
            async with http.get(server.http_url + "/_wsdev/metrics") as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
                got = samples(await response.text())
    expected = {
        ("wsdev_connections", ()): 0,
        ("wsdev_connections_total", ()): 1,
        ("wsdev_messages_total", (("direction", "in"),)): 1,
        ("wsdev_messages_total", (("direction", "out"),)): 1,
        ("wsdev_message_bytes_total", (("direction", "in"),)): 5,
        ("wsdev_message_bytes_total", (("direction", "out"),)): 5,
        ("wsdev_children_started_total", ()): 1,
        ("wsdev_children_exited_total", (("status", "exit 3"),)): 1,
        ("wsdev_refusals_total", (("status", "429"),)): 1,
        ("wsdev_stderr_lines_total", ()): 1,
        ("wsdev_restarts_total", ()): 0,
        ("wsdev_draining", ()): 0,
    }
    assert {key: got.get(key) for key in expected} == expected


def test_health_and_metrics_answer_loopback_and_metrics_from_only() -> None:
    plain = build_config(parse_args(["cat"]))
    assert may_read(plain, "127.0.0.1")
    assert may_read(plain, "::1")
    assert may_read(plain, "")  # a Unix socket peer
    assert not may_read(plain, "192.0.2.7")
    opened = build_config(parse_args(["--metrics-from=192.0.2.0/24", "cat"]))
    assert opened.metrics
    assert may_read(opened, "192.0.2.7")
    assert not may_read(opened, "198.51.100.1")
