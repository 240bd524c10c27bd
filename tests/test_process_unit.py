"""``process.py`` on its own: spawning, both ways of noticing an exit, the group escalation."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from conftest import process_gone
from wsdev import process
from wsdev.events import ExitStatus


@pytest.fixture(params=["pidfd", "sigchld"])
def exit_watch(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run each test with the Linux pidfd watcher and with the portable SIGCHLD fallback."""
    if request.param == "pidfd" and not process._PIDFD_WORKS:
        pytest.skip("pidfd_open is not available here")
    if request.param == "sigchld":
        monkeypatch.setattr(process, "_PIDFD_WORKS", False)
        monkeypatch.setattr(process._SigchldReaper, "_by_loop", {})
    return str(request.param)


async def stdout_reader(child: process.Child) -> asyncio.StreamReader:
    """The child's stdout as a stream; its stdin and stderr are closed (raw fds are ours)."""
    os.close(child.stdin)
    os.close(child.stderr)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    stdout = open(child.stdout, "rb", buffering=0)  # noqa: SIM115 - the transport closes it
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), stdout)
    return reader


async def read_all(child: process.Child) -> bytes:
    return await (await stdout_reader(child)).read()


async def test_exit_status_and_output(exit_watch: str) -> None:
    child = process.spawn(["/bin/sh", "-c", "echo hi; exit 7"], {"PATH": "/bin:/usr/bin"})
    assert await read_all(child) == b"hi\n"
    assert await asyncio.wait_for(child.exited, 5) == ExitStatus(code=7)


async def test_environment_is_exactly_what_was_given(exit_watch: str) -> None:
    child = process.spawn(["/usr/bin/env"], {"ONLY": "this"})
    assert await read_all(child) == b"ONLY=this\n"
    await asyncio.wait_for(child.exited, 5)


async def test_child_gets_default_sigpipe(exit_watch: str) -> None:
    # Python ignores SIGPIPE for itself; the child must not inherit that.
    child = process.spawn(["/bin/sh", "-c", "kill -PIPE $$; echo survived"], {})
    out = await read_all(child)
    assert b"survived" not in out
    assert (await asyncio.wait_for(child.exited, 5)).signal == signal.SIGPIPE


async def test_own_process_group(exit_watch: str) -> None:
    child = process.spawn([sys.executable, "-c", "import os; print(os.getpgrp())"], {})
    assert int(await read_all(child)) == child.pid != os.getpgrp()
    await asyncio.wait_for(child.exited, 5)


async def test_end_escalates_to_sigkill_for_a_stubborn_group(exit_watch: str) -> None:
    script = "trap '' INT TERM; (trap '' INT TERM; sleep 30) & echo $!; wait"
    child = process.spawn(["/bin/sh", "-c", script], {"PATH": "/bin:/usr/bin"})
    loop = asyncio.get_running_loop()
    reader = await stdout_reader(child)
    grandchild = int(await reader.readline())
    started = loop.time()
    status = await asyncio.wait_for(child.end(closems=0), 5)
    elapsed = loop.time() - started
    assert status.signal == signal.SIGKILL
    assert 0.8 < elapsed < 1.5

    # SIGKILL went to the whole group at once; the grandchild's death is not instantaneous.
    async def dies() -> None:
        while not process_gone(grandchild):
            await asyncio.sleep(0.01)  # no event announces another process's death

    await asyncio.wait_for(dies(), 2)


async def test_end_returns_as_the_child_exits_without_signalling_it(exit_watch: str) -> None:
    """``end`` wakes on the exit itself, not on the first escalation step's timer."""
    child = process.spawn(["/bin/cat"], {})
    for fd in (child.stdout, child.stderr):
        os.close(fd)
    loop = asyncio.get_running_loop()
    started = loop.time()
    os.close(child.stdin)  # cat exits on EOF
    status = await asyncio.wait_for(child.end(closems=3000), 10)
    assert status == ExitStatus(code=0)  # no SIGINT reached it
    assert loop.time() - started < 3  # the first signal would be due at 3.1 s
    assert child._exit_waiters == []


# A process of the child's group that logs each SIGINT and SIGTERM it gets and carries on.
SIGNAL_LOGGER = """
import signal, sys, time
log = open(sys.argv[1], "a", buffering=1)
def note(sig, frame):
    log.write(f"{signal.Signals(sig).name} {time.monotonic()}\\n")
signal.signal(signal.SIGINT, note)
signal.signal(signal.SIGTERM, note)
log.write(f"ready {time.monotonic()}\\n")
while True:
    time.sleep(1)
"""


async def test_a_group_that_outlives_the_child_gets_each_step_on_time(
    exit_watch: str, tmp_path: Path
) -> None:
    """The child exits at once; what it left in its group still gets SIGINT at 100 ms, SIGTERM
    at 350 ms and SIGKILL at 850 ms (behaviour A4, B8), not all three at once."""
    log = tmp_path / "signals.log"
    script = (
        f"{sys.executable} -c '{SIGNAL_LOGGER}' {log} </dev/null >/dev/null 2>&1 &\n"
        f"while [ ! -s {log} ]; do sleep 0.01; done\n"
    )
    child = process.spawn(["/bin/sh", "-c", script], {"PATH": "/bin:/usr/bin"})
    for fd in (child.stdout, child.stderr):
        os.close(fd)
    await asyncio.wait_for(asyncio.shield(child.exited), 10)  # the logger is ready
    started = time.monotonic()
    os.close(child.stdin)
    status = await asyncio.wait_for(child.end(closems=0), 10)
    ended = time.monotonic() - started
    got = {name: float(when) - started for name, when in _log_lines(log) if name != "ready"}
    assert status == ExitStatus(code=0)  # the child's own exit, whatever its group went through
    assert set(got) == {"SIGINT", "SIGTERM"}, got
    assert 0.09 <= got["SIGINT"] < got["SIGTERM"]
    assert 0.34 <= got["SIGTERM"] < ended
    assert 0.84 <= ended < 5  # SIGKILL at 850 ms, then the group is seen gone


def _log_lines(log: Path) -> list[tuple[str, str]]:
    return [tuple(line.split()) for line in log.read_text().splitlines()]  # type: ignore[misc]


async def test_unrunnable_program_raises(exit_watch: str) -> None:
    with pytest.raises(OSError):
        process.spawn(["/nonexistent/program"], {})


def _wait_until_zombie(pid: int) -> None:
    """Block (no event loop turn) until ``pid`` has exited and waits to be reaped."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state == "Z":
            return
        time.sleep(0.001)
    raise AssertionError(f"{pid} did not exit")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
async def test_poll_reaps_an_exited_child_before_the_loop_reports_it(exit_watch: str) -> None:
    # It exits when its stdin closes: not before the watcher is in place, which reaps at once
    # a child that has already exited (the SIGCHLD one does).
    child = process.spawn(["/bin/sh", "-c", "read line; exit 4"], {})
    for fd in (child.stdout, child.stderr, child.stdin):
        os.close(fd)
    exits: list[ExitStatus] = []
    child.on_exit = lambda: exits.append(child.exited.result())
    _wait_until_zombie(child.pid)
    assert child.running  # it has exited, but no loop turn has passed to report it
    assert child.poll() is True
    assert exits == [ExitStatus(code=4)]
    assert not child.running
    assert child.pid not in process.own_pids()
    # The loop's own report of the exit (pidfd or SIGCHLD), in the turns that follow,
    # changes nothing and calls no one twice.
    for _ in range(20):
        await asyncio.sleep(0)
    assert exits == [ExitStatus(code=4)]
    assert child.poll() is True


async def test_poll_leaves_a_running_child_alone(exit_watch: str) -> None:
    child = process.spawn(["/bin/sh", "-c", "read line"], {})
    os.close(child.stdout)
    os.close(child.stderr)
    assert child.poll() is False
    assert child.running
    os.close(child.stdin)  # it reads EOF and exits
    assert await asyncio.wait_for(child.exited, 5) == ExitStatus(code=1)
