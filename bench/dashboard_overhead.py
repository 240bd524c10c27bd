"""What the terminal dashboard costs: per event, per frame, idle, and under a flood of output.

    PYTHONPATH=src python bench/dashboard_overhead.py

Prints one line per measurement. The dashboard draws into a terminal console that writes to
/dev/null, so the numbers include rich's rendering and escape codes but not a terminal's paint.
"""

from __future__ import annotations

import asyncio
import io
import os
import time

from rich.console import Console

from wsdev.config import Config
from wsdev.dashboard import Dashboard, render
from wsdev.events import (
    Connected,
    ConnectionInfo,
    Event,
    EventBus,
    MessageIn,
    MessagesOut,
    ProcessStarted,
    StderrLine,
)
from wsdev.tally import Tally

CONFIG = Config(command=("/usr/bin/python3", "bot.py"), command_display="bot.py")


def conn(seq: int) -> ConnectionInfo:
    return ConnectionInfo(
        id=f"id-{seq}",
        seq=seq,
        remote="127.0.0.1",
        path="/chat",
        query=f"user={seq}",
        url="",
        origin="",
        command="bot.py",
    )


def busy_tally(connections: int) -> Tally:
    tally = Tally()
    for seq in range(1, connections + 1):
        c = conn(seq)
        tally.handle(Connected(c))
        tally.handle(ProcessStarted(c, 1000 + seq))
        tally.handle(MessageIn(c, "hello"))
        tally.handle(MessagesOut(c, [b'{"echo": "hello"}'], 17, False))
        for i in range(20):
            tally.handle(StderrLine(c, f"[bot] line {i} of connection {seq}"))
    return tally


def per_event() -> None:
    tally = busy_tally(10)
    c = conn(1)
    events: list[Event] = [
        MessagesOut(c, [b"x" * 40] * 8, 320, False),
        StderrLine(c, "a line"),
        MessageIn(c, "m"),
    ]
    n = 300_000
    start = time.perf_counter()
    for i in range(n):
        tally.handle(events[i % 3])
    took = time.perf_counter() - start
    print(f"tally: {took / n * 1e9:.0f} ns per event ({n} events)")


def per_frame() -> None:
    for width, height, connections in ((80, 24, 5), (120, 40, 20), (200, 60, 100)):
        tally = busy_tally(connections)
        console = Console(file=io.StringIO(), width=width, height=height, force_terminal=True)
        frames = 50
        start = time.perf_counter()
        for _ in range(frames):
            console.print(render(tally, CONFIG, time.monotonic(), width, height))
        took = (time.perf_counter() - start) / frames
        print(f"frame {width}x{height}, {connections} live: {took * 1e3:.1f} ms")


async def loop_cpu(seconds: float, flood: bool) -> None:
    with open(os.devnull, "w") as sink:
        console = Console(file=sink, width=120, height=40, force_terminal=True)
        bus = EventBus()
        dashboard = Dashboard(bus, CONFIG, console=console)
        dashboard.start()
        c = conn(1)
        bus.publish(Connected(c))
        cpu, wall = time.process_time(), time.monotonic()
        events = 0
        if flood:
            while time.monotonic() - wall < seconds:
                for _ in range(100):
                    bus.publish(MessagesOut(c, [b"x" * 40] * 8, 320, False))
                events += 100
                await asyncio.sleep(0)
        else:
            await asyncio.sleep(seconds)  # measuring idleness: nothing to wait for
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        draws = dashboard.draws
        await dashboard.stop()
    if flood:
        # The CPU here is mostly the publishing loop itself; the draws are what the bound caps.
        print(
            f"flood: {events / wall:.0f} events/s for {wall:.1f}s, {draws} draws "
            f"({draws / wall:.1f}/s), process CPU {cpu / wall * 100:.0f}%"
        )
    else:
        print(f"idle: {draws} draws in {wall:.1f}s, CPU {cpu / wall * 100:.2f}% of one core")


def main() -> None:
    per_event()
    per_frame()
    asyncio.run(loop_cpu(5.0, flood=False))
    asyncio.run(loop_cpu(3.0, flood=True))


if __name__ == "__main__":
    main()
