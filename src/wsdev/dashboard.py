"""The live terminal dashboard (behaviour E): a ``Tally`` fed by the event bus, kept on screen.

``Dashboard`` subscribes a tally to the event bus and redraws the screen at most a few times a
second, only when an event arrived (or once a second, for the clocks), so an idle wsdev costs next
to nothing. What the screen shows is ``render`` (in ``panes.py``), a function of the tally and of
the ``View`` the keys have chosen (behaviour E3): a key redraws at once.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable

from rich.console import Console
from rich.live import Live
from rich.text import Text

from wsdev.config import Config
from wsdev.events import Event, EventBus
from wsdev.keys import Key, KeyReader
from wsdev.navigation import View

# Re-exported: callers import render from here, and tests replace it here to break a draw.
from wsdev.panes import render as render
from wsdev.tally import Kind, Tally, human_duration

logger = logging.getLogger(__name__)

#: Redraw at most this often (seconds), however busy the connections are.
MIN_INTERVAL = 0.25
#: Redraw at least this often (seconds), so uptime and ages keep ticking.
MAX_INTERVAL = 1.0


class Dashboard:
    """Keeps the terminal showing ``render`` of a live tally until ``stop``.

    Call ``start`` from inside the running event loop, before the server publishes anything.
    """

    def __init__(
        self,
        bus: EventBus,
        config: Config,
        *,
        console: Console | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        keys_fd: int | None = 0,
    ) -> None:
        """``keys_fd``: the terminal to read keys from (stdin), used only if it is a terminal."""
        self._bus = bus
        self._config = config
        self._console = console if console is not None else Console()
        self._clock = clock
        self.tally = Tally(clock=clock, wall_clock=wall_clock)
        self._dirty = asyncio.Event()
        self._live: Live | None = None
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._winch = False
        self._render_failed = False
        self.view = View()
        self._key_draw = False
        self._keys = KeyReader(keys_fd, self._on_key) if keys_fd is not None else None
        #: How many times the screen was drawn; for tests and the overhead bench.
        self.draws = 0
        #: Add this to the root logger while the dashboard is on: wsdev's own warnings and
        #: errors then appear in the event log instead of being written over the screen.
        self.log_handler: logging.Handler = _LogToTally(self)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.get_ident()

    def start(self) -> None:
        if self._live is not None:
            return
        self._unsubscribe = self._bus.subscribe(self._on_event)
        self._live = Live(
            console=self._console,
            screen=self._console.is_terminal,
            auto_refresh=False,
            # A stray write to stdout/stderr is overdrawn at the next redraw; redirecting it
            # would only scroll the screen.
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._live.start()
        # A process that ends without ``stop`` must not leave the terminal on the other screen,
        # nor in cbreak mode.
        atexit.register(self.close)
        if self._keys is not None and self._console.is_terminal:
            self.view.keys = self._keys.start()
        loop = self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        with contextlib.suppress(AttributeError, NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGWINCH, self._dirty.set)
            self._winch = True
        self._task = loop.create_task(self._run(), name="wsdev-dashboard")

    async def stop(self) -> None:
        """Stop redrawing, restore the terminal and print a one-line summary."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.close()

    def close(self) -> None:
        """Restore the terminal at once (safe to call twice, and from a signal path)."""
        task, self._task = self._task, None
        if task is not None:
            with contextlib.suppress(RuntimeError):  # at exit, the loop may be closed already
                task.cancel()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._keys is not None:
            self._keys.stop()
        if self._winch:
            self._winch = False
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_signal_handler(signal.SIGWINCH)
        atexit.unregister(self.close)
        live, self._live = self._live, None
        if live is not None:
            live.stop()
            if live.console.is_terminal:
                live.console.print(self._summary(), highlight=False)

    def _summary(self) -> Text:
        totals = self.tally.totals
        return Text.assemble(
            ("wsdev ", "bold"),
            f"served {totals.connections} connection{'s' if totals.connections != 1 else ''}"
            f" in {human_duration(self.tally.uptime(self._clock()))}: "
            f"{totals.messages_in} messages in, {totals.messages_out} out",
            f", {totals.errors} errors" if totals.errors else "",
        )

    def _on_event(self, event: Event) -> None:
        self.tally.handle(event)
        self._dirty.set()

    def _on_key(self, key: Key) -> None:
        self.view.press(key, self.tally)
        # A person is waiting for this one: draw now, outside the redraw budget for events,
        # once for all the keys of one read (a held key arrives many at a time).
        if not self._key_draw:
            self._key_draw = True
            asyncio.get_running_loop().call_soon(self._draw_for_keys)

    def _draw_for_keys(self) -> None:
        self._key_draw = False
        self._draw()

    def note_error(self, text: str) -> None:
        """Show ``text`` in the event log as an error; safe from any thread."""
        if threading.get_ident() == self._thread:
            self.tally.note(Kind.ERROR, text)
            self._dirty.set()
        elif self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.note_error, text)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self._live is not None:
            self._dirty.clear()
            self._draw()
            await asyncio.sleep(MIN_INTERVAL)
            if self._dirty.is_set():
                continue
            # A timer rather than asyncio.wait_for: on Python < 3.12 wait_for can swallow a
            # cancel that arrives as the event fires (cpython#86296), and stop() would hang.
            tick = loop.call_later(MAX_INTERVAL - MIN_INTERVAL, self._dirty.set)
            try:
                await self._dirty.wait()
            finally:
                tick.cancel()

    def _draw(self) -> None:
        if self._live is None:
            return
        width, height = self._console.size
        try:
            renderable = render(self.tally, self._config, self._clock(), width, height, self.view)
        except Exception as exc:  # a view must never take the server down
            if not self._render_failed:
                self._render_failed = True
                logger.debug("dashboard render failed", exc_info=True)
            renderable = Text(f"wsdev dashboard cannot draw: {exc!r}", style="red")
        self._live.update(renderable, refresh=True)
        self.draws += 1


class _LogToTally(logging.Handler):
    """Routes wsdev's own warnings and errors into the dashboard's event log."""

    def __init__(self, dashboard: Dashboard) -> None:
        super().__init__(logging.WARNING)
        self._dashboard = dashboard

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:
            self.handleError(record)
            return
        self._dashboard.note_error(text.splitlines()[0] if text else record.levelname.lower())
