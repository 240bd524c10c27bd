"""Benchmark wsdev against websocketd side by side: ``python bench/run.py [--quick]``.

Builds the C client, runs every scenario on both servers with the same program and client, and
prints one markdown table (progress goes to stderr, the report to stdout); the `dashboard`
scenario, wsdev with its dashboard off and on, gets a table of its own. When
bench/dashboard_overhead.py exists, its report is appended.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from client import Client, ClientError, build
from report import Row, markdown
from scenarios import SCENARIOS, Context
from servers import ROOT, SERVERS, raise_open_file_limit, version

DASHBOARD_BENCH = Path(__file__).resolve().parent / "dashboard_overhead.py"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="smaller sizes, fewer runs (under a minute)"
    )
    parser.add_argument(
        "--only",
        metavar="NAMES",
        help=f"comma-separated scenarios to run, out of: {','.join(SCENARIOS)}",
    )
    parser.add_argument(
        "--runs",
        type=int,
        help="runs per scenario (default 5; rtt 12, connect 15, hold 3, burst 7; "
        "--quick: 3, hold 1)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the rows as JSON")
    parser.add_argument(
        "--no-dashboard-bench",
        action="store_true",
        help="do not run bench/dashboard_overhead.py even if it exists",
    )
    args = parser.parse_args(argv)
    if args.only:
        unknown = set(args.only.split(",")) - set(SCENARIOS)
        if unknown:
            parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    return args


def header(quick: bool) -> str:
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    lines = [
        f"# wsdev vs websocketd ({'quick' if quick else 'full'} run)",
        "",
        f"- {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, {platform.node()}, "
        f"{os.cpu_count()} CPUs, load {load} at start, Python {platform.python_version()}",
    ]
    lines += [f"- {kind}: {version(kind)}" for kind in SERVERS]
    lines.append("- client: bench/wsclient.c, built with the machine's C compiler; 127.0.0.1 only")
    return "\n".join(lines) + "\n"


def dashboard_section(quick: bool, client: Client) -> str:
    """Run the dashboard on/off benchmark (owned separately) and return its report."""
    if not DASHBOARD_BENCH.exists():
        return ""
    argv = [sys.executable, str(DASHBOARD_BENCH), *(["--quick"] if quick else [])]
    env = dict(os.environ, WSBENCH_CLIENT=str(client.exe))
    try:
        result = subprocess.run(
            argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300 if quick else 900
        )
    except subprocess.TimeoutExpired:
        return "\n## Dashboard on vs off\n\nbench/dashboard_overhead.py did not finish in time.\n"
    body = result.stdout.strip()
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-5:])
        body += (
            f"\n\nbench/dashboard_overhead.py exited with {result.returncode}:\n```\n{tail}\n```"
        )
    return f"\n## Dashboard on vs off (bench/dashboard_overhead.py)\n\n{body}\n"


def _stop_on_sigterm(signum: int, frame: object) -> None:
    # Unwinds like Ctrl+C, so every server is stopped by its context manager on the way out.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    limit = raise_open_file_limit()
    names = args.only.split(",") if args.only else list(SCENARIOS)
    with tempfile.TemporaryDirectory(prefix="wsbench-") as build_dir:
        try:
            client = Client(build(Path(build_dir)))
        except ClientError as exc:
            print(f"bench: {exc}", file=sys.stderr)
            return 1
        ctx = Context(client, args.quick, args.runs)
        ctx.say(f"open-file limit {limit}; scenarios: {', '.join(names)}")
        report = header(args.quick)
        rows: list[Row] = []
        for name in names:
            rows += SCENARIOS[name](ctx)
        extra = (
            "" if args.no_dashboard_bench or args.only else dashboard_section(args.quick, client)
        )
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    report += f"- load {load} at end, {ctx.elapsed():.0f} s in all\n\n" + markdown(rows) + extra
    print(report)
    if args.json:
        payload = [
            {**asdict(row), "goal": row.goal.text if row.goal else None, "ratio": row.ratio}
            for row in rows
        ]
        args.json.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        # Every server was stopped on the way out (the context managers' finally blocks).
        print("bench: interrupted", file=sys.stderr)
        sys.exit(130)
