"""Where a WebSocket handshake becomes a running program (behaviour A2, A5, B10, C1).

Every connection that runs a program takes this one path, whatever it came through (plain, TLS,
a Unix socket, ``--dir``, the console's envelope at ``/_wsdev/ws``): the handshake is checked
(``426`` for a version other than 13, the engine's own checks), admission decides once
(``guard``: Host and Origin 403, the same decision as for plain HTTP; ``refusal``: ``--maxforks``
429, which CGI asks too), then one place builds the environment and the connection record and
starts the child (``_start``).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial

from websockets.http11 import Response

from wsdev.answers import Answers
from wsdev.bridge import CLOSE_INTERNAL, Bridge
from wsdev.cleanpath import moved_to
from wsdev.config import Config
from wsdev.connection import Connection
from wsdev.console import CONSOLE_PREFIX
from wsdev.environ import RequestFacts, cgi_environ, inherited_environ, reverse_lookup
from wsdev.events import (
    Connected,
    ConnectionInfo,
    Disconnected,
    EventBus,
    SpawnFailed,
)
from wsdev.guard import Guard, Route
from wsdev.handshake import Handshake, accept_plain, plain_key
from wsdev.joinsecret import JOIN_REFUSAL, JoinSecret
from wsdev.limits import ClientTally
from wsdev.process import Child, abandon
from wsdev.proxies import apply_forwarding
from wsdev.scripts import inspect_script, spawn_failure_hint
from wsdev.sinks import ConsoleSink, PlainSink, Sink
from wsdev.spawner import Spawner
from wsdev.targets import (
    CONSOLE_SOCKET,
    Target,
    header_of,
    named,
    read_target,
    request_facts,
    with_remote_host,
)
from wsdev.urlmap import map_url

logger = logging.getLogger(__name__)


class IdSource:
    """UNIQUE_IDs like websocketd's (nanosecond clock), never repeated within one run."""

    def __init__(self) -> None:
        self._last = 0
        self.count = 0

    def next(self) -> tuple[str, int]:
        self._last = max(time.time_ns(), self._last + 1)
        self.count += 1
        return str(self._last), self.count


class SessionManager:
    """Every live session, the admission rules, and the start of each session's program."""

    def __init__(self, config: Config, bus: EventBus, http: Callable[[], asyncio.Protocol]) -> None:
        self.config = config
        self.bus = bus
        self.bridges: set[Bridge] = set()
        # Sessions whose program has ended but whose bookkeeping (the Disconnected event: its
        # log line, its transcript's end) is still to come; a shutdown waits for them too.
        self._finishing: set[asyncio.Task[None]] = set()
        self.cgi_running = 0
        # Admitted sessions whose program is not started yet (waiting for a reverse lookup).
        self._starting = 0
        self._lookups: set[asyncio.Task[None]] = set()
        self._handoffs: set[asyncio.Task[None]] = set()  # plain HTTP on its way to aiohttp
        self.ids = IdSource()
        self.answers = Answers(config, bus)
        # Programs start in a helper process, off the loop (behaviour B16); ``start`` runs it.
        self.spawner = Spawner()
        # Host and Origin (behaviour B10): one decision for upgrades here and plain HTTP in routes.
        self.guard = Guard(config)
        # wsdev's own environment does not change while it runs: read --passenv from it once.
        self.inherited = inherited_environ(config)
        self._http = http
        self.max_message_size = config.maxframesize
        self.handshake_timeout: float = config.handshake_timeout
        self.accepting = True
        self.clients = ClientTally(config.max_per_client)
        self.join = JoinSecret(config.join_secret) if config.join_secret else None
        self.room_link: str | None = None  # under --lan, set once the server listens (B14)
        self.generation = 0  # restarts on edit so far (D2)
        # Shutting down with --drain: new sessions and CGI runs get 503 (behaviour B12).
        self.draining = False

    # ------------------------------------------------------------ what a Connection asks

    def connection(self) -> Connection:
        """The listening sockets' protocol factory."""
        return Connection(self)

    def http_protocol(self) -> asyncio.Protocol:
        return self._http()

    def serve_http(self, sock: socket.socket, protocol: asyncio.Protocol) -> None:
        task = asyncio.ensure_future(self._serve_http(sock, protocol))
        self._handoffs.add(task)
        task.add_done_callback(self._handoffs.discard)

    async def _serve_http(self, sock: socket.socket, protocol: asyncio.Protocol) -> None:
        try:
            await asyncio.get_running_loop().connect_accepted_socket(lambda: protocol, sock)
        except OSError as exc:
            logger.debug("a connection left before it was served: %s", exc)
            sock.close()

    def wants(self, target: str) -> bool:
        if not self.accepting or not self.config.serves_websocket:
            return False
        if target.startswith(CONSOLE_PREFIX) or target == CONSOLE_PREFIX[:-1]:
            return target.partition("?")[0] == CONSOLE_SOCKET
        return True

    def open(self, connection: Connection, handshake: Handshake) -> None:
        target = read_target(handshake.target)
        # Behind a trusted proxy, the client it names (behaviour B12).
        facts = apply_forwarding(
            request_facts(connection, handshake, target), self.config.trusted_proxies
        )
        if handshake.header("Sec-WebSocket-Version") != "13":
            # RFC 6455 §4.2.2: say which version wsdev speaks (the engine would answer 400).
            body = "426 this server speaks WebSocket version 13\n"
            refused = connection.engine().reject(426, body)
            refused.headers["Sec-WebSocket-Version"] = "13"
            self.answers.respond(connection, refused, facts, "BAD HANDSHAKE")
            return
        key = plain_key(handshake)
        if key is not None:
            # The 101 itself is made once the program has started (``_started``).
            accepted: Callable[[], Response] = partial(accept_plain, key)
        else:
            unusual = connection.engine().accept(handshake.request())
            if unusual.status_code != 101:
                unusual.headers["Sec-WebSocket-Version"] = "13"
                self.answers.respond(connection, unusual, facts, "BAD HANDSHAKE")
                return
            accepted = lambda: unusual  # noqa: E731 - the engine's own 101, made already
        route = Route.OWN if target.console else Route.PROGRAM
        forbidden = self.guard.refusal(
            route, handshake.header("Host"), handshake.first.get("origin")
        )
        if forbidden is not None:
            self.answers.refuse(connection, accepted, facts, target, 403, forbidden)
            return
        join = self.join
        if join is not None:
            if not join.admits(handshake.target.partition("?")[2], handshake.header("Cookie")):
                self.answers.refuse(connection, accepted, facts, target, 403, JOIN_REFUSAL)
                return
            # The secret is wsdev's: the program sees neither its query parameter nor its cookie.
            target = read_target(join.clean_target(handshake.target))
            facts = join.clean_facts(facts)
        config = self.config
        if target.name and config.names:  # behaviour C9: the program is told who is who
            target = named(target)
            facts = replace(facts, raw_path=target.raw)
        if config.script_dir is not None:
            location = None if target.console else moved_to(target.raw)
            if location is not None:
                self.answers.moved(connection, facts, location)
                return
            match = map_url(config.script_dir, target.path)
            if match is None:
                self.answers.refuse(connection, accepted, facts, target, 404, "")
                return
            argv: Sequence[str] = (str(match.file),)
            script_name, path_info = match.script_name, match.path_info
            # Any file of the folder may be the program: Python or not (B9), runnable or not (F).
            script = inspect_script(match.file)
            python, problem = script.python, script.problem
        else:
            argv = config.command
            script_name, path_info = "/", target.path
            python, problem = config.python_child, None
        why = self.refusal()
        if why is None:
            per_client = self.clients.refusal(facts.remote_addr)
            if per_client is not None:
                why = 429, per_client
        if why is not None:
            self.answers.refuse(connection, accepted, facts, target, *why)
            return
        session = _Pending(
            connection,
            accepted,
            facts,
            target,
            argv,
            script_name,
            path_info,
            python,
            problem,
        )
        if config.reverselookup and facts.remote_addr:
            # Counted by --maxforks from admission on, so parallel upgrades cannot all get
            # through while earlier ones wait for their look-up.
            self._starting += 1
            connection.pause_reading()
            task = asyncio.ensure_future(self._start_after_lookup(session))
            self._lookups.add(task)
            task.add_done_callback(self._lookups.discard)
            return
        self._start(session)

    # ------------------------------------------------------------ admission

    def refusal(self) -> tuple[int, str] | None:
        """Why a request that would start a program is refused (status, reason), if it is."""
        config = self.config
        if self.draining:
            return 503, "server draining: try another instance"
        if config.maxforks and self.children_running >= config.maxforks:
            return 429, f"too many connections: {config.maxforks} programs already running"
        return None

    @property
    def children_running(self) -> int:
        return len(self.bridges) + self.cgi_running + self._starting

    # ------------------------------------------------------------ starting the program

    async def _start_after_lookup(self, session: _Pending) -> None:
        try:
            session.facts = with_remote_host(
                session.facts, await reverse_lookup(session.facts.remote_addr)
            )
        finally:
            self._starting -= 1
        if session.connection.gone:
            return  # the client left while its name was looked up: start nothing
        session.connection.resume_reading()
        self._start(session)

    def _start(self, session: _Pending) -> None:
        """The one place a session's environment and record are built and its program started.

        The program is started first: the client's first message waits for it, while the
        record of the session (and the 101) can be made while it starts.
        """
        config = self.config
        unique_id, seq = self.ids.next()
        env = cgi_environ(
            config,
            session.facts,
            script_name=session.script_name,
            path_info=session.path_info,
            unique_id=unique_id,
            parent=self.inherited,
        )
        if session.python and "PYTHONUNBUFFERED" not in env:
            env["PYTHONUNBUFFERED"] = "1"  # B9, for each Python script of --dir
        started = time.monotonic()
        made = partial(self._spawned, session, unique_id, seq, started, env)
        if session.problem is not None:
            made(None)
            return
        # Counted by --maxforks while it starts, as the session it will be.
        self._starting += 1
        if self.spawner.spawn(session.argv, env, made):
            # The helper starts it, beside the loop: the client has its 101 now, as from
            # websocketd, and its first message waits in the connection for the program.
            # Otherwise a burst's clients would hear nothing until the programs already
            # started had taken the CPU, and their messages would all come at the end.
            session.answer(self.answers)

    def _spawned(
        self,
        session: _Pending,
        unique_id: str,
        seq: int,
        started: float,
        env: dict[str, str],
        child: Child | OSError | None,
    ) -> None:
        """The program has started, or could not (None: it was known not to run)."""
        config = self.config
        if child is not None:
            self._starting -= 1
            if session.connection.gone and not session.answered:
                # The client left before it had an answer: it never had a session. Its
                # program is ended as a disconnect would end it.
                if isinstance(child, Child):
                    abandon(child, config.closems)
                return
            # A client that left after its 101 had a session (as under websocketd): it is
            # logged, and its program ended, as any other (``Connection.attach``).
        target, facts = session.target, session.facts
        conn = ConnectionInfo(
            id=unique_id,
            seq=seq,
            remote=facts.remote_addr,
            path=target.path,
            query=target.query,
            url=f"{config.http_scheme}://{facts.host}{facts.raw_path}",
            origin=session.engine_origin,
            command=config.command_display if config.script_dir is None else session.argv[0],
            console=target.console,
            started=started,
            generation=self.generation,
            headers=facts.headers,
            client_name=target.name,
        )
        if child is None:
            assert session.problem is not None
            self._spawn_failed(session, conn, session.problem)
            return
        self._started(session, conn, env, child)

    def _started(
        self,
        session: _Pending,
        conn: ConnectionInfo,
        env: dict[str, str],
        child: Child | OSError,
    ) -> None:
        """The program has started (or could not): the 101, and the bridge takes over."""
        if isinstance(child, OSError):
            hint = spawn_failure_hint(
                session.argv[0], child, command_mode=self.config.script_dir is None
            )
            self._spawn_failed(session, conn, hint or child.strerror or str(child))
            return
        config = self.config
        connection, target = session.connection, session.target
        session.answer(self.answers)
        bridge = Bridge(
            connection=connection,
            sink=self._sink(connection, target.console),
            config=config,
            bus=self.bus,
            conn=conn,
            child=child,
            released=self._released,
        )
        self.bridges.add(bridge)
        self.clients.add(conn.remote)
        self.bus.publish(Connected(conn))
        bridge.start(env)
        connection.attach(bridge)

    def _released(self, bridge: Bridge) -> None:
        """A session's program has ended: it no longer counts against any limit."""
        self.bridges.discard(bridge)
        self.clients.remove(bridge.conn.remote)
        ending = bridge.ending
        if ending is not None and not ending.done():
            self._finishing.add(ending)
            ending.add_done_callback(self._finishing.discard)

    def _sink(self, connection: Connection, console: bool) -> Sink:
        if console:
            return ConsoleSink(connection)
        return PlainSink(connection, passstderr=self.config.passstderr)

    def _spawn_failed(self, session: _Pending, conn: ConnectionInfo, why: str) -> None:
        """The client hears why with a Close 1011 (and the console, the reason itself)."""
        connection = session.connection
        session.answer(self.answers)
        message = f"cannot run {session.argv[0]}: {why}"
        self.bus.publish(Connected(conn))
        self.bus.publish(SpawnFailed(conn, message))
        self._sink(connection, conn.console).error(message, 500)
        connection.close(CLOSE_INTERNAL, "cannot start program")
        duration = time.monotonic() - conn.started
        self.bus.publish(Disconnected(conn, CLOSE_INTERNAL, message, None, duration))

    # ------------------------------------------------------------ shutdown

    async def close(self, code: int, reason: str) -> None:
        """Close every session with ``code`` and wait until each has ended."""
        self.accepting = False
        for task in list(self._lookups):
            task.cancel()
        for bridge in list(self.bridges):
            bridge.close(code, reason)
        endings = [b.ending for b in list(self.bridges) if b.ending is not None]
        endings += self._finishing
        if endings:
            await asyncio.gather(*endings, return_exceptions=True)

    def new_generation(self) -> int:
        """A restart on edit begins: sessions started from now on belong to the next generation."""
        self.generation += 1
        return self.generation

    def restart(self, files: Sequence[str]) -> list[asyncio.Task[None]]:
        """Close every live session with 1012; returns the endings of their programs (D2)."""
        closing = list(self.bridges)
        for bridge in closing:
            bridge.close(1012, "service restart", files)
        return [bridge.ending for bridge in closing if bridge.ending is not None]

    def kill_all(self) -> None:
        for bridge in list(self.bridges):
            bridge.kill()


@dataclass(slots=True)
class _Pending:
    """An admitted session on its way to its program's start."""

    connection: Connection
    response: Callable[[], Response]  # the 101, made when it is sent
    facts: RequestFacts
    target: Target
    argv: Sequence[str]
    script_name: str
    path_info: str
    python: bool  # gets PYTHONUNBUFFERED=1 (B9)
    problem: str | None  # why the program cannot run, said instead of starting it (F)
    answered: bool = False  # the 101 has gone out already

    def answer(self, answers: Answers) -> None:
        """Send the 101, unless it has gone out already."""
        if not self.answered:
            self.answered = True
            answers.accept(self.connection, self.response())

    @property
    def engine_origin(self) -> str:
        return header_of(self.facts, "Origin")
