"""What the bytes a terminal sends mean as keys."""

from __future__ import annotations

import pytest

from wsdev.keys import Key, parse


@pytest.mark.parametrize(
    ("data", "keys"),
    [
        (b"\x1b[A", [Key.UP]),
        (b"\x1bOB", [Key.DOWN]),  # application cursor mode
        (b"\x1b[A\x1b[A\x1b[B", [Key.UP, Key.UP, Key.DOWN]),  # a held key, in one read
        (b"\r", [Key.ENTER]),
        (b"\n", [Key.ENTER]),
        (b"\x1b", [Key.ESCAPE]),
        (b"\x1b\x1b[A", [Key.ESCAPE, Key.UP]),
        (b"\x1b[5~\x1b[6~", [Key.PAGE_UP, Key.PAGE_DOWN]),
        (b"\x1b[H\x1b[F\x1b[1~\x1b[4~", [Key.HOME, Key.END, Key.HOME, Key.END]),
        (b"kj", [Key.UP, Key.DOWN]),
        (b"x\x1b[1;5C\x1b[15~y", []),  # other keys and sequences are skipped whole
        (b"\x1b[", []),  # a sequence cut short by the read
    ],
)
def test_parse(data: bytes, keys: list[Key]) -> None:
    assert parse(data) == keys
