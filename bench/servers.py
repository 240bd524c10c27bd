"""Start websocketd or wsdev on 127.0.0.1 serving one program, watch its memory, stop it cleanly.

Both servers get the same program, the same address and their default log level, and their log
is read and thrown away so neither ever blocks on a full pipe.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
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


def _stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (which may hold spaces or ')')."""
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()


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


def server_argv(kind: str, port: int, program: Sequence[str], binary: bool) -> list[str]:
    """The command line of ``kind`` serving ``program`` on 127.0.0.1:``port``."""
    mode = ["--binary"] if binary else []
    if kind == "websocketd":
        return [WEBSOCKETD, "--address=127.0.0.1", f"--port={port}", *mode, *program]
    if kind == "wsdev":
        return [
            sys.executable,
            "-m",
            "wsdev",
            "--no-dashboard",
            "--no-reload",
            "--address=127.0.0.1",
            f"--port={port}",
            *mode,
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
    fd_errors: int = 0  # log lines saying the server ran out of file descriptors
    _tail: bytearray = field(default_factory=bytearray)
    _ready: threading.Event = field(default_factory=threading.Event)
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
        if self.proc.poll() is not None:
            raise ServerError(f"{self.kind} exited with {self.proc.returncode}\n{self.log_tail()}")
        return rss_kib(self.pid)

    def child_count(self) -> int:
        """How many children the server has now (every thread's list in /proc/PID/task)."""
        count = 0
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{self.pid}/task"):
                with (
                    contextlib.suppress(OSError),
                    open(f"/proc/{self.pid}/task/{task}/children") as f,
                ):
                    count += len(f.read().split())
        return count

    def open_files(self) -> int:
        """How many file descriptors the server process holds, from /proc/PID/fd."""
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def log_tail(self) -> str:
        return bytes(self._tail[-2000:]).decode("utf-8", "replace")

    def remember_children(self) -> None:
        """Note the server's current children, so none can outlive the benchmark."""
        self._seen.update(_children(self.pid))

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while chunk := os.read(fd, 1 << 16):
            self._tail += chunk
            self.fd_errors += chunk.count(_FD_ERROR)
            if not self._ready.is_set() and _READY_MARK in self._tail:
                self._ready.set()
            if len(self._tail) > 2 * _LOG_TAIL:
                del self._tail[:-_LOG_TAIL]
        self._ready.set()  # wakes a waiter when the server exits before it is ready

    def _wait_ready(self, within: float) -> None:
        if not self._ready.wait(within) or self.proc.poll() is not None:
            raise ServerError(f"{self.kind} did not start:\n{self.log_tail()}")
        # The URL line can come just before the socket accepts; polling is the only signal.
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
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


@contextlib.contextmanager
def running(
    kind: str,
    program: Sequence[str],
    *,
    binary: bool = False,
    within: float = 30,
    wrap: Sequence[str] = (),
) -> Iterator[Server]:
    """Run ``kind`` serving ``program`` on a free port of 127.0.0.1 until the block ends.

    ``wrap`` is a command the server runs under (a profiler: ``py-spy record ... --``).
    """
    port = free_port()
    proc = subprocess.Popen(
        [*wrap, *server_argv(kind, port, program, binary)],
        cwd=ROOT,
        env=server_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # a Ctrl+C at the bench's terminal goes to the bench only
    )
    server = Server(kind, port, proc, wrapped=bool(wrap))
    drainer = threading.Thread(target=server._drain, name=f"{kind}-log", daemon=True)
    drainer.start()
    try:
        server._wait_ready(within)
        yield server
    finally:
        server.stop()
        drainer.join(5)


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
