"""docs/deploy.md's HAProxy configuration, run for real: Debian's HAProxy on a loopback port in
front of three wsdev instances on Unix sockets, with its health checks on /_wsdev/health
(behaviour B12). Only the socket folder and the port of the documented block change."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import websockets

from conftest import ScriptWriter
from proxied import (
    DOCUMENTED_FOLDER,
    INSTANCES,
    PROGRAM,
    Cluster,
    cluster,
    documented_block,
    echoes,
    find_tool,
    open_session,
)

HAPROXY = find_tool("haproxy")
pytestmark = pytest.mark.skipif(
    HAPROXY is None, reason="HAProxy is not installed (apt-get install -y haproxy)"
)


@contextlib.asynccontextmanager
async def behind_haproxy(folder: Path, program: Path) -> AsyncIterator[Cluster]:
    def start(port: int) -> list[str]:
        conf = documented_block("haproxy").replace(DOCUMENTED_FOLDER, f"{folder}/")
        assert "bind :80" in conf
        conf = conf.replace("bind :80", f"bind 127.0.0.1:{port}")
        path = folder / "haproxy.cfg"
        path.write_text(conf)
        assert HAPROXY is not None
        return [HAPROXY, "-db", "-f", str(path)]  # -db: in the foreground, messages on stderr

    async with cluster(folder, program, start, "--drain=600") as nodes:
        yield nodes


async def test_three_instances_behind_haproxy(tmp_path: Path, tmp_script: ScriptWriter) -> None:
    program = tmp_script("where.sh", PROGRAM)
    async with behind_haproxy(tmp_path, program) as nodes:
        url = nodes.url
        sessions = [await open_session(url, port_given=False) for _ in range(2 * INSTANCES)]
        assert {s.instance for s in sessions} == set(range(1, INSTANCES + 1))
        # HAProxy passes the client's own Forwarded on: wsdev reads X-Forwarded-For first.
        forged = {"Forwarded": "for=192.0.2.66", "X-Forwarded-For": "192.0.2.66"}
        sessions.append(await open_session(url, forged, port_given=False))

        # One instance drains: its health check fails, HAProxy sends it nothing new.
        victim = sessions[0].instance
        on_victim = [s for s in sessions if s.instance == victim]
        others = [s for s in sessions if s.instance != victim]
        draining = nodes.instances[victim - 1]
        draining.proc.send_signal(signal.SIGTERM)
        await nodes.proxy_says(rf"Server wsdev/wsdev{victim} is DOWN")
        fresh = [await open_session(url, port_given=False) for _ in range(2 * INSTANCES)]
        assert victim not in {s.instance for s in fresh}
        for n, session in enumerate(on_victim):
            await echoes(session, f"draining but served {n}")
        # A second SIGTERM: its own sessions close with 1001, none of the others.
        draining.proc.send_signal(signal.SIGTERM)
        for session in on_victim:
            with pytest.raises(websockets.ConnectionClosed):
                await session.ws.recv()
            assert session.ws.close_code == 1001
        assert await draining.proc.wait() == 0
        for n, session in enumerate([*others, *fresh]):
            await echoes(session, f"still here {n}")
            await session.ws.close()
