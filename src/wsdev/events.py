"""The one stream of facts that every view of wsdev reads.

Connections and the server *publish* events; the log writer, the dashboard, the console's
all-connections feed and the recorder (``--record``) *subscribe*. Nothing that subscribes reaches
back into a connection, so data flows one way. Publishing is a synchronous loop over subscribers:
subscribers must be quick and must not raise (the bus shields publishers from them anyway).

Output is published per batch (one event for the many lines a single pipe read produced), so a
program that floods stdout costs one event per read, not one per line.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ExitStatus:
    """How a child ended: ``code`` for a normal exit, ``signal`` when a signal killed it."""

    code: int | None = None
    signal: int | None = None

    @classmethod
    def from_wait_status(cls, status: int) -> ExitStatus:
        if os.WIFSIGNALED(status):
            return cls(signal=os.WTERMSIG(status))
        return cls(code=os.waitstatus_to_exitcode(status))

    @property
    def ok(self) -> bool:
        return self.code == 0

    def describe(self) -> str:
        """``exit 0``, ``exit 3`` or ``signal SIGTERM``: the close reason of behaviour B2."""
        if self.signal is not None:
            try:
                name = signal.Signals(self.signal).name
            except ValueError:
                name = str(self.signal)
            return f"signal {name}"
        return f"exit {self.code}"


@dataclass(slots=True, eq=False)
class ConnectionInfo:
    """What is known about one WebSocket connection; shared by all of its events.

    ``id`` is the UNIQUE_ID its program sees and the ``id`` of its log lines; ``seq`` is a small
    number for people (``#3``) in the dashboard and console.
    """

    id: str
    seq: int
    remote: str
    path: str
    query: str
    url: str
    origin: str
    command: str
    console: bool = False
    started: float = field(default_factory=time.monotonic)
    pid: int | None = None
    # How many restarts on edit came before its program started (D2).
    generation: int = 0
    # The request's headers in order, as the program's environment has them (a recorder's).
    headers: tuple[tuple[str, str], ...] = ()
    # The name its person gave in the console ("" when none): wsdev's, not the program's (C9).
    client_name: str = ""

    @property
    def client(self) -> str:
        """Who it belongs to, for people: the name given in the console, else the address."""
        return self.client_name or self.remote


# ---------------------------------------------------------------- server-wide events


@dataclass(frozen=True, slots=True)
class ServerStarted:
    urls: tuple[str, ...]
    console_urls: tuple[str, ...]
    command: str
    binary: bool
    watched: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ServerStopping:
    reason: str


@dataclass(frozen=True, slots=True)
class Restarting:
    """Watched files changed: every live connection is about to close with 1012, or, under
    ``--reload=new`` (``kept``), stays on the program it started with (D2)."""

    changed: tuple[str, ...]
    live: int
    # Restarts so far, this one included; a console compares it with its program's (D2).
    generation: int = 0
    kept: bool = False


@dataclass(frozen=True, slots=True)
class Draining:
    """Shutting down with ``--drain``: new sessions are refused, live ones have ``seconds_left``
    to end by themselves before they are closed with 1001 (behaviour B12)."""

    seconds_left: int
    live: int


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A plain HTTP request was answered (``kind``: STATIC, CGI, CONSOLE, NOT FOUND, …)."""

    method: str
    url: str
    remote: str
    status: int
    kind: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """A request refused before any program ran: bad origin (403), too many children (429)…"""

    status: int
    reason: str
    url: str
    remote: str
    origin: str = ""


@dataclass(frozen=True, slots=True)
class ServerError:
    """Something went wrong outside any one connection."""

    message: str
    category: str = "server"


# ---------------------------------------------------------------- per-connection events


@dataclass(frozen=True, slots=True)
class Connected:
    conn: ConnectionInfo


@dataclass(frozen=True, slots=True)
class ProcessStarted:
    conn: ConnectionInfo
    pid: int


@dataclass(frozen=True, slots=True)
class SpawnFailed:
    conn: ConnectionInfo
    message: str


@dataclass(frozen=True, slots=True)
class MessageIn:
    """One message from the client, written to the program's stdin."""

    conn: ConnectionInfo
    data: str | bytes


@dataclass(frozen=True, slots=True)
class MessagesOut:
    """Messages sent to the client from one read of the program's stdout.

    ``payloads`` are the frames' payloads (UTF-8 text in text mode); ``nbytes`` their total.
    ``block``, when not None, is the payloads as the program wrote them, each followed by a
    newline: the recorder formats a flood from it in one pass.
    """

    conn: ConnectionInfo
    payloads: Sequence[bytes]
    nbytes: int
    binary: bool
    block: bytes | None = None


@dataclass(frozen=True, slots=True)
class StderrLine:
    conn: ConnectionInfo
    line: str


@dataclass(frozen=True, slots=True)
class OutputStalled:
    """The program wrote bytes without a newline over a second ago (likely output buffering)."""

    conn: ConnectionInfo
    pending_bytes: int


@dataclass(frozen=True, slots=True)
class ConnectionError_:
    """Something went wrong in one connection (invalid UTF-8, a line too long, …)."""

    conn: ConnectionInfo
    message: str
    category: str = "process"


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The connection is over: its close code and reason, and how its program ended."""

    conn: ConnectionInfo
    code: int | None
    reason: str
    exit: ExitStatus | None
    duration: float
    by: str = ""  # who ended it: "client", "server" or "program" ("" when no program ran)


Event = (
    ServerStarted
    | ServerStopping
    | Restarting
    | Draining
    | HttpRequest
    | Rejected
    | ServerError
    | Connected
    | ProcessStarted
    | SpawnFailed
    | MessageIn
    | MessagesOut
    | StderrLine
    | OutputStalled
    | ConnectionError_
    | Disconnected
)

Subscriber = Callable[[Event], None]


class EventBus:
    """Synchronous fan-out of events to subscribers, in the order they subscribed.

    The commonest events by far, ``MessageIn`` and ``MessagesOut`` (one per message or read),
    go out through ``publish_message`` to the subscribers that want them. While none does (no
    dashboard, no console feed: the log never shows messages), ``wants_messages`` is False
    and the bridge does not even make them: an echo's round trip waits on none of it.
    """

    __slots__ = ("_message_subscribers", "_subscribers")

    def __init__(self) -> None:
        self._subscribers: tuple[Subscriber, ...] = ()
        self._message_subscribers: tuple[Subscriber, ...] = ()

    def subscribe(self, subscriber: Subscriber, *, messages: bool = True) -> Callable[[], None]:
        """Add ``subscriber``; returns a function that removes it again.

        ``messages`` False: it is never given ``MessageIn`` or ``MessagesOut``.
        """
        self._subscribers = (*self._subscribers, subscriber)
        if messages:
            self._message_subscribers = (*self._message_subscribers, subscriber)

        def unsubscribe() -> None:
            self._subscribers = tuple(s for s in self._subscribers if s is not subscriber)
            self._message_subscribers = tuple(
                s for s in self._message_subscribers if s is not subscriber
            )

        return unsubscribe

    @property
    def wants_messages(self) -> bool:
        """Whether any subscriber takes ``MessageIn`` and ``MessagesOut``."""
        return bool(self._message_subscribers)

    def publish(self, event: Event) -> None:
        self._deliver(self._subscribers, event)

    def publish_message(self, event: MessageIn | MessagesOut) -> None:
        """A ``MessageIn`` or ``MessagesOut``, to the subscribers that take them."""
        self._deliver(self._message_subscribers, event)

    @staticmethod
    def _deliver(subscribers: tuple[Subscriber, ...], event: Event) -> None:
        for subscriber in subscribers:
            try:
                subscriber(event)
            except Exception:
                # A broken view must never break a connection; say so once per failure.
                logger.exception("event subscriber %r failed", subscriber)
