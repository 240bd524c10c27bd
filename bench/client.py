"""Build the C benchmark client (wsclient.c) with the machine's compiler and run its modes.

The client prints ``key=value`` lines; this module turns them into dictionaries and turns a
client that failed into one exception that says why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

SOURCE = Path(__file__).resolve().parent / "wsclient.c"


class ClientError(RuntimeError):
    """The client could not be built, or a run did not complete."""


def _parse(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    return values


def build(into: Path) -> Path:
    """Compile wsclient.c into ``into``; returns the executable's path."""
    compiler = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        raise ClientError("no C compiler found (set CC, or install gcc)")
    exe = into / "wsclient"
    result = subprocess.run(
        [compiler, "-O2", "-Wall", "-o", str(exe), str(SOURCE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise ClientError(f"compiling {SOURCE.name} failed:\n{result.stderr}")
    return exe


@dataclass(frozen=True)
class Client:
    """The compiled client; every run targets 127.0.0.1 and ends by itself."""

    exe: Path

    def _argv(self, mode: str, port: int, args: tuple[object, ...]) -> list[str]:
        return [str(self.exe), mode, str(port), "/", *(str(a) for a in args)]

    def _env(self, limit: float, stall: float | None) -> dict[str, str]:
        env = dict(os.environ, WSCLIENT_TIMEOUT=str(max(1, int(limit))))
        if stall is not None:
            env["WSCLIENT_STALL_S"] = str(max(1, int(stall)))
        return env

    def run(
        self, mode: str, port: int, *args: object, limit: float = 120, stall: float | None = None
    ) -> dict[str, str]:
        """Run one mode to completion; its results, or ClientError with the reason."""
        try:
            result = subprocess.run(
                self._argv(mode, port, args),
                env=self._env(limit, stall),
                capture_output=True,
                text=True,
                timeout=limit + 10,
            )
        except subprocess.TimeoutExpired as exc:
            raise ClientError(f"{mode}: no result within {limit:.0f} s") from exc
        values = _parse(result.stdout)
        if "error" in values:
            raise ClientError(f"{mode}: {values['error']}")
        if result.returncode not in (0, 3):  # 3: finished, but incomplete (the caller judges)
            raise ClientError(f"{mode}: exit {result.returncode} {result.stderr.strip()}")
        return values

    def start(self, mode: str, port: int, *args: object, limit: float = 300) -> Session:
        """Start a mode that is paced from here (``hold``, ``slow``)."""
        proc = subprocess.Popen(
            self._argv(mode, port, args),
            env=self._env(limit, None),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        return Session(mode, proc)


@dataclass
class Session:
    """A running client whose output is read line by line as it reaches each stage."""

    mode: str
    proc: subprocess.Popen[str]

    def read_until(self, key: str) -> dict[str, str]:
        """Results printed up to and including the ``key=`` line (blocks until it comes)."""
        assert self.proc.stdout is not None
        values: dict[str, str] = {}
        for line in self.proc.stdout:
            values.update(_parse(line))
            if "error" in values:
                raise ClientError(f"{self.mode}: {values['error']}")
            if key in values:
                return values
        self.proc.wait()
        raise ClientError(f"{self.mode}: client ended (exit {self.proc.returncode}) before {key}")

    def next_stage(self) -> None:
        """Let a ``hold`` client go on to its next stage."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()

    def finish(self, within: float = 60) -> dict[str, str]:
        """Let the client end; whatever it printed after the last ``read_until``."""
        try:
            out, _ = self.proc.communicate("\n", timeout=within)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return _parse(out)
