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
from typing import NamedTuple

import pytest
from websockets.asyncio.client import ClientConnection, connect

from conftest import (
    ScriptWriter,
    ServerProcess,
    converse,
    requires_websocketd,
    run_websocketd,
    run_wsdev,
    timeout,
)
from procfs import children, linux_only, wait_all_gone, wait_no_children
from rawhttp import upgrade_headers

pytestmark = linux_only

# One program, three behaviours chosen by the query string: a plain echo, one that ignores
# SIGINT and SIGTERM (so only the SIGKILL of the ladder ends it), and one whose background
# grandchild holds stdout open. Each says its pids first.
FAULTY = """#!/bin/sh
case "$QUERY_STRING" in
  stubborn) trap '' INT TERM; echo "$$"; while :; do sleep 1; done ;;
  grandchild) sleep 300 & echo "$$ $!"; wait ;;
  *) echo "$$"; exec cat ;;
esac
"""
KINDS = ("echo", "stubborn", "grandchild")


def assert_no_error_logged(server: ServerProcess) -> None:
    output = "\n".join(server.lines + server.stderr_lines)
    assert "Traceback" not in output, output
    assert not [line for line in server.lines if "| ERROR  |" in line], output


# ------------------------------------------------------------------------ shutdown under load


async def open_clients(server: ServerProcess, count: int) -> list[tuple[ClientConnection, str]]:
    """``count`` live connections, the kinds of FAULTY in turn, each past its first message."""
    semaphore = asyncio.Semaphore(50)  # what a burst of real clients looks like, not 500 at once

    async def one(index: int) -> tuple[ClientConnection, str]:
        kind = KINDS[index % len(KINDS)]
        async with semaphore:
            ws = await connect(f"{server.ws_url}/?{kind}", open_timeout=timeout(30))
            pids = await asyncio.wait_for(ws.recv(), timeout(30))
        assert isinstance(pids, str)
        return ws, pids

    return await asyncio.gather(*(one(i) for i in range(count)))


async def shutdown_with_live_connections(tmp_script: ScriptWriter, count: int) -> None:
    script = tmp_script("faulty.sh", FAULTY)
    async with run_wsdev(str(script)) as server:
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


async def test_sigterm_with_100_live_connections(tmp_script: ScriptWriter) -> None:
    await shutdown_with_live_connections(tmp_script, 99)


@pytest.mark.slow
async def test_sigterm_with_500_live_connections(tmp_script: ScriptWriter) -> None:
    await shutdown_with_live_connections(tmp_script, 501)


@requires_websocketd
async def test_websocketd_on_sigterm_drops_connections_without_a_close(
    tmp_script: ScriptWriter,
) -> None:
    """What websocketd 0.4.1 does in the same case, for docs/faults.md: Go's default SIGTERM
    ends it at once, so its clients see no Close frame, and its programs are left to find out."""
    script = tmp_script("faulty.sh", FAULTY)
    async with run_websocketd(str(script)) as server:
        clients = [await connect(f"{server.ws_url}/?{kind}") for kind in KINDS]
        pids = [int(pid) for ws in clients for pid in str(await ws.recv()).split()]
        server.proc.send_signal(signal.SIGTERM)
        status = await asyncio.wait_for(server.proc.wait(), timeout(10))
        for ws in clients:
            await asyncio.wait_for(ws.wait_closed(), timeout(10))
        codes = [ws.protocol.close_rcvd for ws in clients]
    survivors = await wait_all_gone(pids, within=2)
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    assert status != 0
    assert codes == [None, None, None]
    assert survivors  # at least the program ignoring SIGTERM


# ------------------------------------------------------------------------------- programs


async def test_a_grandchild_holding_stdout_is_ended_with_its_group(
    tmp_script: ScriptWriter,
) -> None:
    # The child exits, its background job still holds stdout: the job is in the child's process
    # group, so the ladder of behaviour B8 ends it and the connection closes. The job, adopted
    # by wsdev once its parent is gone, is reaped as the ladder ends: left as a zombie for the
    # periodic reaper (every 5 s), it counted as alive and held the close up until SIGKILL.
    script = tmp_script(
        "leaves.sh", '#!/bin/sh\nsleep 300 &\necho "$!"\nread line\necho "got $line"\nexit 0\n'
    )
    async with run_wsdev(str(script)) as server:
        seen = await converse(server.ws_url + "/", ["x"], within=10)
        grandchild = int(str(seen.messages[0]))
        assert await wait_all_gone([grandchild]) == []
        assert await wait_no_children(server.proc.pid, within=2) == {}
    assert seen.messages[1:] == ["got x"]
    assert seen.close_code == 1000
    assert_no_error_logged(server)


CRASH = "#!/bin/sh\nprintf 'complete\\npartial line'\nkill -SEGV $$\n"


async def test_a_program_crashing_mid_line_still_delivers_the_line(
    tmp_script: ScriptWriter,
) -> None:
    script = tmp_script("crash.sh", CRASH)
    async with run_wsdev(str(script)) as server:
        seen = await converse(server.ws_url + "/")
        assert await wait_no_children(server.proc.pid) == {}
    assert seen.messages == ["complete", "partial line"]
    assert (seen.close_code, seen.close_reason) == (1011, "signal SIGSEGV")


@requires_websocketd
async def test_websocketd_loses_the_line_a_crash_cut(tmp_script: ScriptWriter) -> None:
    script = tmp_script("crash.sh", CRASH)
    async with run_websocketd(str(script)) as server:
        seen = await converse(server.ws_url + "/")
    assert seen.messages == ["complete"]
    assert seen.close_code is None


# -------------------------------------------------------------------------------- clients

FLOOD = "#!/bin/sh\necho $$\nexec yes 0123456789abcdef0123456789abcdef\n"


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
    """The payload of the first (short, unmasked) text frame."""
    head = await asyncio.wait_for(reader.readexactly(2), timeout(10))
    return (await reader.readexactly(head[1] & 0x7F)).decode()


async def test_a_client_reset_mid_flood_ends_its_program(tmp_script: ScriptWriter) -> None:
    script = tmp_script("flood.sh", FLOOD)
    async with run_wsdev(str(script)) as server:
        pids = []
        for _ in range(10):
            client = await raw_upgrade(server.port)
            pids.append(int(await first_text(client.reader)))
            await client.reader.readexactly(1000)  # the flood is flowing
            reset(client)
        assert await wait_all_gone(pids) == []
        assert await wait_no_children(server.proc.pid) == {}
        served = await raw_upgrade(server.port)
        assert (await first_text(served.reader)).isdigit()
        reset(served)
    assert_no_error_logged(server)


async def test_a_client_that_stops_reading_holds_up_no_one(tmp_script: ScriptWriter) -> None:
    # Its program is paused (behaviour B4); other clients are served; shutdown does not wait
    # for the stalled socket beyond the close timeout, and ends the paused program.
    script = tmp_script("flood.sh", FLOOD)
    async with run_wsdev(str(script)) as server:
        stalled = await raw_upgrade(server.port)
        stalled_pid = int(await first_text(stalled.reader))
        # Nothing more is read from ``stalled``: its buffers fill and its program waits.
        for _ in range(3):
            other = await raw_upgrade(server.port)
            assert (await first_text(other.reader)).isdigit()
            assert await first_text(other.reader) == "0123456789abcdef0123456789abcdef"
            reset(other)
        server.proc.send_signal(signal.SIGTERM)
        status = await asyncio.wait_for(server.proc.wait(), timeout(15))
        stalled.writer.close()
    assert status == 0
    assert await wait_all_gone([stalled_pid]) == []
    assert_no_error_logged(server)


HALF = (
    "#!/bin/sh\necho $$\nwhile read line; do echo \"got $line\"; done\necho 'stdin ended'\n"
    "sleep 0.5\n"
)


async def half_close(port: int) -> tuple[list[str], bytes]:
    """Send one message, then end the stream (FIN) without a Close frame; what came back."""
    client = await raw_upgrade(port)
    pid = await first_text(client.reader)
    client.writer.write(bytes((0x81, 0x80 | 1)) + b"\0\0\0\0" + b"a")
    assert await first_text(client.reader) == "got a"
    client.writer.write_eof()
    rest = await asyncio.wait_for(client.reader.read(), timeout(10))
    client.writer.close()
    return [pid], rest


async def test_a_half_closed_client_ends_its_program(tmp_script: ScriptWriter) -> None:
    # A FIN without a Close frame is an abnormal closure (1006): the program's stdin ends and
    # the A4 ladder follows; wsdev closes its side too.
    script = tmp_script("half.sh", HALF)
    async with run_wsdev(str(script)) as server:
        pids, rest = await half_close(server.port)
        await server.wait_for_log(r"\| DISCONNECT$")
        assert await wait_all_gone([int(pids[0])]) == []
        served = await converse(server.ws_url + "/", ["b"], read=2)
    assert served.messages[1] == "got b"
    assert_no_error_logged(server)
    print(f"half-close: wsdev sent {rest!r}")


@requires_websocketd
async def test_websocketd_with_a_half_closed_client(tmp_script: ScriptWriter) -> None:
    script = tmp_script("half.sh", HALF)
    async with run_websocketd(str(script)) as server:
        pids, rest = await half_close(server.port)
        survivors = await wait_all_gone([int(pids[0])])
    print(f"half-close: websocketd sent {rest!r}, survivors {survivors}")
    assert survivors == []


async def test_many_clients_vanishing_together_leave_the_server_serving(
    tmp_script: ScriptWriter,
) -> None:
    script = tmp_script("cat.sh", "#!/bin/sh\necho $$\nexec cat\n")
    async with run_wsdev(str(script)) as server:
        connections = [await raw_upgrade(server.port) for _ in range(40)]
        pids = [int(await first_text(client.reader)) for client in connections]
        for client in connections:
            reset(client)
        assert await wait_all_gone(pids) == []
        served = await converse(server.ws_url + "/", ["after"], read=2)
    assert served.messages[1] == "after"
    assert_no_error_logged(server)
