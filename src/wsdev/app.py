"""One wsdev run: wire the event bus, the views, the server and the reloader, then serve.

``run(config)`` is the public entry point the command line calls. Signal handlers only set a
flag: the first SIGINT/SIGTERM starts a clean shutdown (behaviour B6), a second Ctrl+C kills every
program at once and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
import webbrowser
from pathlib import Path

from wsdev import eventloop
from wsdev.cli import script_of
from wsdev.config import Config
from wsdev.drain import Drain
from wsdev.events import EventBus, ServerStarted, ServerStopping
from wsdev.logs import LogWriter, configure_logging
from wsdev.msgtrace import trace_messages
from wsdev.orphans import OrphanReaper
from wsdev.process import own_pids
from wsdev.reload import Reloader
from wsdev.scripts import startup_problems
from wsdev.server import Server
from wsdev.watchset import watch_set

logger = logging.getLogger(__name__)


def run(config: Config) -> int:
    """Serve until SIGINT or SIGTERM; returns the exit status."""
    _ensure_standard_fds()
    return eventloop.run(serve(config))


async def serve(config: Config) -> int:
    bus = EventBus()
    log_output = configure_logging(config, stream=sys.stdout)
    views: list[object] = []
    dashboard = None
    if config.dashboard:
        from wsdev.dashboard import Dashboard

        dashboard = Dashboard(bus, config)
        # Log records (warnings, errors from libraries) go to the dashboard's event log, never
        # over the screen.
        logging.getLogger().handlers.clear()
        logging.getLogger().addHandler(dashboard.log_handler)
        dashboard.start()
    if dashboard is None:
        views.append(LogWriter(bus, config, log_output))
        views.append(trace_messages(bus))  # --loglevel=trace: each message too
    recorder = None
    if config.record is not None:
        from wsdev.recorder import Recorder

        recorder = Recorder(bus, config, config.record)

    server = Server(config, bus)
    try:
        await server.start()
    except BaseException:
        if dashboard is not None:
            await dashboard.stop()
        raise
    # Everything alive now lives as long as wsdev: keep it out of every garbage collection, so
    # the collections that connections trigger stay small.
    gc.freeze()
    watched = watch_set(config, script_of(config), Path.cwd().resolve()) if config.reload else None
    stop = asyncio.Event()
    own_folders = (config.record,) if config.record is not None else ()
    reloader = (
        Reloader(watched, server, after=lambda: _say_problems(config), ignore=own_folders)
        if watched
        else None
    )
    reload_task = asyncio.ensure_future(reloader.run(stop)) if reloader else None
    if reload_task is not None:
        # The watcher sets up its inotify watches synchronously in its first step: let that
        # step run before announcing what is watched, so no save after the announcement is lost.
        await asyncio.sleep(0)
    bus.publish(
        ServerStarted(
            urls=tuple(server.urls),
            console_urls=tuple(server.console_urls) if config.console else (),
            command=config.command_display,
            binary=config.binary,
            watched=watched.describe(Path.cwd().resolve()) if watched else (),
        )
    )
    _say_problems(config)

    orphans = OrphanReaper(own_pids)
    orphans.start()
    opener = None
    if config.open_browser and server.console_urls:
        opener = asyncio.ensure_future(_open_browser(server.console_urls[0]))

    loop = asyncio.get_running_loop()
    interrupts = 0
    drain = Drain(server.sessions, bus, config.drain) if config.drain and server.sessions else None

    def on_signal(signum: int) -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts > 1 and drain is not None:
            drain.cut_short()  # a second signal: stop waiting for the drain (behaviour B12)
        if interrupts > 1 and signum == signal.SIGINT:
            # A second Ctrl+C: the user has stopped waiting.
            server.kill_all()
            orphans.kill_all()
            if dashboard is not None:
                dashboard.close()  # os._exit skips atexit: leave the alternate screen now
            log_output.close()  # and write the log's last lines (behaviour A6)
            os._exit(130)
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, on_signal, signum)
    try:
        await stop.wait()
    finally:
        bus.publish(ServerStopping("interrupted"))
        if reload_task is not None:
            reload_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reload_task
        if opener is not None:
            opener.cancel()
        if drain is not None:
            await drain.run()
        await server.close()
        # Whatever escaped its process group (setsid) and was adopted by us ends now (B6).
        orphans.kill_all()
        orphans.stop()
        if recorder is not None:
            recorder.close()  # after the server: every connection's last lines are in
        if dashboard is not None:
            await dashboard.stop()
        log_output.close()
    return 0


def _say_problems(config: Config) -> None:
    """A program that cannot run fails on every connection: say what to do once, at start-up
    and after each restart on edit (F)."""
    for problem in startup_problems(config):
        logger.warning("%s", problem, extra={"category": "server"})


async def _open_browser(url: str) -> None:
    loop = asyncio.get_running_loop()
    opened = await loop.run_in_executor(None, webbrowser.open, url)
    if opened:
        logger.info("Opened the console in your browser: %s", url, extra={"category": "server"})
    else:
        logger.error(
            "No browser found to open; visit %s yourself", url, extra={"category": "server"}
        )


def _ensure_standard_fds() -> None:
    """Keep fds 0-2 taken, so a pipe made later is never one of them (it would be lost at exec)."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            os.open(os.devnull, os.O_RDWR)
