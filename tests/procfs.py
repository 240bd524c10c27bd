"""What ``/proc`` says about a process, for the tests that prove nothing leaks (Linux only).

Another process's death, descriptors and memory announce themselves nowhere, so these are read
from ``/proc`` when a test has reached the moment it asserts about.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path

import pytest

from conftest import process_gone, timeout

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def open_fds(pid: int) -> list[str]:
    """What each open descriptor of ``pid`` points at (``socket:[…]``, ``pipe:[…]``, a path)."""
    fd_dir = Path(f"/proc/{pid}/fd")
    targets = []
    for fd in os.listdir(fd_dir):
        try:
            targets.append(os.readlink(fd_dir / fd))
        except FileNotFoundError:
            continue  # closed while listed
    return sorted(targets)


def children(pid: int) -> dict[int, str]:
    """Each process whose parent is ``pid``, with its state letter (``Z`` for a zombie).

    wsdev's spawn helper (behaviour B16) is part of wsdev, not a program it runs: the helper's
    own children are listed in its place.
    """
    found = _direct_children(pid)
    for child in list(found):
        if is_spawn_helper(child):
            del found[child]
            found.update(_direct_children(child))
    return found


def is_spawn_helper(pid: int) -> bool:
    try:
        return b"wsdev.spawnhelper" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return False


def _direct_children(pid: int) -> dict[int, str]:
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid:
            found[int(entry)] = state
    return found


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


async def wait_all_gone(pids: list[int], within: float = 10) -> list[int]:
    """Wait until every one of ``pids`` has ended; returns those still alive at the deadline."""

    async def poll() -> None:
        while not all(map(process_gone, pids)):
            await asyncio.sleep(0.05)  # no event announces another process's death

    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(poll(), timeout(within))
    return [pid for pid in pids if not process_gone(pid)]


async def wait_no_children(pid: int, within: float = 10) -> dict[int, str]:
    """Wait until ``pid`` has no child left (running or zombie); returns what is left."""

    async def poll() -> None:
        while children(pid):
            await asyncio.sleep(0.05)  # a reaped child announces itself nowhere outside ``pid``

    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(poll(), timeout(within))
    return children(pid)
