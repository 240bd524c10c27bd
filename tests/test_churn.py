"""Churn: thousands of connect/disconnect cycles leave wsdev as they found it.

A real wsdev process serves a program that echoes (and exits once it has echoed "bye"), and
clients connect, talk and leave in every way a client leaves: a clean Close, a vanishing without
one, a TCP reset, or the program ending first. Afterwards wsdev holds exactly the descriptors it
held before, has no child left (running or zombie), and its resident memory grew by a bounded
amount. The figures go into the test's report (``-rA`` or the terminal summary shows them).

``test_edge_cases.py`` proves the same for a burst of 120 at once; this is the long version.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections import Counter
from collections.abc import Callable

import pytest

from conftest import ServerProcess, run_wsdev, timeout
from procfs import linux_only, open_fds, rss_kib, wait_no_children
from rawhttp import upgrade_headers

pytestmark = linux_only

# Echoes each line, and exits after echoing "bye": one exec per connection, no shell.
PROGRAM = ("sed", "-u", "/^bye$/q")
# How each cycle ends, in turn.
ENDINGS = ("close", "vanish", "reset", "program-exits")
PARALLEL = 8  # clients in flight at once
WARM_UP = 40  # cycles before the baseline, so first-use allocations are not counted


def upgrade_request(port: int, query: str) -> bytes:
    lines = [f"GET /?{query} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{name}: {value}" for name, value in upgrade_headers()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def masked(opcode: int, payload: bytes) -> bytes:
    return bytes((0x80 | opcode, 0x80 | len(payload))) + b"\0\0\0\0" + payload


async def cycle(port: int, ending: str) -> None:
    """One connection, raw (a client library adds cost but nothing to prove), ended as told."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(upgrade_request(port, ending))
        await reader.readuntil(b"\r\n\r\n")
        if ending == "program-exits":
            writer.write(masked(0x1, b"bye"))
            await reader.read()  # "bye", the Close, the end of the stream
            return
        writer.write(masked(0x1, b"ping"))
        assert await reader.readexactly(6) == b"\x81\x04ping"
        if ending == "close":
            writer.write(masked(0x8, struct.pack("!H", 1000)))
            await reader.read()  # the answering Close, then the end of the stream
        elif ending == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        writer.transport.abort()


async def churn(server: ServerProcess, count: int, first: int = 0) -> None:
    semaphore = asyncio.Semaphore(PARALLEL)

    async def one(index: int) -> None:
        async with semaphore:
            await cycle(server.port, ENDINGS[index % len(ENDINGS)])

    await asyncio.gather(*(one(first + i) for i in range(count)))


async def all_disconnected(server: ServerProcess, count: int) -> None:
    def seen() -> int:
        return sum(line.endswith("| DISCONNECT") for line in server.lines)

    while seen() < count:
        server._changed.clear()
        await server._changed.wait()


def fd_kinds(pid: int) -> Counter[str]:
    """The open descriptors of ``pid`` by kind: ``socket``, ``pipe``, ``anon_inode:…``, paths."""
    return Counter(target.split(":[")[0] for target in open_fds(pid))


async def churn_leaves_nothing(
    count: int, report: Callable[[str, object], None], rss_bound_kib: int
) -> None:
    async with run_wsdev(*PROGRAM) as server:
        pid = server.proc.pid
        await churn(server, WARM_UP)
        await asyncio.wait_for(all_disconnected(server, WARM_UP), timeout(30))
        assert await wait_no_children(pid) == {}
        fds_before, rss_before = fd_kinds(pid), rss_kib(pid)

        await asyncio.wait_for(churn(server, count, WARM_UP), timeout(30 + count / 20))
        await asyncio.wait_for(all_disconnected(server, WARM_UP + count), timeout(30))
        left = await wait_no_children(pid)
        fds_after, rss_after = fd_kinds(pid), rss_kib(pid)
        assert server.proc.returncode is None
    growth = rss_after - rss_before
    report("churn cycles", count)
    report("wsdev RSS before, KiB", rss_before)
    report("wsdev RSS after, KiB", rss_after)
    report("wsdev RSS growth, KiB", growth)
    report(
        "wsdev descriptors before / after",
        f"{sum(fds_before.values())} / {sum(fds_after.values())}",
    )
    assert left == {}, left
    assert fds_after == fds_before
    assert growth < rss_bound_kib, growth
    errors = [line for line in server.lines if "| ERROR  |" in line or "Traceback" in line]
    assert not errors, errors[:5]


@pytest.fixture
def report(record_property: Callable[[str, object], None]) -> Callable[[str, object], None]:
    """Attach a figure to the test's report; the terminal summary lists them (conftest)."""

    def add(name: str, value: object) -> None:
        record_property(f"figure: {name}", value)

    return add


async def test_300_cycles_leave_no_descriptor_child_or_memory(
    report: Callable[[str, object], None],
) -> None:
    await churn_leaves_nothing(300, report, rss_bound_kib=8 * 1024)


@pytest.mark.slow
async def test_5000_cycles_leave_no_descriptor_child_or_memory(
    report: Callable[[str, object], None],
) -> None:
    await churn_leaves_nothing(5000, report, rss_bound_kib=16 * 1024)
