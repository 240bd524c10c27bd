"""The Dockerfile (docs/deploy.md, "A container"): built and run where a container runtime is.

It fetches nothing itself: without a runtime, a daemon that answers, or the base image already
present, it is skipped and says which.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from conftest import ROOT, timeout

RUNTIME = shutil.which("docker") or shutil.which("podman")


def base_image() -> str:
    match = re.search(r"^FROM\s+(\S+)", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert match, "the Dockerfile names no base image"
    return match.group(1)


def runtime_or_skip() -> str:
    if RUNTIME is None:
        pytest.skip("no container runtime (docker or podman) is installed")
    info = subprocess.run([RUNTIME, "info"], capture_output=True, text=True, check=False)
    if info.returncode != 0:
        pytest.skip(f"{Path(RUNTIME).name} is installed but no daemon answers ({RUNTIME} info)")
    image = base_image()
    present = subprocess.run(
        [RUNTIME, "image", "inspect", image], capture_output=True, check=False
    ).returncode
    if present != 0:
        pytest.skip(f"the base image {image} is not present (this test pulls nothing)")
    return RUNTIME


async def run(*argv: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout(600))
    text = out.decode(errors="replace")
    assert proc.returncode == 0, f"{' '.join(argv)} failed:\n{text[-3000:]}"
    return text


@pytest.mark.timeout(900)
async def test_the_image_serves_as_an_unprivileged_user_and_drains_on_stop() -> None:
    runtime = runtime_or_skip()
    tag = f"wsdev-test:{uuid.uuid4().hex[:12]}"
    await run(runtime, "build", "--pull=false", "-t", tag, str(ROOT))
    try:
        assert (await run(runtime, "run", "--rm", "--entrypoint", "id", tag, "-u")).strip() != "0"
        container = (await run(runtime, "run", "-d", "-p", "127.0.0.1::8080", tag)).strip()
        try:
            published = (await run(runtime, "port", container, "8080/tcp")).splitlines()[0]
            port = int(published.rsplit(":", 1)[1])

            async def served() -> None:
                while True:
                    try:
                        async with connect(f"ws://127.0.0.1:{port}/") as ws:
                            await ws.send("from outside the container")
                            assert await ws.recv() == "from outside the container"
                            return
                    except OSError:
                        await asyncio.sleep(0.1)  # the container is still starting

            await asyncio.wait_for(served(), timeout(60))
            # Health answers loopback only: ask from inside, as the image's HEALTHCHECK does.
            probe = "import urllib.request as u; print(u.urlopen(HEALTH, timeout=5).status)"
            health = "'http://127.0.0.1:8080/_wsdev/health'"
            answer = await run(
                runtime, "exec", container, "python", "-c", probe.replace("HEALTH", health)
            )
            assert answer.strip() == "200"
            await run(runtime, "stop", container)
            logs = await run(runtime, "logs", container)
            assert "Starting WebSocket server" in logs
        finally:
            await run(runtime, "rm", "-f", container)
    finally:
        await run(runtime, "rmi", "-f", tag)
