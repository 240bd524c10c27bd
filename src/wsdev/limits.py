"""The limits a shared server needs beside ``--maxforks`` (behaviour B13).

- ``--max-per-client=N``: live connections per client address. The N+1th upgrade from one
  address is refused with 429 (the console hears it as a Close 1013), so one visitor cannot take
  every slot of ``--maxforks``.
- ``--max-lifetime=SECONDS``: a connection open that long is closed with 1008 and a reason.
- ``--idle-timeout=SECONDS``: a connection whose client has sent no message for that long is
  closed with 1008 and a reason. Only the client's messages count: a program that prints a
  clock does not keep a forgotten browser tab alive, and neither do the browser's automatic
  pongs.

Each reason names the flag, so whoever reads it (the console shows it, the log records it)
knows which limit ended the connection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from wsdev.config import Config

CLOSE_POLICY = 1008


class ClientTally:
    """Live connections per client address, for ``--max-per-client``."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._live: dict[str, int] = {}

    def refusal(self, address: str) -> str | None:
        """Why one more connection from ``address`` is refused, or None."""
        if self.cap and self._live.get(address, 0) >= self.cap:
            return (
                f"too many connections from {address}: {self.cap} already open "
                f"(--max-per-client={self.cap})"
            )
        return None

    def add(self, address: str) -> None:
        if self.cap:
            self._live[address] = self._live.get(address, 0) + 1

    def remove(self, address: str) -> None:
        if not self.cap:
            return
        left = self._live.get(address, 0) - 1
        if left > 0:
            self._live[address] = left
        else:
            self._live.pop(address, None)

    def live(self, address: str) -> int:
        return self._live.get(address, 0)


class SessionClock:
    """One timer per connection for ``--max-lifetime`` and ``--idle-timeout``.

    The timer is set for the nearer of the two deadlines; when it fires and the client has
    spoken since, it is set again. A message costs only the ``touch`` that records its time.
    """

    __slots__ = (
        "_expired",
        "_handle",
        "_idle",
        "_last_message",
        "_lifetime",
        "_lifetime_end",
        "_loop",
    )

    def __init__(self, config: Config, expired: Callable[[int, str], object]) -> None:
        self._loop = asyncio.get_running_loop()
        self._expired = expired
        now = time.monotonic()
        self._lifetime = config.max_lifetime
        self._lifetime_end = now + config.max_lifetime if config.max_lifetime else None
        self._idle = config.idle_timeout
        self._last_message = now
        self._handle: asyncio.TimerHandle | None = None
        self._arm()

    @staticmethod
    def wanted(config: Config) -> bool:
        return bool(config.max_lifetime or config.idle_timeout)

    def touch(self) -> None:
        self._last_message = time.monotonic()

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _deadline(self) -> tuple[float, str]:
        candidates = []
        if self._lifetime_end is not None:
            candidates.append((self._lifetime_end, "lifetime"))
        if self._idle:
            candidates.append((self._last_message + self._idle, "idle"))
        return min(candidates)

    def _arm(self) -> None:
        due, _ = self._deadline()
        delay = max(0.0, due - time.monotonic())
        self._handle = self._loop.call_later(delay, self._check)

    def _check(self) -> None:
        self._handle = None
        due, which = self._deadline()
        if due > time.monotonic():
            self._arm()  # the client spoke since the timer was set
            return
        if which == "lifetime":
            lifetime = _seconds(self._lifetime)
            self._expired(CLOSE_POLICY, f"open for {lifetime} s (--max-lifetime)")
        else:
            self._expired(CLOSE_POLICY, f"idle for {_seconds(self._idle)} s (--idle-timeout)")


def _seconds(value: float) -> str:
    return f"{value:g}"
