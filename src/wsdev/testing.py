"""Transcripts as tests in pytest: ``run_transcript`` replays one and raises with the diff (H5).

    from wsdev.testing import run_transcript

    def test_chat():
        run_transcript("tests/chat.jsonl")

It runs exactly what ``wsdev test`` runs for one transcript; inside a running event loop (an
async test), await ``replay_transcript`` instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from os import PathLike
from pathlib import Path

from wsdev import eventloop
from wsdev.matching import compare, report
from wsdev.replay import ReplayOptions, replay
from wsdev.transcript import load

__all__ = ["TranscriptMismatch", "replay_transcript", "run_transcript"]


class TranscriptMismatch(AssertionError):
    """The program's replies differ from the transcript's; the message is the readable diff."""


def run_transcript(
    path: str | PathLike[str],
    *,
    command: Sequence[str] = (),
    stderr: bool = False,
    over_websocket: bool = False,
    timeout: float = 5.0,
) -> None:
    """Replay the transcript at ``path`` against its program (or ``command``); raise
    ``TranscriptMismatch`` with the differences when the replies are not the recorded ones."""
    eventloop.run(
        replay_transcript(
            path, command=command, stderr=stderr, over_websocket=over_websocket, timeout=timeout
        )
    )


async def replay_transcript(
    path: str | PathLike[str],
    *,
    command: Sequence[str] = (),
    stderr: bool = False,
    over_websocket: bool = False,
    timeout: float = 5.0,
) -> None:
    """``run_transcript`` for code already inside an event loop."""
    asyncio.get_running_loop()  # a clear error when called outside one
    transcript = load(Path(path))
    options = ReplayOptions(tuple(command), over_websocket, timeout)
    outcome = await replay(transcript, options)
    mismatches = compare(transcript, outcome, stderr=stderr)
    if mismatches:
        raise TranscriptMismatch(f"{transcript.name}: replies differ\n{report(mismatches)}")
