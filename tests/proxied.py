"""Several wsdev instances on Unix sockets behind a real proxy (nginx, HAProxy), configured with
the blocks of docs/deploy.md, for tests/test_nginx.py and tests/test_proxy_haproxy.py.

Each instance serves ``PROGRAM``, which first says which instance it is and whom it was told
the client is, then echoes; ``open_session`` checks that this is the test's own address and port.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect

from conftest import ROOT, ServerProcess, free_port, run_wsdev, timeout

INSTANCES = 3
# The socket folder the documented configurations name; a test puts its own in its place.
DOCUMENTED_FOLDER = "/run/wsdev/"
PROGRAM = """#!/bin/sh
echo "instance $1 client $REMOTE_ADDR $REMOTE_PORT"
exec cat
"""


def find_tool(name: str) -> str | None:
    """``name`` on PATH or in the sbin folders (not on a normal user's PATH)."""
    return shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/sbin/{name}") if os.access(p, os.X_OK)), None
    )


def documented_block(language: str) -> str:
    """The fenced ``language`` block of docs/deploy.md."""
    text = (ROOT / "docs" / "deploy.md").read_text()
    match = re.search(rf"```{language}\n(.*?)```", text, re.DOTALL)
    assert match, f"docs/deploy.md has no {language} block"
    assert DOCUMENTED_FOLDER in match.group(1)
    return match.group(1)


@dataclass
class Cluster:
    port: int
    instances: list[ServerProcess]
    proxy: asyncio.subprocess.Process
    proxy_lines: list[str] = field(default_factory=list)
    proxy_changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    async def proxy_says(self, pattern: str) -> None:
        """Wait for a line of the proxy's own messages (on its stderr)."""
        regex = re.compile(pattern)

        async def search() -> None:
            while not any(regex.search(line) for line in self.proxy_lines):
                if self.proxy.returncode is not None:
                    raise AssertionError(f"the proxy ended: {self.proxy_lines}")
                self.proxy_changed.clear()
                await self.proxy_changed.wait()

        try:
            await asyncio.wait_for(search(), timeout(20))
        except asyncio.TimeoutError:
            raise AssertionError(f"the proxy never said {pattern!r}: {self.proxy_lines}") from None


async def wait_listening(port: int) -> None:
    async def attempt() -> None:
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.02)  # polling a port has no event to wait on
                continue
            writer.close()
            return

    await asyncio.wait_for(attempt(), timeout(15))


@contextlib.asynccontextmanager
async def cluster(
    folder: Path,
    program: Path,
    proxy: Callable[[int], Sequence[str]],
    *wsdev_args: str,
) -> AsyncIterator[Cluster]:
    """``INSTANCES`` wsdev on ``folder/N.sock``, then in front of them the proxy whose command
    line ``proxy(port)`` gives (it writes the proxy's configuration for that port); the proxy's
    stderr is kept."""
    async with contextlib.AsyncExitStack() as stack:
        instances = []
        for n in range(1, INSTANCES + 1):
            server = await stack.enter_async_context(
                run_wsdev(
                    f"--unixsocket={folder}/{n}.sock",
                    "--trusted-proxy=unix",
                    "--no-dashboard",
                    "--no-reload",
                    *wsdev_args,
                    str(program),
                    str(n),
                    defaults=False,
                )
            )
            await server.wait_for_log("unix socket at ")
            instances.append(server)
        port = free_port()
        process = await asyncio.create_subprocess_exec(
            *proxy(port),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        nodes = Cluster(port, instances, process)

        async def collect() -> None:
            assert process.stderr is not None
            while line := await process.stderr.readline():
                nodes.proxy_lines.append(line.decode(errors="replace").rstrip())
                nodes.proxy_changed.set()
            nodes.proxy_changed.set()

        reader = asyncio.ensure_future(collect())
        try:
            await wait_listening(port)
            yield nodes
        finally:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()  # a fast stop: sessions a failed test left open do not wait
            try:
                await asyncio.wait_for(process.wait(), timeout(10))
            except asyncio.TimeoutError:
                process.kill()
                await process.wait()
            await reader


@dataclass
class Session:
    ws: ClientConnection
    instance: int


async def open_session(
    url: str, headers: dict[str, str] | None = None, *, port_given: bool = True
) -> Session:
    """A session through the proxy; checks the program saw this process as its client: its
    address, and its own port where the proxy gives one (``port_given``)."""
    ws = await connect(url, additional_headers=headers)
    hello = str(await ws.recv())
    match = re.fullmatch(r"instance (\d) client (\S*) ?(\S*)", hello)
    assert match, hello
    port = str(ws.local_address[1]) if port_given else ""
    assert (match.group(2), match.group(3)) == ("127.0.0.1", port), hello
    return Session(ws, int(match.group(1)))


async def echoes(session: Session, text: str) -> None:
    await session.ws.send(text)
    assert await session.ws.recv() == text
