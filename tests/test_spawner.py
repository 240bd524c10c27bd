"""The spawn helper (``spawner`` and ``spawnhelper``): real helper processes, real programs."""

from __future__ import annotations

import array
import asyncio
import ctypes
import ctypes.util
import errno
import logging
import os
import signal
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from conftest import process_gone, timeout
from wsdev import spawnwire
from wsdev.events import ExitStatus
from wsdev.orphans import PR_SET_CHILD_SUBREAPER, become_subreaper
from wsdev.process import Child
from wsdev.spawner import Spawner

pytestmark = pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="the helper needs pidfds")

ENV = {"PATH": "/usr/bin:/bin"}


@pytest.fixture
async def spawner() -> AsyncIterator[Spawner]:
    spawner = Spawner()
    spawner.inline_when_idle = False  # every program through the helper, as in a burst
    spawner.start()
    assert await asyncio.wait_for(spawner.until_ready(), 10)
    yield spawner
    spawner.close()


async def started(spawner: Spawner, argv: list[str], env: dict[str, str] = ENV) -> Child | OSError:
    result: asyncio.Future[Child | OSError] = asyncio.get_running_loop().create_future()
    spawner.spawn(argv, env, result.set_result)
    return await asyncio.wait_for(result, 10)


async def spawned(spawner: Spawner, argv: list[str], env: dict[str, str] = ENV) -> Child:
    child = await started(spawner, argv, env)
    assert isinstance(child, Child), child
    return child


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])


def helper_pid(spawner: Spawner) -> int:
    helpers = [
        pid
        for pid in map(
            int, Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split()
        )
        if b"wsdev.spawnhelper" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]
    assert len(helpers) == 1, helpers
    return helpers[0]


async def ends_as_wsdevs_own_child(child: Child) -> None:
    """``child`` (a ``cat``) is wsdev's own, and ends with its stdin."""
    assert parent_of(child.pid) == os.getpid()
    os.close(child.stdin)
    assert await asyncio.wait_for(child.exited, 10) == ExitStatus(code=0)
    os.close(child.stdout)
    os.close(child.stderr)


async def read_to_end(fd: int) -> bytes:
    loop = asyncio.get_running_loop()
    with open(fd, "rb", buffering=0) as pipe:
        return await loop.run_in_executor(None, pipe.read)


async def test_a_program_runs_with_its_pipes_and_exit_reported_by_the_helper(
    spawner: Spawner,
) -> None:
    # Its descriptors are 0, 1 and 2 only: not the helper's socket, nor anything of wsdev's.
    lister = await spawned(spawner, ["/bin/ls", "/proc/self/fd"])
    os.close(lister.stdin)
    os.close(lister.stderr)
    assert (await read_to_end(lister.stdout)).split() == [b"0", b"1", b"2", b"3"]  # 3: ls's own
    await asyncio.wait_for(lister.exited, 10)
    child = await spawned(
        spawner, ["/bin/sh", "-c", 'read line; echo "got $line"; echo err >&2; exit 3']
    )
    assert parent_of(child.pid) == helper_pid(spawner)  # not wsdev's own child
    os.write(child.stdin, b"hello\n")
    os.close(child.stdin)
    assert await read_to_end(child.stdout) == b"got hello\n"
    assert await read_to_end(child.stderr) == b"err\n"
    assert await asyncio.wait_for(child.exited, 10) == ExitStatus(code=3)


async def test_the_environment_is_exactly_what_was_given(spawner: Spawner) -> None:
    env = {"ONLY": "a=b=c", "ÄÖ": "ünïcode"}
    child = await spawned(spawner, ["/usr/bin/env"], env)
    os.close(child.stdin)
    os.close(child.stderr)
    out = await read_to_end(child.stdout)
    assert sorted(out.decode().splitlines()) == sorted(f"{k}={v}" for k, v in env.items())
    await asyncio.wait_for(child.exited, 10)


async def test_a_program_that_cannot_run_is_an_oserror_with_its_errno(
    spawner: Spawner, tmp_path: Path
) -> None:
    missing = await started(spawner, [str(tmp_path / "missing")])
    assert isinstance(missing, OSError) and missing.errno == errno.ENOENT
    script = tmp_path / "not-executable"
    script.write_text("#!/bin/sh\necho hi\n")
    refused = await started(spawner, [str(script)])
    assert isinstance(refused, OSError) and refused.errno == errno.EACCES
    # Nothing was left open for them: wsdev's descriptors are as before.
    before = len(os.listdir("/proc/self/fd"))
    assert isinstance(await started(spawner, [str(tmp_path / "missing")]), OSError)
    assert len(os.listdir("/proc/self/fd")) == before


async def test_a_nul_byte_is_refused_without_reaching_the_helper(spawner: Spawner) -> None:
    refused = await started(spawner, ["/bin/echo", "a\0b"])
    assert isinstance(refused, OSError) and refused.errno == errno.EINVAL


async def test_a_request_too_big_for_the_helper_starts_in_wsdev(spawner: Spawner) -> None:
    env = {**ENV, **{f"BIG{i}": "x" * 50_000 for i in range(3)}}
    assert len(spawnwire.encode_request(1, ["/bin/sleep"], env)) > spawnwire.MAX_REQUEST
    child = await spawned(spawner, ["/bin/sleep", "5"], env)
    assert parent_of(child.pid) == os.getpid()
    child.signal_group(signal.SIGKILL)
    assert await asyncio.wait_for(child.exited, 10) == ExitStatus(signal=signal.SIGKILL)


async def test_poll_takes_an_exit_the_helper_has_already_reported(spawner: Spawner) -> None:
    child = await spawned(spawner, ["/bin/true"])
    os.close(child.stdin)
    os.close(child.stderr)
    assert await read_to_end(child.stdout) == b""
    # The report is on its way; poll takes it in as soon as it is there, without a loop turn.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not child.poll():
        assert loop.time() < deadline
        os.sched_yield()
    assert child.exited.done() and child.exited.result() == ExitStatus(code=0)


@pytest.fixture
def subreaper() -> Iterator[None]:
    """This test process as wsdev is: the subreaper of what it starts (behaviour B6)."""
    if not become_subreaper():
        pytest.skip("no child subreaper here")
    yield
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


async def test_programs_outlive_a_killed_helper_and_are_watched_by_wsdev(
    spawner: Spawner, subreaper: None, caplog: pytest.LogCaptureFixture
) -> None:
    child = await spawned(spawner, ["/bin/sh", "-c", "read line; exit 5"])
    helper = helper_pid(spawner)
    with caplog.at_level(logging.WARNING, logger="wsdev.spawner"):
        os.kill(helper, signal.SIGKILL)
        await asyncio.wait_for(spawner.until_gone(), 10)
    assert process_gone(helper)
    assert "spawn helper has ended (signal 9)" in caplog.text
    assert parent_of(child.pid) == os.getpid()  # adopted: wsdev is the subreaper
    os.write(child.stdin, b"go\n")
    assert await asyncio.wait_for(child.exited, 10) == ExitStatus(code=5)
    # And programs go on starting, now in wsdev itself.
    await ends_as_wsdevs_own_child(await spawned(spawner, ["/bin/cat"]))


async def test_the_helper_leaves_ctrl_c_and_sigterm_to_wsdev(spawner: Spawner) -> None:
    helper = helper_pid(spawner)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        os.kill(helper, sig)
    # A request after the signals is answered: the helper took them and went on.
    child = await spawned(spawner, ["/bin/cat"])
    assert parent_of(child.pid) == helper and spawner.ready
    os.close(child.stdin)
    assert await asyncio.wait_for(child.exited, 10) == ExitStatus(code=0)
    os.close(child.stdout)
    os.close(child.stderr)


async def test_close_ends_the_helper(spawner: Spawner) -> None:
    helper = helper_pid(spawner)
    spawner.close()
    assert process_gone(helper)
    # Programs still start, now in wsdev itself.
    await ends_as_wsdevs_own_child(await spawned(spawner, ["/bin/cat"]))


async def test_a_lone_program_starts_in_wsdev_and_the_next_ones_of_its_turn_in_the_helper(
    spawner: Spawner,
) -> None:
    spawner.inline_when_idle = True
    children: list[Child] = []
    results: list[asyncio.Future[Child | OSError]] = []
    for _ in range(2):  # connections that arrive together: one loop turn
        for _ in range(3):
            result: asyncio.Future[Child | OSError] = asyncio.get_running_loop().create_future()
            spawner.spawn(["/bin/cat"], ENV, result.set_result)
            results.append(result)
        for result in results[-3:]:
            child = await asyncio.wait_for(result, 10)
            assert isinstance(child, Child)
            children.append(child)
    helper = helper_pid(spawner)
    assert [parent_of(child.pid) for child in children] == [os.getpid(), helper, helper] * 2
    for child in children:
        os.close(child.stdin)
    for child in children:
        assert await asyncio.wait_for(child.exited, 10) == ExitStatus(code=0)
        os.close(child.stdout)
        os.close(child.stderr)


def test_requests_and_replies_survive_the_wire() -> None:
    argv = ["/bin/prog", "", "two words", "ünï"]
    env = {"A": "1=2", "EMPTY": "", "BYTES": "\udcff"}
    request_id, got_argv, got_env = spawnwire.decode_request(spawnwire.encode_request(7, argv, env))
    assert request_id == 7
    assert got_argv == [os.fsencode(a) for a in argv]
    assert got_env == {os.fsencode(k): os.fsencode(v) for k, v in env.items()}
    replies = [spawnwire.Reply.started(i, 1000 + i) for i in range(3000)]
    messages = list(spawnwire.encode_replies(replies))
    assert len(messages) == 3
    assert [r for m in messages for r in spawnwire.decode_replies(m)] == replies
    for bad in (["/bin/a\0b"], ["/bin/prog", "x\0"]):
        with pytest.raises(ValueError):
            spawnwire.encode_request(1, bad, {})
    with pytest.raises(ValueError):
        spawnwire.encode_request(1, ["/bin/prog"], {"A": "b\0"})


def test_the_helper_reports_the_exit_of_a_program_it_has_no_pidfd_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Out of descriptors for a pidfd, the helper still reaps the program and reports its exit.
    from wsdev import spawnhelper

    def no_pidfd(pid: int) -> int:
        raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))

    monkeypatch.setattr(os, "pidfd_open", no_pidfd)  # the helper runs in this process here
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    helper = threading.Thread(target=spawnhelper.Helper(theirs).serve)
    helper.start()
    try:
        ours.settimeout(timeout(10))
        (ready,) = spawnwire.decode_replies(ours.recv(spawnwire.REPLY_BUFFER))
        assert ready.kind == b"R"
        pipes = [os.pipe() for _ in range(3)]
        request = spawnwire.encode_request(1, ["/bin/sh", "-c", "exit 4"], ENV)
        far_ends = array.array("i", [pipes[0][0], pipes[1][1], pipes[2][1]])
        ours.sendmsg([request], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, far_ends)])
        for fd in far_ends:
            os.close(fd)
        replies: list[spawnwire.Reply] = []
        while not any(reply.kind == b"X" for reply in replies):
            replies += spawnwire.decode_replies(ours.recv(spawnwire.REPLY_BUFFER))
        started, exited = replies
        assert started.kind == b"S" and started.key == 1
        assert exited == spawnwire.Reply.exited(started.value, 4 << 8)
        for near, _ in pipes[1:]:
            os.close(near)
        os.close(pipes[0][1])
    finally:
        ours.close()  # the helper ends when wsdev's end closes
        helper.join(timeout(10))
    assert not helper.is_alive()
