"""Profile wsdev under one benchmark load with py-spy and print where its time goes.

    python bench/hotspots.py [--scenario seq|connect|pipe|rtt|hold|burst] [--seconds 10] [--top 15]

wsdev runs under ``py-spy record`` (``pip install py-spy``) while the benchmark client repeats
the scenario's load; the samples (idle time excluded) are summed per function, both as self time
(the function was running) and as total time (it was on the stack). Samples taken while a module
was being imported (wsdev's start-up, which py-spy sees since it starts the server) are counted
apart and left out of the tables.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from client import Client, build
from servers import ROOT, Server, raise_open_file_limit, running


@dataclass(frozen=True)
class Load:
    """A scenario's program and one round of its client load."""

    program: tuple[str, ...]
    binary: bool
    round: Callable[[Client, int], object]


def _hold_round(client: Client, port: int) -> object:
    session = client.start("hold", port, 1000, 64)
    session.read_until("lost_upgrading")
    session.next_stage()
    session.read_until("lost_echoing")
    return session.finish()


LOADS = {
    "seq": Load(("seq", "1", "1000000"), False, lambda c, port: c.run("drain", port)),
    "connect": Load(("echo", "hi"), False, lambda c, port: c.run("connect", port, 200)),
    "pipe": Load(("cat",), True, lambda c, port: c.run("pipe", port, 100, 65536, 131072)),
    "rtt": Load(("cat",), False, lambda c, port: c.run("rtt", port, 5000, 100, 16)),
    "hold": Load(("cat",), False, _hold_round),
    "burst": Load(("cat",), False, lambda c, port: c.run("burst", port, 300, limit=120)),
}
# A frame of Python's import machinery: the sample was taken while a module was imported.
_IMPORTING = "(<frozen importlib._bootstrap"
_FRAME = re.compile(r"^(?P<name>.*) \((?P<file>[^():]*)(?::(?P<line>\d+))?\)$")


def _short(frame: str, with_line: bool) -> str:
    """``name (dir/file.py:12)`` without the line number unless asked, paths kept short."""
    match = _FRAME.match(frame)
    if not match:
        return frame
    where = match["file"]
    if "/site-packages/" in where:
        where = where.split("/site-packages/", 1)[1]
    elif where.startswith("/"):
        where = where.rsplit("/", 1)[-1]
    line = f":{match['line']}" if with_line and match["line"] else ""
    return f"{match['name']} ({where}{line})"


def summarize(raw: str, top: int) -> str:
    """Self and total time per function from py-spy's raw (collapsed stack) output."""
    self_time: collections.Counter[str] = collections.Counter()
    self_lines: collections.Counter[str] = collections.Counter()
    total_time: collections.Counter[str] = collections.Counter()
    samples = importing = 0
    for entry in raw.splitlines():
        stack, _, count_text = entry.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        if _IMPORTING in stack:
            # Start-up (py-spy starts with the server) or a first use's lazy import: not the
            # load's steady state, and at a few percent of a run enough to crowd the tables.
            importing += count
            continue
        samples += count
        frames = stack.split(";")
        self_time[_short(frames[-1], False)] += count
        self_lines[_short(frames[-1], True)] += count
        for name in {_short(frame, False) for frame in frames}:
            total_time[name] += count
    if samples == 0:
        return "no samples (was wsdev busy at all?)\n"
    own = collections.Counter({k: v for k, v in total_time.items() if "(wsdev/" in k})

    def table(title: str, counts: collections.Counter[str]) -> str:
        rows = [f"| {n * 100 / samples:5.1f}% | `{name}` |" for name, n in counts.most_common(top)]
        return f"\n{title}\n\n| share | function |\n| ---: | --- |\n" + "\n".join(rows) + "\n"

    return (
        f"{samples} busy samples ({importing} more while importing, left out)\n"
        + table("Self time (the function itself was running)", self_time)
        + table("Self time by line", self_lines)
        + table("Total time (the function was on the stack)", total_time)
        + table("Total time of wsdev's own functions", own)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=sorted(LOADS), default="seq")
    parser.add_argument("--seconds", type=float, default=10, help="how long to repeat the load")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--rate", type=int, default=1000, help="samples per second")
    parser.add_argument("--raw", type=Path, help="also keep py-spy's raw stacks in this file")
    args = parser.parse_args()
    # On PATH, or next to this Python (a virtual environment that is not activated).
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if spy is None:
        print("hotspots: py-spy is not installed (pip install py-spy)", file=sys.stderr)
        return 1
    raise_open_file_limit()
    load = LOADS[args.scenario]
    with tempfile.TemporaryDirectory(prefix="wsbench-") as tmp:
        client = Client(build(Path(tmp)))
        raw_path = Path(tmp) / "profile.txt"
        wrap = [spy, "record", "--rate", str(args.rate), "--format", "raw", "-o", str(raw_path)]
        rounds = 0
        server: Server
        with running("wsdev", load.program, binary=load.binary, wrap=[*wrap, "--"]) as server:
            deadline = time.monotonic() + args.seconds
            while time.monotonic() < deadline:
                load.round(client, server.port)
                rounds += 1
        if not raw_path.exists():
            print(f"hotspots: py-spy wrote no profile:\n{server.log_tail()}", file=sys.stderr)
            return 1
        print(f"# wsdev hotspots, scenario `{args.scenario}` ({rounds} rounds of load)\n")
        raw = raw_path.read_text()
        if args.raw:
            args.raw.write_text(raw)
        print(summarize(raw, args.top).replace(str(ROOT) + "/", ""))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("hotspots: interrupted", file=sys.stderr)
        sys.exit(130)
