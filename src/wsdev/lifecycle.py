"""The life of one connection as one explicit state, and the transitions it may take.

A connection is ``OPEN`` while messages flow both ways. It ends in one of three ways: the client
closes (or vanishes, or breaks the protocol), the server closes it (shutdown 1001, restart 1012,
a line too long 1009), or the program finishes. A program finishes in two halves, its exit and
the end of its stdout, which rarely come in the same instant: after the first the connection is
``DRAINING`` (what the program wrote still goes out, nothing more goes in), after both it is
``CLOSING``. ``CLOSING`` means the Close has been sent or answered and only the program's end and
the bookkeeping are left; ``ENDED`` means nothing of the connection is left.

``Lifecycle`` holds the state and refuses a transition the table does not allow, so a callback
that comes late (an exit seen after the client closed, a second Close) cannot reopen or re-close
a connection: it asks ``can`` first, or gets ``False`` from ``move``.
"""

from __future__ import annotations

import enum


class Phase(enum.Enum):
    OPEN = "open"
    DRAINING = "draining"
    CLOSING = "closing"
    ENDED = "ended"


class Cause(enum.Enum):
    """Who decided how the connection ends."""

    CLIENT = "client"
    SERVER = "server"
    PROGRAM = "program"


ALLOWED: dict[Phase, frozenset[Phase]] = {
    Phase.OPEN: frozenset({Phase.DRAINING, Phase.CLOSING}),
    Phase.DRAINING: frozenset({Phase.CLOSING}),
    Phase.CLOSING: frozenset({Phase.ENDED}),
    Phase.ENDED: frozenset(),
}


class Lifecycle:
    """One connection's phase, the cause of its end and its Close (code and reason)."""

    __slots__ = ("cause", "code", "phase", "reason")

    def __init__(self) -> None:
        self.phase = Phase.OPEN
        self.cause: Cause | None = None
        self.code: int | None = None
        self.reason = ""

    def can(self, phase: Phase) -> bool:
        return phase in ALLOWED[self.phase]

    def move(self, phase: Phase) -> bool:
        """Enter ``phase`` if the table allows it from here; False (and no change) otherwise."""
        if phase not in ALLOWED[self.phase]:
            return False
        self.phase = phase
        return True

    def close(self, cause: Cause, code: int, reason: str) -> bool:
        """Enter ``CLOSING`` for ``cause`` with this Close, unless the end is already decided."""
        if not self.move(Phase.CLOSING):
            return False
        self.cause, self.code, self.reason = cause, code, reason
        return True

    @property
    def open(self) -> bool:
        return self.phase is Phase.OPEN

    @property
    def closing(self) -> bool:
        """The Close is decided (sent or answered): nothing more goes to the client."""
        return self.phase is Phase.CLOSING or self.phase is Phase.ENDED

    def __repr__(self) -> str:
        return f"<Lifecycle {self.phase.name} {self.cause} {self.code}>"
