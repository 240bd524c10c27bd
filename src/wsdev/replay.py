"""Replaying a transcript's client side against its program, and what the program did (H2, H4).

The program is started as wsdev starts it for a connection: the same ``Config`` rules, the same
environment (``environ.cgi_environ`` for the recorded path, query and headers) and, without a
network listener, the same ``Bridge`` (its line splitting, stdin flow and A4 ending), with a
stand-in for the client. ``over_websocket`` instead runs a real ``Server`` on 127.0.0.1 and a
real WebSocket client. Either way the transcript's messages are sent in order, each once the
replies recorded before it have come (or the wait has timed out): timing is otherwise ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import quote

from wsdev.bridge import Bridge
from wsdev.cli import build_config, parse_args
from wsdev.config import Config
from wsdev.environ import RequestFacts, cgi_environ, inherited_environ
from wsdev.errors import ConfigError
from wsdev.events import (
    ConnectionInfo,
    Disconnected,
    Event,
    EventBus,
    ExitStatus,
    MessagesOut,
    StderrLine,
)
from wsdev.process import spawn
from wsdev.sinks import PlainSink
from wsdev.transcript import Transcript
from wsdev.urlmap import map_url

# Headers the WebSocket client makes itself for each handshake: never replayed over a socket.
HANDSHAKE_HEADERS = frozenset(
    {"host", "upgrade", "connection", "content-length", "transfer-encoding"}
)


# How long each later wait for replies may take once one has timed out: the replay has failed,
# what is left only shows how far the program is from the recording.
AFTER_TIMEOUT = 0.0


@dataclass(slots=True)
class Reply:
    """Something the program produced: ``after`` is how many messages had been sent then."""

    after: int
    t: float
    data: str | bytes


@dataclass(slots=True)
class Outcome:
    """What the program did during one replay."""

    received: list[Reply] = field(default_factory=list)
    stderr: list[Reply] = field(default_factory=list)
    close_code: int | None = None
    close_reason: str = ""
    by: str = ""  # "program", "client", "server"; "" if the session never ended
    exit: ExitStatus | None = None
    timed_out: str = ""  # what was still awaited when a wait gave up


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    command: tuple[str, ...] = ()  # ``-- COMMAND ARGS``: run this instead of the recorded one
    over_websocket: bool = False
    timeout: float = 5.0  # seconds each wait may take (a reply, the program's end)
    passenv: str | None = None  # --passenv for the program, as for ``wsdev``


def replay_config(transcript: Transcript, options: ReplayOptions) -> tuple[Config, list[str]]:
    """The ``Config`` ``wsdev`` would have for the transcript's program, and that program's
    argv as typed (the recorded command, or ``options.command``)."""
    header = transcript.header
    flags = ["--no-reload", "--no-dashboard", "--no-console"]
    if header.binary:
        flags.append("--binary")
    if options.passenv is not None:
        flags.append(f"--passenv={options.passenv}")
    directory = header.extra.get("dir")
    if options.command:
        argv = list(options.command)
    elif isinstance(directory, str):
        return build_config(parse_args([*flags, f"--dir={directory}"]), environ={}), []
    else:
        try:
            argv = shlex.split(header.command)
        except ValueError as exc:
            raise ConfigError(f"{transcript.name}: cannot read its command: {exc}") from None
        if not argv:
            raise ConfigError(f"{transcript.name}: no command recorded; give -- COMMAND")
    # No WSDEV_* variables: the transcript and these options say how the program runs.
    return build_config(parse_args([*flags, "--", *argv]), environ={}), argv


def request_facts(transcript: Transcript) -> RequestFacts:
    """The recorded request, as the environment's rules read it."""
    header = transcript.header
    raw_path = quote(header.path, safe="/:@!$&'()*+,;=-._~")
    if header.query:
        raw_path += "?" + header.query
    host = next((v for n, v in header.headers if n.lower() == "host"), "localhost")
    return RequestFacts(
        method="GET",
        raw_path=raw_path,
        version="HTTP/1.1",
        host=host,
        headers=header.headers,
        remote_addr="127.0.0.1",
        remote_port="0",
        remote_host="127.0.0.1",
    )


class Session:
    """One replay in progress: the program's replies so far, and a way to wait for more."""

    def __init__(self) -> None:
        self.outcome = Outcome()
        self.sent = 0
        self.ended = asyncio.Event()
        self._changed = asyncio.Event()
        self._start = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self._start

    def reply(self, data: str | bytes) -> None:
        self.outcome.received.append(Reply(self.sent, self.now(), data))
        self._changed.set()

    def stderr(self, line: str) -> None:
        self.outcome.stderr.append(Reply(self.sent, self.now(), line))

    def end(self, code: int | None, reason: str, by: str, status: ExitStatus | None) -> None:
        outcome = self.outcome
        outcome.close_code, outcome.close_reason, outcome.by, outcome.exit = (
            code,
            reason,
            by,
            status,
        )
        self.ended.set()
        self._changed.set()

    async def until(self, done: Callable[[], bool], timeout: float, waiting_for: str) -> bool:
        """Wait until ``done()`` or the session's end; False (and noted) after ``timeout``."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not done() and not self.ended.is_set():
            self._changed.clear()
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                self.outcome.timed_out = self.outcome.timed_out or waiting_for  # the first
                return False
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return True


async def replay(transcript: Transcript, options: ReplayOptions) -> Outcome:
    """Run the transcript's client side against its program; what the program did."""
    config, _ = replay_config(transcript, options)
    if options.over_websocket:
        return await _over_websocket(transcript, config, options)
    return await _over_pipes(transcript, config, options)


async def _drive(
    transcript: Transcript,
    session: Session,
    send: Callable[[str | bytes], Awaitable[None]],
    close: Callable[[], Awaitable[None]],
    timeout: float,
) -> None:
    """Send each recorded message once the replies recorded before it are in, then end the
    session as it was ended: the client closes, or the program's own end is awaited.

    Once one wait has timed out the replay has failed: later ones do not wait, so a program
    that stopped answering costs one timeout, not one per message."""
    expected = 0
    for step in transcript.steps:
        if step.kind == "received":
            expected += 1
        elif step.kind == "sent" and isinstance(step.data, (str, bytes)):
            if session.outcome.timed_out:
                timeout = min(timeout, AFTER_TIMEOUT)
            await session.until(_has_replies(session, expected), timeout, f"reply {expected}")
            if session.ended.is_set():
                return
            session.sent += 1
            await send(step.data)
    closes = transcript.of_kind("close")
    by = closes[-1].extra.get("by") if closes else "client"
    await session.until(_has_replies(session, expected), timeout, f"reply {expected}")
    if by == "program":
        await session.until(lambda: False, timeout, "the program's end")
    if not session.ended.is_set():
        await close()
    await session.until(lambda: False, timeout + 10, "the session's end")


def _has_replies(session: Session, count: int) -> Callable[[], bool]:
    return lambda: len(session.outcome.received) >= count


# ---------------------------------------------------------------- straight to the pipes


class _PipeClient:
    """The client's side of a ``Bridge`` when there is no socket: nothing to pause or frame."""

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self, code: int, reason: str) -> None:
        pass  # how the session ended comes with its Disconnected event

    def abort(self) -> None:
        pass

    def ping(self) -> None:
        pass

    def write(self, frames: bytes) -> None:
        pass  # the replies are taken from the events, as the recorder takes them


async def _over_pipes(transcript: Transcript, config: Config, options: ReplayOptions) -> Outcome:
    facts = request_facts(transcript)
    header = transcript.header
    if config.script_dir is not None:
        match = map_url(config.script_dir, header.path)
        if match is None:
            raise ConfigError(
                f"{transcript.name}: no program at {header.path} in {config.script_dir}"
            )
        argv: tuple[str, ...] = (str(match.file),)
        script_name, path_info = match.script_name, match.path_info
    else:
        argv, script_name, path_info = config.command, "/", header.path
    env = cgi_environ(
        config,
        facts,
        script_name=script_name,
        path_info=path_info,
        unique_id=str(time.time_ns()),
        parent=inherited_environ(config),
    )
    session = Session()
    bus = EventBus()
    bus.subscribe(_listener(session))
    try:
        child = spawn(argv, env)
    except OSError as exc:
        raise ConfigError(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
    client = _PipeClient()
    conn = ConnectionInfo(
        id=env["UNIQUE_ID"],
        seq=1,
        remote="127.0.0.1",
        path=header.path,
        query=header.query,
        url=f"http://{facts.host}{facts.raw_path}",
        origin="",
        command=" ".join(argv),
        headers=header.headers,
    )
    bridge = Bridge(
        connection=client,
        sink=PlainSink(client, passstderr=False),
        config=config,
        bus=bus,
        conn=conn,
        child=child,
        released=lambda _: None,
    )
    bridge.start(env)

    async def send(data: str | bytes) -> None:
        if isinstance(data, bytes):
            bridge.on_message(data, True)
        else:
            bridge.on_message(data.encode(), False)

    async def close() -> None:
        bridge.client_closed(1000)

    try:
        await _drive(transcript, session, send, close, options.timeout)
    finally:
        if not session.ended.is_set():
            bridge.kill()
            ending = bridge.ending
            if ending is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(ending), 10)
    return session.outcome


def _listener(session: Session) -> Callable[[Event], None]:
    def on_event(event: Event) -> None:
        if isinstance(event, MessagesOut):
            for payload in event.payloads:
                session.reply(payload if event.binary else payload.decode())
        elif isinstance(event, StderrLine):
            session.stderr(event.line)
        elif isinstance(event, Disconnected):
            session.end(event.code, event.reason, event.by, event.exit)

    return on_event


# ---------------------------------------------------------------- through a real server


async def _over_websocket(
    transcript: Transcript, config: Config, options: ReplayOptions
) -> Outcome:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidHandshake

    from wsdev.server import Server

    config = config.replace(port=0, addresses=("127.0.0.1",), loglevel="fatal")
    bus = EventBus()
    session = Session()
    program_ended = asyncio.Event()
    outcome_listener = _listener(session)

    def on_event(event: Event) -> None:
        # The client's view gives the replies; the server's events, stderr and the ending.
        if isinstance(event, StderrLine):
            outcome_listener(event)
        elif isinstance(event, Disconnected):
            session.outcome.close_code = event.code
            session.outcome.close_reason = event.reason
            session.outcome.by = event.by
            session.outcome.exit = event.exit
            program_ended.set()

    bus.subscribe(on_event, messages=False)
    server = Server(config, bus)
    await server.start()
    header = transcript.header
    facts = request_facts(transcript)
    extra = [
        (name, value)
        for name, value in header.headers
        if name.lower() not in HANDSHAKE_HEADERS and not name.lower().startswith("sec-websocket-")
    ]
    url = f"ws://127.0.0.1:{server.port}{facts.raw_path}"
    try:
        async with connect(
            url,
            additional_headers=extra,
            user_agent_header=None,
            compression=None,
            max_size=None,
            open_timeout=options.timeout,
        ) as ws:

            async def receive() -> None:
                with contextlib.suppress(ConnectionClosed):
                    async for message in ws:
                        session.reply(message)
                await program_ended.wait()
                outcome = session.outcome
                session.end(outcome.close_code, outcome.close_reason, outcome.by, outcome.exit)

            reader = asyncio.ensure_future(receive())

            try:
                await _drive(transcript, session, ws.send, ws.close, options.timeout)
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
    except (OSError, InvalidHandshake, asyncio.TimeoutError) as exc:
        raise ConfigError(f"{transcript.name}: cannot connect to {url}: {exc}") from None
    finally:
        await server.close()
    return session.outcome
