"""The dashboard's tally: counters, live connections and bounded histories from the event bus."""

from __future__ import annotations

import pytest

from wsdev.events import (
    Connected,
    ConnectionError_,
    ConnectionInfo,
    Disconnected,
    EventBus,
    ExitStatus,
    HttpRequest,
    MessageIn,
    MessagesOut,
    OutputStalled,
    ProcessStarted,
    Rejected,
    Restarting,
    ServerError,
    ServerStarted,
    ServerStopping,
    SpawnFailed,
    StderrLine,
)
from wsdev.tally import Kind, Tally, human_bytes, human_duration


class Clock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def conn(seq: int, *, path: str = "/", query: str = "", console: bool = False) -> ConnectionInfo:
    return ConnectionInfo(
        id=f"id-{seq}",
        seq=seq,
        remote="127.0.0.1",
        path=path,
        query=query,
        url=f"ws://127.0.0.1:8080{path}",
        origin="",
        command="bot.py",
        console=console,
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def tally(clock: Clock) -> Tally:
    return Tally(clock=clock, wall_clock=lambda: 1_700_000_000.0 + clock.now)


def test_subscribes_to_the_bus(tally: Tally) -> None:
    bus = EventBus()
    unsubscribe = bus.subscribe(tally.handle)
    bus.publish(Connected(conn(1)))
    assert list(tally.live) == ["id-1"]
    unsubscribe()
    bus.publish(Connected(conn(2)))
    assert list(tally.live) == ["id-1"]
    assert tally.changes == 1


def test_connection_lifecycle_and_counters(tally: Tally, clock: Clock) -> None:
    c = conn(3, path="/chat", query="room=1")
    tally.handle(Connected(c))
    clock.now += 1
    tally.handle(ProcessStarted(c, 4242))
    tally.handle(MessageIn(c, "héllo"))  # 6 bytes of UTF-8
    tally.handle(MessageIn(c, b"\x00\x01"))
    clock.now += 2
    tally.handle(MessagesOut(c, [b"A", b"BC", b"DEF"], 6, False))

    stats = tally.live["id-3"]
    assert stats.pid == 4242
    assert (stats.messages_in, stats.bytes_in) == (2, 8)
    assert (stats.messages_out, stats.bytes_out) == (3, 6)
    assert stats.connected_at == 100.0
    assert stats.last_activity == 103.0
    assert stats.last_direction == "out"
    assert stats.last_preview == "DEF"
    totals = tally.totals
    assert (totals.connections, totals.messages_in, totals.bytes_in) == (1, 2, 8)
    assert (totals.messages_out, totals.bytes_out) == (3, 6)

    tally.handle(Disconnected(c, 1000, "exit 0", ExitStatus(code=0), 3.0))
    assert not tally.live
    assert tally.totals.connections == 1  # "ever" stays
    entry = tally.log[-1]
    assert entry.kind is Kind.DISCONNECT and entry.seq == 3
    assert entry.text == "closed 1000 · exit 0 · 3.0s"


def test_connect_entry_names_remote_path_and_console(tally: Tally) -> None:
    tally.handle(Connected(conn(1, path="/a", query="x=1", console=True)))
    entry = tally.log[-1]
    assert entry.kind is Kind.CONNECT and entry.seq == 1
    assert entry.text == "connected from 127.0.0.1 /a?x=1 (console)"


@pytest.mark.parametrize(
    ("code", "reason", "status", "kind", "text"),
    [
        (1011, "exit 3", ExitStatus(code=3), Kind.FAILED, "closed 1011 · exit 3 · 1.5s"),
        (1011, "signal SIGKILL", ExitStatus(signal=9), Kind.FAILED, "closed 1011 · signal SIGKILL"),
        (
            1000,
            "bye",
            ExitStatus(signal=2),
            Kind.DISCONNECT,
            "closed 1000 · signal SIGINT · 1.5s · 'bye'",
        ),
        (1012, "service restart", None, Kind.DISCONNECT, "closed 1012 · 1.5s · 'service restart'"),
        (None, "", None, Kind.DISCONNECT, "dropped · 1.5s"),
    ],
)
def test_disconnect_reports_exit_status(
    tally: Tally,
    code: int | None,
    reason: str,
    status: ExitStatus | None,
    kind: Kind,
    text: str,
) -> None:
    c = conn(1)
    tally.handle(Connected(c))
    tally.handle(Disconnected(c, code, reason, status, 1.5))
    assert tally.log[-1].kind is kind
    assert tally.log[-1].text.startswith(text)


def test_stderr_lines_are_tagged_and_bounded(clock: Clock) -> None:
    tally = Tally(clock=clock, wall_clock=clock, history=5)
    a, b = conn(1), conn(2)
    tally.handle(Connected(a))
    tally.handle(Connected(b))
    for i in range(8):
        tally.handle(StderrLine(a if i % 2 else b, f"line {i}\r"))
    expected = [(1 if i % 2 else 2, f"line {i}") for i in range(3, 8)]
    assert [(entry.seq, entry.line) for entry in tally.stderr] == expected
    assert tally.totals.stderr_lines == 8
    assert tally.live["id-1"].stderr_lines == 4
    assert len(tally.log) == 2  # the connects; the log is bounded the same way
    for _ in range(10):
        tally.handle(ServerError("boom"))
    assert len(tally.log) == 5


def test_long_texts_are_cut_when_stored(tally: Tally) -> None:
    c = conn(1)
    tally.handle(Connected(c))
    tally.handle(StderrLine(c, "x" * 100_000))
    assert tally.stderr[-1].line == "x" * 4000 + "… (96000 more characters)"
    tally.handle(MessagesOut(c, [b"y" * 100_000], 100_000, False))
    assert len(tally.live["id-1"].last_preview) <= 80
    assert tally.live["id-1"].recent[-1].sizes == [100_000]
    assert len(tally.live["id-1"].recent[-1].messages[0]) == 300


def test_binary_preview_is_hex(tally: Tally) -> None:
    c = conn(1)
    tally.handle(Connected(c))
    tally.handle(MessagesOut(c, [b"\x00\xff\x10"], 3, True))
    assert tally.live["id-1"].last_preview == "[3 bytes] 00 ff 10"


def test_events_of_unknown_connections_count_but_do_not_resurrect(tally: Tally) -> None:
    c = conn(9)
    tally.handle(MessagesOut(c, [b"late"], 4, False))
    tally.handle(StderrLine(c, "late line"))
    tally.handle(ProcessStarted(c, 1))
    tally.handle(OutputStalled(c, 3))
    assert not tally.live
    assert tally.totals.messages_out == 1
    assert tally.stderr[-1].seq == 9


def test_stall_is_reported_once_and_cleared_by_output(tally: Tally) -> None:
    c = conn(1)
    tally.handle(Connected(c))
    tally.handle(OutputStalled(c, 12))
    tally.handle(OutputStalled(c, 14))
    stalls = [e for e in tally.log if e.kind is Kind.STALL]
    assert len(stalls) == 1
    assert "12 bytes" in stalls[0].text and "newline" in stalls[0].text
    assert tally.live["id-1"].stalled_bytes == 12
    tally.handle(MessagesOut(c, [b"done"], 4, False))
    assert tally.live["id-1"].stalled_bytes == 0


def test_server_events(tally: Tally, clock: Clock) -> None:
    clock.now = 150.0
    tally.handle(
        ServerStarted(
            urls=("ws://127.0.0.1:8080/",),
            console_urls=("http://127.0.0.1:8080/",),
            command="bot.py",
            binary=False,
            watched=("bot.py",),
        )
    )
    assert tally.server is not None and tally.started_at == 150.0
    assert tally.uptime(160.0) == 10.0
    tally.handle(Restarting(("bot.py", "a.py", "b.py", "c.py"), 2))
    tally.handle(Rejected(403, "origin not allowed", "/", "10.0.0.1", "http://evil.example"))
    tally.handle(Rejected(429, "too many children (--maxforks=2)", "http://h:80/x?y=1", "10.0.0.2"))
    tally.handle(SpawnFailed(conn(4), "permission denied"))
    tally.handle(ConnectionError_(conn(5), "invalid UTF-8 replaced"))
    tally.handle(ServerError("watcher died"))
    tally.handle(HttpRequest("GET", "/", "127.0.0.1", 200, "CONSOLE"))
    tally.handle(ServerStopping("interrupted"))

    texts = [(e.kind, e.seq, e.text) for e in tally.log]
    assert texts == [
        (Kind.SERVER, None, "serving ws://127.0.0.1:8080/"),
        (Kind.RESTART, None, "bot.py, a.py, b.py +1 more changed, closing 2 connections"),
        (Kind.REJECT, None, "403 / from 10.0.0.1 origin http://evil.example: origin not allowed"),
        (Kind.REJECT, None, "429 /x?y=1 from 10.0.0.2: too many children (--maxforks=2)"),
        (Kind.ERROR, 4, "could not start: permission denied"),
        (Kind.ERROR, 5, "invalid UTF-8 replaced"),
        (Kind.ERROR, None, "watcher died"),
        (Kind.SERVER, None, "stopping: interrupted"),
    ]
    totals = tally.totals
    assert (totals.restarts, totals.rejected, totals.errors, totals.http_requests) == (1, 2, 3, 1)
    assert tally.stopping == "interrupted"


def test_each_event_costs_constant_memory(tally: Tally) -> None:
    c = conn(1)
    tally.handle(Connected(c))
    for i in range(20_000):
        tally.handle(StderrLine(c, f"line {i}"))
        tally.handle(ConnectionError_(c, f"error {i}"))
        tally.handle(MessagesOut(c, [b"x"], 1, False))
    assert len(tally.stderr) == 500 and len(tally.log) == 500
    assert tally.stderr[-1].line == "line 19999"


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "0 B"), (999, "999 B"), (1000, "1.0 kB"), (12_345, "12 kB"), (3_400_000, "3.4 MB")],
)
def test_human_bytes(n: int, text: str) -> None:
    assert human_bytes(n) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-1, "0.0s"),
        (0.42, "0.4s"),
        (12.7, "12s"),
        (185, "3m05s"),
        (7620, "2h07m"),
        (3 * 86400, "3d00h"),
    ],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text
