"""Faults on either side of a connection, end to end against a real wsdev process.

Programs that ignore SIGINT and SIGTERM, leave a grandchild holding stdout, or crash in the middle
of a line; clients that vanish with a TCP reset, stop reading, or half-close; and SIGTERM to wsdev
with many live connections. Each test asserts what the client sees, that no program or descendant
is left behind, and that wsdev neither logs an error of its own nor stops serving others.

Already proven elsewhere, and not repeated here: the per-connection signal ladder for a program
ignoring signals (``test_process.py``), a second Ctrl+C (``test_edge_cases.py``), an escaped
``setsid`` grandchild holding stdout (``test_edge_cases.py``) or outliving shutdown
(``test_robustness.py``), a client gone before or during its 101 (``test_robustness.py``), a
client vanishing mid-frame (``test_bridge.py``), and a client that stops reading keeping memory
bounded (``test_bridge.py``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import NamedTuple

import pytest
import pytest_asyncio
from websockets.asyncio.client import ClientConnection, connect

from conftest import (
    ServerProcess,
    converse,
    requires_websocketd,
    run_websocketd,
    run_wsdev,
    timeout,
)
from procfs import children, linux_only, wait_all_gone, wait_no_children
from rawhttp import upgrade_headers

pytestmark = [linux_only, pytest.mark.asyncio(loop_scope="module")]

# One program, its behaviour chosen by the query string; each says its pid(s) first where a test
# needs them. ``stubborn`` ignores SIGINT and SIGTERM (only the ladder's SIGKILL ends it);
# ``grandchild`` and ``leaves`` start a background job that holds stdout, the latter exiting
# while the job runs on; ``crash`` dies of SIGSEGV in the middle of a line; ``flood`` writes
# without end; ``half`` answers each line and says when stdin ended.
FAULTY = """#!/bin/sh
case "$QUERY_STRING" in
  stubborn) trap '' INT TERM; echo "$$"; while :; do sleep 1; done ;;
  grandchild) sleep 300 & echo "$$ $!"; wait ;;
  leaves) sleep 300 & echo "$!"; read line; echo "got $line"; exit 0 ;;
  crash) printf 'complete\\npartial line'; kill -SEGV $$ ;;
  flood) echo "$$"; exec yes 0123456789abcdef0123456789abcdef ;;
  half) echo "$$"; while read line; do echo "got $line"; done; echo 'stdin ended'; sleep 0.5 ;;
  *) echo "$$"; exec cat ;;
esac
"""
KINDS = ("echo", "stubborn", "grandchild")
FLOOD_LINE = "0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("faulty") / "faulty.sh"
    path.write_text(FAULTY)
    path.chmod(0o755)
    return path


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def shared(faulty: Path) -> AsyncIterator[ServerProcess]:
    """One wsdev for the tests that leave it running (a start costs more than a test)."""
    async with run_wsdev(str(faulty)) as server:
        yield server
        assert server.proc.returncode is None
    assert_no_error_logged(server)


def assert_no_error_logged(server: ServerProcess) -> None:
    output = "\n".join(server.lines + server.stderr_lines)
    assert "Traceback" not in output, output
    assert not [line for line in server.lines if "| ERROR  |" in line], output


# ------------------------------------------------------------------------ shutdown under load


async def open_clients(server: ServerProcess, count: int) -> list[tuple[ClientConnection, str]]:
    """``count`` live connections, the KINDS in turn, each past its first message."""
    semaphore = asyncio.Semaphore(50)  # what a burst of real clients looks like, not 500 at once

    async def one(index: int) -> tuple[ClientConnection, str]:
        kind = KINDS[index % len(KINDS)]
        async with semaphore:
            ws = await connect(f"{server.ws_url}/?{kind}", open_timeout=timeout(30))
            pids = await asyncio.wait_for(ws.recv(), timeout(30))
        assert isinstance(pids, str)
        return ws, pids

    return await asyncio.gather(*(one(i) for i in range(count)))


async def shutdown_with_live_connections(faulty: Path, count: int) -> None:
    async with run_wsdev(str(faulty)) as server:
        clients = await open_clients(server, count)
        pids = [int(pid) for _, said in clients for pid in said.split()]
        assert len(children(server.proc.pid)) == count
        server.proc.send_signal(signal.SIGTERM)

        async def close_code(ws: ClientConnection) -> int | None:
            await ws.wait_closed()
            return ws.protocol.close_rcvd.code if ws.protocol.close_rcvd else None

        codes = await asyncio.wait_for(
            asyncio.gather(*(close_code(ws) for ws, _ in clients)), timeout(30)
        )
        status = await asyncio.wait_for(server.proc.wait(), timeout(30))
    assert codes == [1001] * count
    assert status == 0
    assert await wait_all_gone(pids) == []
    assert_no_error_logged(server)


async def test_sigterm_with_100_live_connections(faulty: Path) -> None:
    await shutdown_with_live_connections(faulty, 99)


@pytest.mark.slow
async def test_sigterm_with_500_live_connections(faulty: Path) -> None:
    await shutdown_with_live_connections(faulty, 501)


@requires_websocketd
async def test_websocketd_on_sigterm_drops_connections_without_a_close(faulty: Path) -> None:
    """What websocketd 0.4.1 does in the same case, for docs/faults.md: Go's default SIGTERM
    ends it at once, so its clients see no Close frame, and its programs are left to find out."""
    async with run_websocketd(str(faulty)) as server:
        clients = [await connect(f"{server.ws_url}/?{kind}") for kind in KINDS]
        pids = [int(pid) for ws in clients for pid in str(await ws.recv()).split()]
        server.proc.send_signal(signal.SIGTERM)
        status = await asyncio.wait_for(server.proc.wait(), timeout(10))
        for ws in clients:
            await asyncio.wait_for(ws.wait_closed(), timeout(10))
        codes = [ws.protocol.close_rcvd for ws in clients]
    survivors = await wait_all_gone(pids, within=0.5)  # those not ignoring SIGTERM may end
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    assert status != 0
    assert codes == [None, None, None]
    assert survivors  # at least the program ignoring SIGTERM


# ------------------------------------------------------------------------------- programs


async def test_a_grandchild_holding_stdout_is_ended_with_its_group(shared: ServerProcess) -> None:
    # The child exits, its background job still holds stdout: the job is in the child's process
    # group, so the ladder of behaviour B8 ends it and the connection closes. The job, adopted
    # by wsdev once its parent is gone, is reaped as the ladder ends: left as a zombie for the
    # periodic reaper (every 5 s), it counted as alive and held the close up until SIGKILL.
    seen = await converse(shared.ws_url + "/?leaves", ["x"], within=10)
    grandchild = int(str(seen.messages[0]))
    assert await wait_all_gone([grandchild]) == []
    assert await wait_no_children(shared.proc.pid, within=2) == {}
    assert seen.messages[1:] == ["got x"]
    assert seen.close_code == 1000


async def test_a_program_crashing_mid_line_still_delivers_the_line(shared: ServerProcess) -> None:
    seen = await converse(shared.ws_url + "/?crash")
    assert await wait_no_children(shared.proc.pid) == {}
    assert seen.messages == ["complete", "partial line"]
    assert (seen.close_code, seen.close_reason) == (1011, "signal SIGSEGV")


@requires_websocketd
async def test_websocketd_loses_the_line_a_crash_cut(faulty: Path) -> None:
    async with run_websocketd(str(faulty)) as server:
        seen = await converse(server.ws_url + "/?crash")
    assert seen.messages == ["complete"]
    assert seen.close_code is None


# -------------------------------------------------------------------------------- clients


class Raw(NamedTuple):
    """A raw WebSocket connection past its 101 (the writer keeps the socket open)."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    @property
    def sock(self) -> socket.socket:
        sock: socket.socket = self.writer.get_extra_info("socket")
        return sock


async def raw_upgrade(port: int, target: str = "/") -> Raw:
    """A raw WebSocket connection, upgraded by hand."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = [f"GET {target} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{name}: {value}" for name, value in upgrade_headers()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout(10))
    assert head.startswith(b"HTTP/1.1 101"), head
    return Raw(reader, writer)


def reset(client: Raw) -> None:
    """Vanish with a TCP reset: close with SO_LINGER 0, as a crashed or unplugged peer does."""
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.writer.transport.abort()


async def first_text(reader: asyncio.StreamReader) -> str:
    """The payload of the next (short, unmasked) text frame."""
    head = await asyncio.wait_for(reader.readexactly(2), timeout(10))
    return (await reader.readexactly(head[1] & 0x7F)).decode()


async def test_a_client_reset_mid_flood_ends_its_program(shared: ServerProcess) -> None:
    pids = []
    for _ in range(10):
        client = await raw_upgrade(shared.port, "/?flood")
        pids.append(int(await first_text(client.reader)))
        await client.reader.readexactly(1000)  # the flood is flowing
        reset(client)
    assert await wait_all_gone(pids) == []
    assert await wait_no_children(shared.proc.pid) == {}
    assert (await converse(shared.ws_url + "/", ["next"], read=2)).messages[1] == "next"


async def test_many_clients_vanishing_together_leave_the_server_serving(
    shared: ServerProcess,
) -> None:
    connections = [await raw_upgrade(shared.port) for _ in range(40)]
    pids = [int(await first_text(client.reader)) for client in connections]
    for client in connections:
        reset(client)
    assert await wait_all_gone(pids) == []
    assert (await converse(shared.ws_url + "/", ["after"], read=2)).messages[1] == "after"


async def half_close(port: int) -> tuple[int, bytes]:
    """Send one message, then end the stream (FIN) without a Close frame: the program's pid,
    and whatever came back after the FIN."""
    client = await raw_upgrade(port, "/?half")
    pid = int(await first_text(client.reader))
    client.writer.write(bytes((0x81, 0x80 | 1)) + b"\0\0\0\0" + b"a")
    assert await first_text(client.reader) == "got a"
    client.writer.write_eof()
    rest = await asyncio.wait_for(client.reader.read(), timeout(10))
    client.writer.close()
    return pid, rest


async def test_a_half_closed_client_ends_its_program(shared: ServerProcess) -> None:
    # A FIN without a Close frame is an abnormal closure (1006): the program's stdin ends and
    # the A4 ladder follows; wsdev closes its side too, and sends nothing more.
    pid, rest = await half_close(shared.port)
    assert rest == b""
    assert await wait_all_gone([pid]) == []
    assert (await converse(shared.ws_url + "/?half", ["b"], read=2)).messages[1] == "got b"


@requires_websocketd
async def test_websocketd_with_a_half_closed_client(faulty: Path) -> None:
    async with run_websocketd(str(faulty)) as server:
        pid, rest = await half_close(server.port)
        survivors = await wait_all_gone([pid])
    assert rest == b""
    assert survivors == []


async def test_a_client_that_stops_reading_holds_up_no_one(faulty: Path) -> None:
    # Its program is paused (behaviour B4); other clients are served; shutdown does not wait
    # for the stalled socket beyond the close timeout, and ends the paused program.
    async with run_wsdev(str(faulty)) as server:
        stalled = await raw_upgrade(server.port, "/?flood")
        stalled_pid = int(await first_text(stalled.reader))
        # Nothing more is read from ``stalled``: its buffers fill and its program waits.
        for _ in range(3):
            other = await raw_upgrade(server.port, "/?flood")
            assert (await first_text(other.reader)).isdigit()
            assert await first_text(other.reader) == FLOOD_LINE
            reset(other)
        server.proc.send_signal(signal.SIGTERM)
        status = await asyncio.wait_for(server.proc.wait(), timeout(15))
        stalled.writer.close()
    assert status == 0
    assert await wait_all_gone([stalled_pid]) == []
    assert_no_error_logged(server)
