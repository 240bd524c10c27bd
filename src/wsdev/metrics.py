"""``/_wsdev/health`` and ``/_wsdev/metrics``: what a proxy and a monitoring system ask (B12).

Health answers 200 while wsdev serves and 503 while it drains. Metrics are Prometheus' text
exposition format (version 0.0.4), written by hand: a dozen counters need no library. They are
counted from the event bus, like every other view, never from the connection path; with
``--metrics`` off nobody subscribes to messages for them, so a session's data path pays nothing.
Both answer loopback clients, Unix socket peers and ``--metrics-from`` networks only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from aiohttp import web

from wsdev.config import Config
from wsdev.events import (
    Connected,
    Disconnected,
    Draining,
    Event,
    EventBus,
    HttpRequest,
    MessageIn,
    MessagesOut,
    ProcessStarted,
    Rejected,
    Restarting,
    SpawnFailed,
    StderrLine,
)
from wsdev.proxies import parse_ip

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """Counters of one run, fed by the event bus."""

    def __init__(self, bus: EventBus) -> None:
        self.live = 0
        self.connections = 0
        self.messages_in = 0
        self.messages_out = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.children_started = 0
        self.spawn_failures = 0
        self.exits: Counter[str] = Counter()  # "exit 0", "signal SIGTERM", …
        self.refusals: Counter[int] = Counter()  # by status: 403, 429, 503, …
        self.restarts = 0
        self.stderr_lines = 0
        self.http_requests: Counter[str] = Counter()  # by kind: STATIC, CGI, CONSOLE, …
        self.draining = False
        bus.subscribe(self)

    def __call__(self, event: Event) -> None:
        if isinstance(event, MessagesOut):
            self.messages_out += len(event.payloads)
            self.bytes_out += event.nbytes
        elif isinstance(event, MessageIn):
            self.messages_in += 1
            data = event.data
            self.bytes_in += len(data) if isinstance(data, bytes) else len(data.encode())
        elif isinstance(event, StderrLine):
            self.stderr_lines += 1
        elif isinstance(event, Connected):
            self.live += 1
            self.connections += 1
        elif isinstance(event, Disconnected):
            self.live -= 1
            if event.exit is not None:
                self.exits[event.exit.describe()] += 1
        elif isinstance(event, ProcessStarted):
            self.children_started += 1
        elif isinstance(event, SpawnFailed):
            self.spawn_failures += 1
        elif isinstance(event, Rejected):
            self.refusals[event.status] += 1
        elif isinstance(event, HttpRequest):
            self.http_requests[event.kind] += 1
        elif isinstance(event, Restarting):
            self.restarts += 1
        elif isinstance(event, Draining):
            self.draining = True

    def exposition(self) -> str:
        """The counters in Prometheus' text format."""
        out: list[str] = []
        _metric(out, "connections", "gauge", "Live WebSocket sessions.", [((), self.live)])
        _metric(
            out,
            "connections_total",
            "counter",
            "WebSocket sessions opened.",
            [((), self.connections)],
        )
        _metric(
            out,
            "messages_total",
            "counter",
            "WebSocket messages, by direction (in: from clients).",
            [
                ((("direction", "in"),), self.messages_in),
                ((("direction", "out"),), self.messages_out),
            ],
        )
        _metric(
            out,
            "message_bytes_total",
            "counter",
            "Payload bytes of WebSocket messages, by direction.",
            [((("direction", "in"),), self.bytes_in), ((("direction", "out"),), self.bytes_out)],
        )
        _metric(
            out,
            "children_started_total",
            "counter",
            "Programs started for WebSocket sessions.",
            [((), self.children_started)],
        )
        _metric(
            out,
            "spawn_failures_total",
            "counter",
            "Programs that could not be started.",
            [((), self.spawn_failures)],
        )
        _metric(
            out,
            "children_exited_total",
            "counter",
            "Programs ended, by how they ended.",
            [((("status", status),), n) for status, n in sorted(self.exits.items())],
        )
        _metric(
            out,
            "refusals_total",
            "counter",
            "Requests refused before a program ran, by HTTP status (403 origin, 429 "
            "--maxforks, 503 draining).",
            [((("status", str(status)),), n) for status, n in sorted(self.refusals.items())],
        )
        _metric(
            out,
            "http_requests_total",
            "counter",
            "Plain HTTP requests answered, by kind.",
            [((("kind", kind),), n) for kind, n in sorted(self.http_requests.items())],
        )
        _metric(out, "restarts_total", "counter", "Restarts on edit.", [((), self.restarts)])
        _metric(
            out,
            "stderr_lines_total",
            "counter",
            "Lines programs wrote to stderr.",
            [((), self.stderr_lines)],
        )
        _metric(
            out,
            "draining",
            "gauge",
            "1 while shutting down with --drain.",
            [((), int(self.draining))],
        )
        return "\n".join(out) + "\n"


def _metric(
    out: list[str],
    name: str,
    kind: str,
    help_text: str,
    samples: Iterable[tuple[tuple[tuple[str, str], ...], int]],
) -> None:
    full = f"wsdev_{name}"
    out.append(f"# HELP {full} {_escape_help(help_text)}")
    out.append(f"# TYPE {full} {kind}")
    for labels, value in samples:
        if labels:
            inner = ",".join(f'{key}="{_escape_label(val)}"' for key, val in labels)
            out.append(f"{full}{{{inner}}} {value}")
        else:
            out.append(f"{full} {value}")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def may_read(config: Config, remote: str | None) -> bool:
    """Loopback clients, Unix socket peers and ``--metrics-from`` networks (behaviour B12)."""
    if not remote:
        return True  # a Unix socket: only local processes reach it
    address = parse_ip(remote)
    if address is None:
        return False
    if address.is_loopback:
        return True
    return any(address in network for network in config.metrics_from)


def health_response(draining: bool) -> web.Response:
    if draining:
        return web.Response(status=503, text="draining\n", headers={"Retry-After": "1"})
    return web.Response(status=200, text="ok\n")


def metrics_response(metrics: Metrics) -> web.Response:
    return web.Response(body=metrics.exposition().encode(), headers={"Content-Type": CONTENT_TYPE})
