"""The benchmark scenarios: each starts both servers on the same program, drives them with the
same client, and returns its rows of the results table.

Repeated runs alternate which server goes first, so slow drifts of a shared machine fall on both
alike; a row shows the median of its runs. One scenario (``dashboard``) compares wsdev with
itself instead, its dashboard off and on, in the same way.
"""

from __future__ import annotations

import contextlib
import functools
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from client import Client, ClientError
from report import (
    SIDE_BY_SIDE,
    Goal,
    Row,
    median,
    ratio_at_least,
    ratio_at_most,
    wsdev_below,
    wsdev_equals,
)
from servers import (
    DASHBOARD_KINDS,
    RECORD_KINDS,
    SERVERS,
    TTY_COLUMNS,
    TTY_ROWS,
    Server,
    ServerError,
    dashboard_pair,
    listen_backlog,
    listen_counters,
    record_pair,
    side_by_side,
    somaxconn,
)

MIB = 1 << 20
RECOVERABLE = (ClientError, ServerError, OSError, ValueError, KeyError)


@dataclass
class Context:
    """What every scenario needs: the client, the size of the run, and a progress line."""

    client: Client
    quick: bool
    runs_override: int | None = None
    started: float = field(default_factory=time.monotonic)

    def runs(self, full: int, quick: int) -> int:
        if self.runs_override is not None:
            return self.runs_override
        return quick if self.quick else full

    def size(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def say(self, text: str) -> None:
        print(f"[{self.elapsed():6.1f}s] {text}", file=sys.stderr, flush=True)


#: What a pair of servers is started by: (those that started, why others did not), by kind.
Starter = Callable[[], AbstractContextManager[tuple[dict[str, Server], dict[str, str]]]]


@dataclass
class Results:
    """Per-server results of a scenario's runs, and the first error of each server.

    ``columns`` labels the two servers (the keys of ``values``) and their ratio.
    """

    columns: tuple[str, str, str] = SIDE_BY_SIDE
    values: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for kind in self.kinds:
            self.values.setdefault(kind, [])

    @property
    def kinds(self) -> tuple[str, str]:
        return self.columns[0], self.columns[1]

    def row(
        self,
        scenario: str,
        metric: str,
        *,
        fmt: str = "{:,.0f}",
        goal: Goal | None = None,
        note: str = "",
        combine: Callable[[Sequence[float]], float | None] = median,
    ) -> Row:
        """The table row of this figure: the runs ``combine``d (their median unless told), and
        each server's error as a note."""
        left, right = (combine(v) if (v := self.values[k]) else None for k in self.kinds)
        row = Row(scenario, metric, left, right, fmt, goal, columns=self.columns)
        row.runs = max(len(v) for v in self.values.values())
        for kind, error in self.errors.items():
            if not self.values[kind]:
                row.shown[kind] = "stalls" if error.startswith("stalled") else "error"
            note = "; ".join(filter(None, [note.rstrip("."), f"{kind}: {error}"]))
        row.note = note
        return row


def compare(
    ctx: Context,
    program: Sequence[str],
    runs: int,
    once: Callable[[Server], dict[str, float]],
    *,
    binary: bool = False,
    fresh: bool = False,
    warmup: Callable[[Server], object] | None = None,
    columns: tuple[str, str, str] = SIDE_BY_SIDE,
    start: Starter | None = None,
) -> dict[str, Results]:
    """``runs`` runs of ``once`` on each server serving ``program``, alternating which goes first.

    The servers are started once for all runs, or anew for each run when ``fresh``. ``warmup``
    runs once on each newly started server, untimed, so that no figure includes what a server
    does only for its first connection (wsdev's lazy imports, for one). ``start`` starts the two
    servers, keyed by the first two ``columns`` (by default websocketd and wsdev side by side).
    """
    if start is None:
        start = functools.partial(side_by_side, program, binary=binary)
    kinds = (columns[0], columns[1])
    by_figure: dict[str, Results] = {}
    errors: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        servers: dict[str, Server] = {}
        for index in range(runs):
            if fresh or index == 0:
                stack.close()
                servers, failed = stack.enter_context(start())
                for kind, error in failed.items():
                    errors.setdefault(kind, error)
                    ctx.say(f"  {kind} did not start: {error}")
                for kind, server in servers.items():
                    try:
                        if warmup is not None:
                            warmup(server)
                    except RECOVERABLE as exc:
                        errors.setdefault(kind, f"warm-up failed: {exc}")
            order: Sequence[str] = kinds if index % 2 == 0 else tuple(reversed(kinds))
            for kind in order:
                if kind in errors or kind not in servers:
                    continue  # a server that failed once is not hammered again
                try:
                    figures = once(servers[kind])
                except RECOVERABLE as exc:
                    errors[kind] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    ctx.say(f"  {kind}: {errors[kind]}")
                    continue
                shown = ", ".join(f"{k}={v:,.1f}" for k, v in figures.items())
                ctx.say(f"  run {index + 1}/{runs} {kind}: {shown}")
                for name, value in figures.items():
                    by_figure.setdefault(name, Results(columns)).values[kind].append(value)
    if not by_figure:
        by_figure["_"] = Results(columns)
    for results in by_figure.values():
        results.errors.update({k: e.splitlines()[0] for k, e in errors.items()})
    return by_figure


def _figure(results: dict[str, Results], name: str) -> Results:
    """One figure's results; an empty one (with the errors) when no run produced it."""
    if name in results:
        return results[name]
    empty = Results(next(iter(results.values())).columns)
    for other in results.values():
        empty.errors.update(other.errors)
    return empty


# ---- messages/s: seq 1 N in text mode, to a client reading as fast as it can ----


def seq_scenario(ctx: Context) -> list[Row]:
    count = ctx.size(1_000_000, 200_000)
    runs = ctx.runs(5, 3)
    ctx.say(f"seq 1 {count}: messages/s, {runs} run(s) each")

    def once(server: Server) -> dict[str, float]:
        result = ctx.client.run("drain", server.port, limit=180)
        got = int(result["messages"])
        if got != count:
            raise ClientError(f"received {got:,} of {count:,} messages")
        return {"rate": float(result["rate"])}

    results = compare(ctx, ["seq", "1", str(count)], runs, once, warmup=once)
    return [
        _figure(results, "rate").row(f"`seq 1 {count}`, text", "messages/s", goal=ratio_at_least(5))
    ]


# ---- MiB/s: cat in binary mode, the client sends N MiB and reads it back ----

PIPE_MESSAGE = 64 * 1024
PIPE_WINDOW = 128 * 1024


def pipe_scenario(ctx: Context) -> list[Row]:
    mib = 100
    runs = ctx.runs(5, 3)
    ctx.say(f"cat --binary, {mib} MiB through: MiB/s, {runs} run(s) each")

    def through(window: int, stall: float) -> Callable[[Server], dict[str, float]]:
        def once(server: Server) -> dict[str, float]:
            result = ctx.client.run(
                "pipe", server.port, mib, PIPE_MESSAGE, window, limit=120, stall=stall
            )
            if result["stalled"] == "1":
                got = int(result["bytes"]) / MIB
                raise ClientError(f"stalled after {got:.2f} of {mib} MiB came back")
            if int(result["bytes"]) != mib * MIB:
                raise ClientError(f"{result['bytes']} bytes came back, not {mib * MIB}")
            return {"mib_per_s": float(result["mib_per_s"])}

        return once

    warm = through(PIPE_WINDOW, 10)
    windowed = compare(ctx, ["cat"], runs, warm, binary=True, warmup=warm)
    ctx.say(f"cat --binary, {mib} MiB with no send window: once each")
    open_ended = compare(ctx, ["cat"], 1, through(0, 3), binary=True, warmup=warm)
    return [
        _figure(windowed, "mib_per_s").row(
            f"`cat`, `--binary`, {mib} MiB echoed",
            f"MiB/s, ≤{PIPE_WINDOW // 1024} KiB in flight",
            fmt="{:,.1f}",
            goal=ratio_at_least(1),
            note=f"The client keeps at most {PIPE_WINDOW // 1024} KiB unanswered "
            f"({PIPE_MESSAGE // 1024} KiB messages), because websocketd 0.4.1 pumps both "
            "directions in one loop and deadlocks once the program's pipes are full.",
        ),
        _figure(open_ended, "mib_per_s").row(
            f"`cat`, `--binary`, {mib} MiB echoed",
            "MiB/s, sending flat out",
            fmt="{:,.1f}",
            goal=Goal("completes", lambda _, __: True),
        ),
    ]


# ---- round trip: cat in text mode, one message in flight ----


def rtt_scenario(ctx: Context) -> list[Row]:
    # Many short runs rather than a few long ones: a median over more runs shrugs off the
    # seconds this shared machine is busy with something else (the same holds for connect).
    count = ctx.size(2000, 1000)
    runs = ctx.runs(12, 3)
    ctx.say(f"echo (cat): {count} round trips, {runs} run(s) each")

    def once(server: Server) -> dict[str, float]:
        result = ctx.client.run("rtt", server.port, count, 200, 16, limit=120)
        return {"p50": float(result["rtt_p50_us"]), "p99": float(result["rtt_p99_us"])}

    def warmup(server: Server) -> object:
        return ctx.client.run("rtt", server.port, 100, 0, 16)

    results = compare(ctx, ["cat"], runs, once, warmup=warmup)
    scenario = "echo (`cat`), one message in flight"
    return [
        _figure(results, "p50").row(scenario, "round trip p50, µs", goal=ratio_at_most(1)),
        _figure(results, "p99").row(scenario, "round trip p99, µs"),
    ]


# ---- sequential connections to `echo hi` ----


def connect_scenario(ctx: Context) -> list[Row]:
    count = ctx.size(150, 100)
    runs = ctx.runs(15, 3)
    ctx.say(f"echo hi: {count} sequential connections, {runs} run(s) each")

    def once(server: Server) -> dict[str, float]:
        result = ctx.client.run("connect", server.port, count, limit=240)
        return {
            "p50": float(result["first_p50_us"]) / 1000,
            "p99": float(result["first_p99_us"]) / 1000,
            "close": float(result["close_p50_us"]) / 1000,
            "rate": float(result["rate"]),
        }

    def warmup(server: Server) -> object:
        return ctx.client.run("connect", server.port, 5)

    results = compare(ctx, ["echo", "hi"], runs, once, warmup=warmup)
    scenario = "`echo hi`, sequential connections"
    return [
        _figure(results, "p50").row(
            scenario, "connect → first message p50, ms", fmt="{:,.2f}", goal=ratio_at_most(1)
        ),
        _figure(results, "p99").row(scenario, "connect → first message p99, ms", fmt="{:,.2f}"),
        _figure(results, "close").row(
            scenario, "first message → server's close p50, ms", fmt="{:,.2f}"
        ),
        _figure(results, "rate").row(
            scenario,
            "connections/s (until the server closes)",
            fmt="{:,.0f}",
            goal=ratio_at_least(1),
        ),
    ]


# ---- thousands of idle connections, each then echoing once ----


def _no_children_left(server: Server, within: float = 60) -> float:
    """Wait (bounded) until the server has no child left; returns how long that took."""
    started = time.monotonic()
    # A child's exit has no event we can wait on from here: poll.
    while server.child_count() > 0 and time.monotonic() - started < within:
        time.sleep(0.02)
    return time.monotonic() - started


def hold_scenario(ctx: Context) -> list[Row]:
    count = ctx.size(3000, 1000)
    runs = ctx.runs(3, 1)
    ctx.say(f"cat: {count} idle connections held, then one echo each; {runs} run(s), fresh servers")

    def once(server: Server) -> dict[str, float]:
        base = server.rss_kib()
        fd_errors = server.fd_errors
        session = ctx.client.start("hold", server.port, count, 64, limit=600)
        try:
            opened = session.read_until("lost_upgrading")
            files = server.open_files()
            server.remember_children()
            session.next_stage()
            echoed = session.read_until("lost_echoing")
            held = server.rss_kib()
        finally:
            session.finish()  # the client closes every connection
        teardown = _no_children_left(server)
        alive = int(echoed["alive"])
        lost = {k: float(v) for k, v in {**opened, **echoed}.items() if k.startswith("lost_")}
        return {
            "kib_per_conn": (held - base) / max(1, int(opened["open"])),
            "fds_per_conn": files / max(1, int(opened["open"])),
            "alive": float(alive),
            "open_s": float(opened["open_seconds"]),
            "echo_s": float(echoed["echo_seconds"]),
            "teardown_s": teardown,
            "fd_errors": float(server.fd_errors - fd_errors),
            **lost,  # shown in the progress lines: where connections were lost, if any
        }

    def warmup(server: Server) -> object:
        return ctx.client.run("rtt", server.port, 10, 0, 16)

    results = compare(ctx, ["cat"], runs, once, fresh=True, warmup=warmup)
    scenario = f"{count:,} idle `cat` connections, then one echo each"
    return [
        _figure(results, "kib_per_conn").row(
            scenario,
            "server RSS per connection, KiB",
            fmt="{:,.1f}",
            goal=ratio_at_most(1),
            note="VmRSS of the server process (with wsdev's spawn helper; not the programs), "
            "after every connection has echoed once, minus VmRSS before, divided by the "
            "connections opened.",
        ),
        _figure(results, "alive").row(
            scenario,
            f"connections alive (of {count:,}), fewest in a run",
            goal=wsdev_equals(count, f"{count:,} of {count:,}"),
            combine=min,
        ),
        _figure(results, "fd_errors").row(
            scenario, "`too many open files` errors logged, all runs", combine=sum
        ),
        _figure(results, "fds_per_conn").row(
            scenario,
            "server open files per connection, once all are open",
            fmt="{:,.1f}",
            note="The open-file limit is "
            f"{resource.getrlimit(resource.RLIMIT_NOFILE)[0]:,} for both servers; a server that "
            "needs more files per connection than the limit allows refuses connections "
            "(websocketd logs `too many open files`).",
        ),
        _figure(results, "open_s").row(scenario, f"seconds to open {count:,}", fmt="{:,.2f}"),
        _figure(results, "echo_s").row(
            scenario, "seconds for every one to echo once", fmt="{:,.2f}"
        ),
        _figure(results, "teardown_s").row(
            scenario, "seconds from the client closing all to no child left", fmt="{:,.2f}"
        ),
    ]


# ---- a burst: hundreds of clients connect at once, each echoes one line ----

BURST_CLIENTS = 300


def burst_scenario(ctx: Context) -> list[Row]:
    count = BURST_CLIENTS
    runs = ctx.runs(7, 3)
    cap = somaxconn()
    ctx.say(
        f"cat: {count} clients connect at once, one echo each; {runs} run(s) each "
        f"(net.core.somaxconn {cap if cap is not None else 'unknown'})"
    )

    def once(server: Server) -> dict[str, float]:
        _no_children_left(server)  # the previous burst's children have all ended
        before = listen_counters()
        result = ctx.client.run("burst", server.port, count, limit=120)
        after = listen_counters()
        teardown = _no_children_left(server)  # the client closed them all as it exited
        failed = int(result["failed"])
        # A run in which some client failed has no "until every client" time (nor a p50 of
        # the same clients): its failures are counted instead.
        times = {
            "seconds": float(result["seconds"]) * 1000,
            "echo_p50": float(result["echo_p50_us"]) / 1000,
        }
        figures = {
            **(times if failed == 0 else {}),
            "late": float(result["late"]),
            "failed": float(failed),
            "overflows": float(after["ListenOverflows"] - before["ListenOverflows"]),
            "drops": float(after["ListenDrops"] - before["ListenDrops"]),
            "teardown_s": teardown,  # shown in the progress lines only
            # Where the failed ones were lost, if any (progress lines only).
            **{k: float(v) for k, v in result.items() if k.startswith("lost_") and v != "0"},
            **({"unfinished": float(result["unfinished"])} if result["unfinished"] != "0" else {}),
        }
        backlog = listen_backlog(server.port)
        if backlog is not None:
            figures["backlog"] = float(backlog)
        return figures

    def warmup(server: Server) -> object:
        return ctx.client.run("burst", server.port, count, limit=120)

    results = compare(ctx, ["cat"], runs, once, warmup=warmup)
    scenario = f"{count} `cat` clients connecting at once"
    backlog = _figure(results, "backlog").row(
        scenario,
        "listen backlog (`ss` Send-Q)",
        note="The backlog the kernel holds for the server's listening socket: what the server "
        f"asked for, capped at `net.core.somaxconn` ({cap if cap is not None else 'unknown'} "
        "here). A SYN that finds the accept queue full is dropped, and the client sends it "
        "again only after about 1 s.",
    )
    backlog.show_ratio = False  # a setting, not a performance figure
    return [
        _figure(results, "seconds").row(
            scenario,
            f"ms from the first connect until all {count} have their echo",
            goal=ratio_at_most(1),
            note=f"The client issues all {count} non-blocking connects before it handles any "
            "event; each connection sends its upgrade request once its connect completes and "
            "one text line once the 101 arrives, then stays open until every other one has its "
            "echo. Each run starts once the previous run's children have all ended; a run in "
            "which any client failed has no time (see `clients failed`).",
        ),
        _figure(results, "echo_p50").row(
            scenario, "ms from the first connect to a client's echo, p50", fmt="{:,.0f}"
        ),
        _figure(results, "late").row(scenario, "clients with their echo after 1 s or more"),
        _figure(results, "overflows").row(
            scenario,
            "kernel ListenOverflows increase, all runs",
            combine=sum,
            note="TcpExt counters of /proc/net/netstat, read just before and after each timed "
            "burst (not the warm-up); they count every listener of the network namespace, so "
            "anything else overflowing a listen queue meanwhile counts too.",
        ),
        _figure(results, "drops").row(
            scenario, "kernel ListenDrops increase, all runs", combine=sum
        ),
        _figure(results, "failed").row(scenario, "clients failed, all runs", combine=sum),
        backlog,
    ]


# ---- memory while the program floods and the client reads slowly ----

SLOW_RATE_MIB = 100
SLOW_STALL_MS = 1000
BOUND_MIB = 64


def slow_scenario(ctx: Context) -> list[Row]:
    mib = ctx.size(1024, 128)
    ctx.say(f"cat /dev/zero --binary: {mib} MiB to a client reading {SLOW_RATE_MIB} MiB/s")

    def once(server: Server) -> dict[str, float]:
        before = server.rss_kib()
        peak = before
        session = ctx.client.start(
            "slow", server.port, mib, SLOW_RATE_MIB, SLOW_STALL_MS, limit=mib // 10 + 120
        )
        # Memory has no event to wait on: sample it until the client is done.
        while session.proc.poll() is None:
            peak = max(peak, server.rss_kib())
            with contextlib.suppress(subprocess.TimeoutExpired):
                session.proc.wait(0.05)
        after = server.rss_kib()
        result = session.finish()
        got = int(result.get("bytes", "0"))
        if got < mib * MIB:
            raise ClientError(f"read {got / MIB:.1f} of {mib} MiB")
        return {
            "before": before / 1024,
            "peak": peak / 1024,
            "after": after / 1024,
            "growth": (peak - before) / 1024,
        }

    def warmup(server: Server) -> object:
        return ctx.client.run("slow", server.port, 1, 1000, 0)

    results = compare(ctx, ["cat", "/dev/zero"], 1, once, binary=True, fresh=True, warmup=warmup)
    scenario = f"`cat /dev/zero`, `--binary`, {mib:,} MiB to a slow reader"
    rss = Row(scenario, "server RSS before → peak → after, MiB", None, None, runs=1)
    for kind in SERVERS:
        parts = [_figure(results, f).values[kind] for f in ("before", "peak", "after")]
        rss.shown[kind] = " → ".join(f"{p[0]:.0f}" for p in parts) if all(parts) else "error"
    growth = _figure(results, "growth").row(
        scenario,
        "server RSS growth while pushing, MiB",
        fmt="{:,.1f}",
        goal=wsdev_below(BOUND_MIB, f"bounded (<{BOUND_MIB} MiB)"),
        note=f"The client stalls {SLOW_STALL_MS} ms after the upgrade, then reads at "
        f"{SLOW_RATE_MIB} MiB/s; the program writes as fast as it can. RSS is sampled every "
        "50 ms.",
    )
    return [rss, growth]


# ---- the dashboard's cost: the `seq` load, wsdev with its dashboard off and on ----

DASHBOARD_COLUMNS = (*DASHBOARD_KINDS, "on/off")
DASHBOARD_GOAL = 0.9


def dashboard_scenario(ctx: Context) -> list[Row]:
    # Twenty times the first scenario's output: wsdev sends a million lines in well under the
    # dashboard's 0.25 s between frames, and a run with no frame drawn would not measure drawing.
    count = ctx.size(20_000_000, 2_000_000)
    runs = ctx.runs(5, 3)
    ctx.say(f"seq 1 {count}: messages/s, wsdev with its dashboard off and on, {runs} run(s) each")

    def once(server: Server) -> dict[str, float]:
        written = server.written
        result = ctx.client.run("drain", server.port, limit=180)
        got = int(result["messages"])
        if got != count:
            raise ClientError(f"received {got:,} of {count:,} messages")
        # A run that had no dashboard to draw would measure nothing: it is no result.
        if server.tty and not server.dashboard_shown():
            raise ServerError(
                "the dashboard is not on: its terminal shows no alternate screen with the "
                f"wsdev and connections panels ({len(server.screen):,} bytes written)"
            )
        # Shown in the progress line only: how much the screen (or log) received meanwhile.
        return {"rate": float(result["rate"]), "output_kib": (server.written - written) / 1024}

    results = compare(
        ctx,
        ["seq", "1", str(count)],
        runs,
        once,
        warmup=once,
        columns=DASHBOARD_COLUMNS,
        start=lambda: dashboard_pair(["seq", "1", str(count)]),
    )
    scenario = f"`seq 1 {count}`, text, wsdev alone"
    output = _figure(results, "output_kib").row(
        scenario,
        "output during a timed transfer, KiB (log off, screen on)",
        fmt="{:,.1f}",
        note="The dashboard's redraws are rate-limited, so a transfer that lasts well under "
        "a second sees few frames, if any: this row shows how much reached the log (off) or "
        "the screen (on) while the client was connected. The cost of a frame is measured "
        "on its own by `bench/dashboard_overhead.py`.",
    )
    output.show_ratio = False  # a log and a screen: no ratio to speak of
    return [
        _figure(results, "rate").row(
            scenario,
            "messages/s, dashboard off vs on",
            goal=ratio_at_least(DASHBOARD_GOAL),
            note="Both columns are wsdev with the same program and client as the `seq` row: "
            "`--no-dashboard` with its output on pipes, and with its stdout and stderr on a "
            f"{TTY_COLUMNS}×{TTY_ROWS} pseudo-terminal (so the dashboard is on) that the runner "
            "reads as fast as wsdev writes. Each run with the dashboard on checks that the "
            "terminal received the alternate screen (`ESC[?1049h`) and the dashboard's panels.",
        ),
        output,
    ]


# ---- the recorder's cost: the `seq` load, wsdev without and with --record ----

RECORD_COLUMNS = (*RECORD_KINDS, "on/off")
RECORD_GOAL = 0.8


def record_scenario(ctx: Context) -> list[Row]:
    count = ctx.size(1_000_000, 200_000)
    runs = ctx.runs(5, 3)
    ctx.say(f"seq 1 {count}: messages/s, wsdev without and with --record, {runs} run(s) each")

    def once(server: Server) -> dict[str, float]:
        result = ctx.client.run("drain", server.port, limit=180)
        got = int(result["messages"])
        if got != count:
            raise ClientError(f"received {got:,} of {count:,} messages")
        return {"rate": float(result["rate"])}

    program = ["seq", "1", str(count)]
    results = compare(
        ctx,
        program,
        runs,
        once,
        warmup=once,
        columns=RECORD_COLUMNS,
        start=lambda: record_pair(program),
    )
    return [
        _figure(results, "rate").row(
            f"`seq 1 {count}`, text, wsdev alone",
            "messages/s, --record off vs on",
            goal=ratio_at_least(RECORD_GOAL),
            note="Both columns are wsdev with the same program and client as the `seq` row; "
            "`record on` writes every message into a transcript (behaviour H1) in a temporary "
            "folder. The figure is the client's: the recorder's writer process may still be "
            "writing when the last message arrives, but it shares the machine's cores with "
            "wsdev, the program and the client, and wsdev hands it every message, so any cost "
            "it has shows here.",
        )
    ]


SCENARIOS: dict[str, Callable[[Context], list[Row]]] = {
    "seq": seq_scenario,
    "pipe": pipe_scenario,
    "rtt": rtt_scenario,
    "connect": connect_scenario,
    "hold": hold_scenario,
    "burst": burst_scenario,
    "slow": slow_scenario,
    "dashboard": dashboard_scenario,
    "record": record_scenario,
}
