"""Start websocketd or wsdev on 127.0.0.1 serving one program, watch its memory, stop it cleanly.

Both servers get the same program, the same address and their default log level, and their log
is read and thrown away so neither ever blocks on a full pipe. wsdev can also be started on a
pseudo-terminal with its dashboard on, whose screen output is read (and its start kept) the same
way.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import resource
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WEBSOCKETD = shutil.which("websocketd") or "/usr/bin/websocketd"
SERVERS = ("websocketd", "wsdev")
_READY_MARK = b"ws://127.0.0.1:"
_FD_ERROR = b"too many open files"
_LOG_TAIL = 8192
#: How much of a terminal's output is kept from its start: enough for the first frames.
_SCREEN_HEAD = 256 * 1024
#: The dashboard's terminal: rows, columns (a common window size).
TTY_ROWS, TTY_COLUMNS = 40, 120
#: Alternate screen on: what the dashboard writes first when it takes over a terminal.
ALT_SCREEN = b"\x1b[?1049h"
DASHBOARD_KINDS = ("dashboard off", "dashboard on")


class ServerError(RuntimeError):
    """A server did not start, or died, during a benchmark."""


def raise_open_file_limit(wanted: int = 20000) -> int:
    """Raise this process's open-file limit (inherited by both servers); returns the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    """A port of 127.0.0.1 that was free a moment ago (websocketd cannot report a port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_kib(pid: int) -> int:
    """Resident memory of one process (not its children), from /proc/PID/status."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise ServerError(f"process {pid} has no VmRSS (it has exited)")


#: The kernel's counters of connections its listen queues turned away (TcpExt, /proc/net/netstat).
LISTEN_COUNTERS = ("ListenOverflows", "ListenDrops")


def listen_counters() -> dict[str, int]:
    """``LISTEN_COUNTERS`` now: totals for this network namespace (every listener in it), so
    the increase over a span of time counts whatever overflowed meanwhile, not one server alone.
    """
    with open("/proc/net/netstat") as netstat:
        lines = [line.split() for line in netstat if line.startswith("TcpExt:")]
    if len(lines) != 2:
        raise ServerError("/proc/net/netstat has no TcpExt header and values")
    counters = dict(zip(lines[0][1:], lines[1][1:], strict=True))
    return {name: int(counters[name]) for name in LISTEN_COUNTERS}


def somaxconn() -> int | None:
    """The kernel's cap on a listen backlog (``net.core.somaxconn``), if it can be read."""
    try:
        return int(Path("/proc/sys/net/core/somaxconn").read_text())
    except (OSError, ValueError):
        return None


def listen_backlog(port: int) -> int | None:
    """The backlog of the socket listening on 127.0.0.1:``port`` as the kernel holds it (what
    the server asked for, capped at somaxconn): ``ss``'s Send-Q; None without ``ss``."""
    ss = shutil.which("ss")
    if ss is None:
        return None
    try:
        out = subprocess.run(
            [ss, "-Hltn", f"sport = :{port}"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in out.splitlines():
        fields = line.split()  # State Recv-Q Send-Q Local-Address:Port Peer-Address:Port
        if len(fields) >= 4 and fields[3] == f"127.0.0.1:{port}":
            return int(fields[2])
    return None


def _stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (which may hold spaces or ')')."""
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()


SPAWN_HELPER = b"wsdev.spawnhelper"


def _child_pids(pid: int) -> list[int]:
    """Children of ``pid`` now (every thread's list in /proc/PID/task)."""
    pids: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/children") as f:
                pids.extend(int(child) for child in f.read().split())
    return pids


def _children(pid: int) -> list[tuple[int, str]]:
    """Direct children of ``pid`` as (pid, start time), found by scanning /proc (no psutil).

    The start time tells a child from a later process that reuses its pid.
    """
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError):
                fields = _stat(int(entry))
                if int(fields[1]) == pid:
                    found.append((int(entry), fields[19]))
    return found


def _kill_if_same(pid: int, started: str) -> None:
    """SIGKILL ``pid`` only if it is still the process that started at ``started``."""
    with contextlib.suppress(OSError, IndexError):
        if _stat(pid)[19] == started:
            os.kill(pid, signal.SIGKILL)


def server_argv(
    kind: str,
    port: int,
    program: Sequence[str],
    binary: bool,
    *,
    dashboard: bool = False,
    extra: Sequence[str] = (),
) -> list[str]:
    """The command line of ``kind`` serving ``program`` on 127.0.0.1:``port``.

    wsdev gets ``--no-dashboard`` unless ``dashboard`` (its dashboard is on only on a terminal).
    """
    mode = ["--binary"] if binary else []
    if kind == "websocketd":
        return [WEBSOCKETD, "--address=127.0.0.1", f"--port={port}", *mode, *program]
    if kind == "wsdev":
        return [
            sys.executable,
            "-m",
            "wsdev",
            *([] if dashboard else ["--no-dashboard"]),
            "--no-reload",
            "--address=127.0.0.1",
            f"--port={port}",
            *mode,
            *extra,
            *program,
        ]
    raise ValueError(f"unknown server {kind!r}")


def server_env() -> dict[str, str]:
    """The environment both servers run in: ours, plus src/ on the path for wsdev."""
    env = dict(os.environ)
    src = str(ROOT / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


@dataclass
class Server:
    """One running server process and what it has logged."""

    kind: str
    port: int
    proc: subprocess.Popen[bytes]
    wrapped: bool = False  # proc is a wrapper (a profiler) whose one child is the server
    tty: bool = False  # its stdout and stderr are a pseudo-terminal (wsdev: the dashboard is on)
    fd_errors: int = 0  # log lines saying the server ran out of file descriptors
    written: int = 0  # bytes of output (log, or screen) read from the server so far
    #: The start of what the server wrote to its terminal (empty unless ``tty``).
    screen: bytearray = field(default_factory=bytearray)
    _tail: bytearray = field(default_factory=bytearray)
    _ready: threading.Event = field(default_factory=threading.Event)
    _stopped: threading.Event = field(default_factory=threading.Event)
    _seen: set[tuple[int, str]] = field(default_factory=set)

    @property
    def pid(self) -> int:
        """The server's own pid (under a wrapper: the wrapper's child)."""
        if not self.wrapped:
            return self.proc.pid
        children = _children(self.proc.pid)
        if len(children) != 1:
            raise ServerError(f"expected one server under the wrapper, found {children}")
        return children[0][0]

    def rss_kib(self) -> int:
        """The server's resident memory, its spawn helper's included (wsdev's is a process
        of its own that starts the programs)."""
        if self.proc.poll() is not None:
            raise ServerError(f"{self.kind} exited with {self.proc.returncode}\n{self.log_tail()}")
        return rss_kib(self.pid) + sum(rss_kib(pid) for pid in self._helpers())

    def child_count(self) -> int:
        """How many programs the server runs now: its children, but for its spawn helper,
        whose children count instead."""
        helpers = self._helpers()
        count = len(_child_pids(self.pid)) - len(helpers)
        return count + sum(len(_child_pids(pid)) for pid in helpers)

    def _helpers(self) -> list[int]:
        """wsdev's spawn helper, if it runs (a child whose command line names it)."""
        found = []
        for pid in _child_pids(self.pid):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/cmdline", "rb") as f:
                if SPAWN_HELPER in f.read():
                    found.append(pid)
        return found

    def open_files(self) -> int:
        """How many file descriptors the server process holds, from /proc/PID/fd."""
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def log_tail(self) -> str:
        return bytes(self._tail[-2000:]).decode("utf-8", "replace")

    def remember_children(self) -> None:
        """Note the server's current children, so none can outlive the benchmark."""
        self._seen.update(_children(self.pid))
        for helper in self._helpers():
            self._seen.update(_children(helper))

    def dashboard_shown(self) -> bool:
        """Whether the terminal shows wsdev's dashboard: the alternate screen, and its panels."""
        return (
            ALT_SCREEN in self.screen and b"wsdev" in self.screen and b"connections" in self.screen
        )

    def _read(self, fd: int) -> bytes:
        """The next output on ``fd``; b"" at its end, or once the server has been stopped."""
        # A terminal stays open while anything the server started holds it, so the wait also
        # ends when the server is stopped.
        while not self._stopped.is_set():
            if select.select([fd], [], [], 0.5)[0]:
                try:
                    return os.read(fd, 1 << 16)
                except OSError:  # EIO: a terminal whose last writer has closed it
                    return b""
        return b""

    def _drain(self, fd: int) -> None:
        while chunk := self._read(fd):
            self.written += len(chunk)
            if self.tty and len(self.screen) < _SCREEN_HEAD:
                self.screen += chunk[: _SCREEN_HEAD - len(self.screen)]
            self._tail += chunk
            self.fd_errors += chunk.count(_FD_ERROR)
            if not self._ready.is_set() and _READY_MARK in self._tail:
                self._ready.set()
            if len(self._tail) > 2 * _LOG_TAIL:
                del self._tail[:-_LOG_TAIL]
        self._ready.set()  # wakes a waiter when the server exits before it is ready

    def _wait_ready(self, within: float) -> None:
        # On a terminal the dashboard replaces the log line with the URL: only the port tells.
        if not self.tty and (not self._ready.wait(within) or self.proc.poll() is not None):
            raise ServerError(f"{self.kind} did not start:\n{self.log_tail()}")
        # The URL line can come just before the socket accepts; polling is the only signal.
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(
                    f"{self.kind} exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.02)
        raise ServerError(f"{self.kind} never accepted on port {self.port}:\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers; then end any child the server left behind."""
        with contextlib.suppress(OSError, ServerError):
            self.remember_children()
        if self.wrapped:
            # The wrapper finishes its own work (writes the profile) once the server exits.
            with contextlib.suppress(OSError, ServerError):
                self._seen.update(_children(self.proc.pid))
                os.kill(self.pid, signal.SIGTERM)
        elif self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for pid, started in self._seen:
            _kill_if_same(pid, started)  # a straggler, or (usually) long gone
        self._stopped.set()


@contextlib.contextmanager
def running(
    kind: str,
    program: Sequence[str],
    *,
    binary: bool = False,
    within: float = 30,
    wrap: Sequence[str] = (),
    tty: bool = False,
    extra: Sequence[str] = (),
) -> Iterator[Server]:
    """Run ``kind`` serving ``program`` on a free port of 127.0.0.1 until the block ends.

    ``wrap`` is a command the server runs under (a profiler: ``py-spy record ... --``). With
    ``tty``, the server's stdout and stderr are a pseudo-terminal of ``TTY_COLUMNS`` by
    ``TTY_ROWS`` (so wsdev, told nothing else, shows its dashboard), read as fast as it writes.
    """
    port = free_port()
    env = server_env()
    if tty:
        reader, writer = pty.openpty()
        fcntl.ioctl(writer, termios.TIOCSWINSZ, struct.pack("HHHH", TTY_ROWS, TTY_COLUMNS, 0, 0))
        # A terminal as a user would have it; the window size comes from the terminal itself.
        env["TERM"] = "xterm-256color"
        env.pop("COLUMNS", None)
        env.pop("LINES", None)
        output: int = writer
    else:
        output = subprocess.PIPE
    try:
        proc = subprocess.Popen(
            [*wrap, *server_argv(kind, port, program, binary, dashboard=tty, extra=extra)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl+C at the bench's terminal goes to the bench only
        )
    except OSError:
        if tty:
            os.close(reader)
        raise
    finally:
        if tty:
            os.close(writer)  # the server holds its own copy
    if not tty:
        assert proc.stdout is not None
        reader = proc.stdout.fileno()
    server = Server(kind, port, proc, wrapped=bool(wrap), tty=tty)
    drainer = threading.Thread(
        target=server._drain, args=(reader,), name=f"{kind}-log", daemon=True
    )
    drainer.start()
    try:
        server._wait_ready(within)
        yield server
    finally:
        server.stop()
        drainer.join(5)
        if tty:
            os.close(reader)


@contextlib.contextmanager
def side_by_side(
    program: Sequence[str], *, binary: bool = False
) -> Iterator[tuple[dict[str, Server], dict[str, str]]]:
    """websocketd and wsdev serving the same program: (those that started, why others did not)."""
    started: dict[str, Server] = {}
    failed: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        for kind in SERVERS:
            try:
                started[kind] = stack.enter_context(running(kind, program, binary=binary))
            except ServerError as exc:
                failed[kind] = str(exc)
        yield started, failed


@contextlib.contextmanager
def dashboard_pair(
    program: Sequence[str], *, binary: bool = False
) -> Iterator[tuple[dict[str, Server], dict[str, str]]]:
    """wsdev twice on the same program, keyed by ``DASHBOARD_KINDS``: with ``--no-dashboard`` on
    pipes, and on a terminal with its dashboard on; (those that started, why others did not)."""
    started: dict[str, Server] = {}
    failed: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        for label, on in zip(DASHBOARD_KINDS, (False, True), strict=True):
            try:
                server = stack.enter_context(running("wsdev", program, binary=binary, tty=on))
            except ServerError as exc:
                failed[label] = str(exc)
                continue
            server.kind = f"wsdev ({label})"
            started[label] = server
        yield started, failed


RECORD_KINDS = ("record off", "record on")


@contextlib.contextmanager
def record_pair(
    program: Sequence[str],
) -> Iterator[tuple[dict[str, Server], dict[str, str]]]:
    """wsdev twice on the same program, keyed by ``RECORD_KINDS``: as it is, and with
    ``--record`` into a temporary folder (removed afterwards)."""
    started: dict[str, Server] = {}
    failed: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="wsbench-record-"))
        for label, extra in zip(RECORD_KINDS, ((), ("--record", folder)), strict=True):
            try:
                server = stack.enter_context(running("wsdev", program, extra=extra))
            except ServerError as exc:
                failed[label] = str(exc)
                continue
            server.kind = f"wsdev ({label})"
            started[label] = server
        yield started, failed


def version(kind: str) -> str:
    """The server's own version line (for the report header)."""
    argv = [WEBSOCKETD] if kind == "websocketd" else [sys.executable, "-m", "wsdev"]
    try:
        out = subprocess.run(
            [*argv, "--version"], env=server_env(), capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc})"
    lines = (out.stdout + out.stderr).strip().splitlines()
    return lines[0] if lines and out.returncode == 0 else f"unavailable (exit {out.returncode})"
