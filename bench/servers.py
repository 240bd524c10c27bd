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


def _children(pid: int) -> list[int]:
    """Direct children of ``pid``, found by scanning /proc (no psutil)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError), open(f"/proc/{entry}/stat") as stat:
            # The command name may hold spaces or parentheses: the fields after it start after
            # the last ')'.
            fields = stat.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


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
    _tail: bytearray = field(default_factory=bytearray)
    _ready: threading.Event = field(default_factory=threading.Event)
    _seen: list[int] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_kib(self) -> int:
        if self.proc.poll() is not None:
            raise ServerError(f"{self.kind} exited with {self.proc.returncode}\n{self.log_tail()}")
        return rss_kib(self.pid)

    def log_tail(self) -> str:
        return bytes(self._tail[-2000:]).decode("utf-8", "replace")

    def remember_children(self) -> None:
        """Note the server's current children, so none can outlive the benchmark."""
        self._seen.extend(pid for pid in _children(self.pid) if pid not in self._seen)

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while chunk := os.read(fd, 1 << 16):
            self._tail += chunk
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
        with contextlib.suppress(OSError):
            self.remember_children()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in self._seen:
            # A pid seen as our server's child; after this long it is a straggler, or gone.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def running(
    kind: str, program: Sequence[str], *, binary: bool = False, within: float = 30
) -> Iterator[Server]:
    """Run ``kind`` serving ``program`` on a free port of 127.0.0.1 until the block ends."""
    port = free_port()
    proc = subprocess.Popen(
        server_argv(kind, port, program, binary),
        cwd=ROOT,
        env=server_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # a Ctrl+C at the bench's terminal goes to the bench only
    )
    server = Server(kind, port, proc)
    drainer = threading.Thread(target=server._drain, name=f"{kind}-log", daemon=True)
    drainer.start()
    try:
        server._wait_ready(within)
        yield server
    finally:
        server.stop()
        drainer.join(5)


@contextlib.contextmanager
def both(
    program: Sequence[str], *, binary: bool = False
) -> Iterator[dict[str, Server]]:
    """websocketd and wsdev serving the same program side by side, keyed by name."""
    with contextlib.ExitStack() as stack:
        yield {kind: stack.enter_context(running(kind, program, binary=binary)) for kind in SERVERS}


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
