"""Keys from the terminal for the dashboard: stdin in cbreak mode, read without blocking the loop.

``KeyReader`` puts a terminal's stdin in cbreak mode (keys arrive one by one and are not echoed
over the screen; Ctrl+C still sends SIGINT), reads it with ``loop.add_reader`` and hands each
key it knows to a callback. ``stop`` puts the terminal back as it found it; the dashboard calls it
on every way out. ``parse`` turns the bytes a terminal sends into keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from enum import Enum
from typing import Any


class Key(Enum):
    UP = "up"
    DOWN = "down"
    PAGE_UP = "page up"
    PAGE_DOWN = "page down"
    HOME = "home"
    END = "end"
    ENTER = "enter"
    ESCAPE = "escape"
    ROOM = "room"  # the room's QR code under --lan


ESC = 0x1B

# Escape sequences of xterm and its kin, in both cursor-key modes (CSI and SS3).
_SEQUENCES = {
    b"\x1b[A": Key.UP,
    b"\x1bOA": Key.UP,
    b"\x1b[B": Key.DOWN,
    b"\x1bOB": Key.DOWN,
    b"\x1b[5~": Key.PAGE_UP,
    b"\x1b[6~": Key.PAGE_DOWN,
    b"\x1b[H": Key.HOME,
    b"\x1bOH": Key.HOME,
    b"\x1b[1~": Key.HOME,
    b"\x1b[7~": Key.HOME,
    b"\x1b[F": Key.END,
    b"\x1bOF": Key.END,
    b"\x1b[4~": Key.END,
    b"\x1b[8~": Key.END,
}
_SINGLE = {
    ord("\r"): Key.ENTER,
    ord("\n"): Key.ENTER,
    ord("k"): Key.UP,  # as in less and vi
    ord("j"): Key.DOWN,
    ord("q"): Key.ROOM,
}


def parse(data: bytes) -> list[Key]:
    """The keys in ``data``, one read of a terminal; bytes of other keys are skipped.

    A lone ESC is the Escape key: a terminal writes a whole escape sequence at once, so an ESC
    that ends a read, or is followed by another ESC, started no sequence.
    """
    keys: list[Key] = []
    i = 0
    while i < len(data):
        byte = data[i]
        if byte != ESC:
            if key := _SINGLE.get(byte):
                keys.append(key)
            i += 1
            continue
        if i + 1 >= len(data) or data[i + 1] not in b"[O":
            keys.append(Key.ESCAPE)
            i += 1
            continue
        # CSI or SS3: parameters, then one final byte in 0x40-0x7e.
        end = i + 2
        while end < len(data) and not 0x40 <= data[end] <= 0x7E:
            end += 1
        if key := _SEQUENCES.get(data[i : end + 1]):
            keys.append(key)
        i = end + 1
    return keys


class KeyReader:
    """Reads keys from terminal ``fd`` on the running loop while started."""

    def __init__(self, fd: int, on_key: Callable[[Key], None]) -> None:
        self._fd = fd
        self._on_key = on_key
        self._saved: list[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def active(self) -> bool:
        return self._loop is not None

    def start(self) -> bool:
        """Start reading keys; False (and nothing changed) when ``fd`` is not a terminal."""
        if self._loop is not None:
            return True
        try:
            import termios
            import tty
        except ImportError:  # Windows: no terminal modes, no keys
            return False
        try:
            if not os.isatty(self._fd) or _in_background(self._fd):
                return False
            self._saved = termios.tcgetattr(self._fd)
            tty.setcbreak(self._fd, termios.TCSANOW)
        except (OSError, termios.error):
            self._saved = None
            return False
        loop = asyncio.get_running_loop()
        try:
            loop.add_reader(self._fd, self._readable)
        except (NotImplementedError, RuntimeError, ValueError):
            self._restore()
            return False
        self._loop = loop
        return True

    def stop(self) -> None:
        """Stop reading and give the terminal its modes back (safe twice, and at exit)."""
        loop, self._loop = self._loop, None
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(Exception):
                loop.remove_reader(self._fd)
        self._restore()

    def _restore(self) -> None:
        saved, self._saved = self._saved, None
        if saved is None:
            return
        import termios

        with contextlib.suppress(OSError, termios.error):
            termios.tcsetattr(self._fd, termios.TCSADRAIN, saved)

    def _readable(self) -> None:
        try:
            data = os.read(self._fd, 1024)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the terminal is gone: stop listening, the screen stays as it is
            self.stop()
            return
        for key in parse(data):
            self._on_key(key)


def _in_background(fd: int) -> bool:
    """Whether wsdev runs in the background of terminal ``fd`` (``wsdev … &``): changing the
    terminal's modes would then stop it (SIGTTOU), and the keys are the shell's anyway."""
    try:
        return os.tcgetpgrp(fd) != os.getpgrp()
    except OSError:  # not our controlling terminal: no job control on it
        return False
