"""Graceful drain at shutdown with ``--drain=SECONDS`` (behaviour B12).

Without it, SIGTERM and SIGINT close every session with 1001 at once (behaviour B6). With it,
wsdev first refuses new sessions and CGI runs (503; ``/_wsdev/health`` says 503 too, so a proxy
sends them elsewhere), and gives the live ones up to SECONDS to end by themselves, counting down
in the log and the dashboard's event log; whatever is left is then closed with 1001 as before.
A second SIGTERM ends the wait at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from wsdev.events import Disconnected, Draining, Event, EventBus, HttpRequest
from wsdev.sessions import SessionManager

logger = logging.getLogger(__name__)

# How often the countdown is told while sessions are left.
TICK_SECONDS = 1.0


class Drain:
    """One drain: ``run`` waits; ``cut_short`` (a second signal) ends the wait."""

    def __init__(self, sessions: SessionManager, bus: EventBus, seconds: float) -> None:
        self._sessions = sessions
        self._bus = bus
        self._seconds = seconds
        self._changed = asyncio.Event()
        self._cut_short = False

    def cut_short(self) -> None:
        self._cut_short = True
        self._changed.set()

    async def run(self) -> None:
        """Refuse new sessions, then wait until none is left, the time is up or ``cut_short``."""
        sessions = self._sessions
        sessions.draining = True
        unsubscribe = self._bus.subscribe(self._on_event, messages=False)
        deadline = time.monotonic() + self._seconds
        try:
            while not self._cut_short:
                live = sessions.children_running
                left = deadline - time.monotonic()
                if live == 0 or left <= 0:
                    break
                seconds_left = max(1, round(left))
                self._bus.publish(Draining(seconds_left, live))
                logger.info(
                    "draining: %d connection%s left; the rest close with 1001 in %d s",
                    live,
                    "" if live == 1 else "s",
                    seconds_left,
                    extra={"category": "server"},
                )
                self._changed.clear()
                # Woken early by a session's end, so the last one ending ends the drain at once.
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), min(TICK_SECONDS, left))
            live = sessions.children_running
            if live:
                logger.info(
                    "drain over: closing %d connection%s with 1001",
                    live,
                    "" if live == 1 else "s",
                    extra={"category": "server"},
                )
            else:
                logger.info("drained: no connection left", extra={"category": "server"})
        finally:
            unsubscribe()

    def _on_event(self, event: Event) -> None:
        if isinstance(event, (Disconnected, HttpRequest)):  # a session or a CGI run ended
            self._changed.set()
