"""Edit-to-answer: from writing a script to the first reply of the new code (behaviour D).

A client stays connected and reconnects as soon as it gets 1012; each round writes a new
version of a small Python script that prints a fresh token at start, and measures the time from
the write to the moment the reconnected client receives that token.

    python bench/edit_to_answer.py [--rounds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import websockets

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """#!{python}
import sys
print("{token}", flush=True)
for line in sys.stdin:
    print(line.strip())
"""


def write_version(path: Path, token: str) -> None:
    # Write then rename, as editors do, so the server never runs a half-written file.
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(SCRIPT.format(python=sys.executable, token=token))
    temp.chmod(0o755)
    temp.replace(path)


async def start_wsdev(folder: Path) -> tuple[asyncio.subprocess.Process, int]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "wsdev", "--port=0", "--address=127.0.0.1", "--no-dashboard",
        "./bot.py", cwd=folder, env=env, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    while line := (await proc.stdout.readline()).decode():
        if match := re.search(r"ws://127\.0\.0\.1:(\d+)/", line):
            # Keep draining the log so wsdev never blocks writing it.
            drain = asyncio.ensure_future(proc.stdout.read())
            proc._drain = drain  # type: ignore[attr-defined]
            return proc, int(match.group(1))
    raise RuntimeError("wsdev did not start")


async def measure(rounds: int) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        script = folder / "bot.py"
        write_version(script, "start")
        proc, port = await start_wsdev(folder)
        url = f"ws://127.0.0.1:{port}/"
        timings: list[float] = []
        try:
            ws = await websockets.connect(url)
            assert await ws.recv() == "start"
            for n in range(rounds):
                token = f"v{n}"
                written = time.perf_counter()
                write_version(script, token)
                with contextlib.suppress(websockets.ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 10)
                ws = await websockets.connect(url)
                first = await asyncio.wait_for(ws.recv(), 10)
                if first != token:
                    raise RuntimeError(f"expected {token}, got {first!r}")
                timings.append((time.perf_counter() - written) * 1000)
                await asyncio.sleep(0.2)  # a person does not save twice within 200 ms
            await ws.close()
        finally:
            proc.terminate()
            await proc.wait()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    timings = asyncio.run(measure(args.rounds))
    timings.sort()
    p90 = timings[int(len(timings) * 0.9) - 1]
    print(
        f"edit-to-answer over {len(timings)} saves: median {statistics.median(timings):.0f} ms, "
        f"p90 {p90:.0f} ms, min {timings[0]:.0f} ms, max {timings[-1]:.0f} ms"
    )


if __name__ == "__main__":
    main()
