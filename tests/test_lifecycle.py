"""A connection's state: the transitions the table allows, and the ones it refuses."""

from __future__ import annotations

import itertools

import pytest

from wsdev.lifecycle import ALLOWED, Cause, Lifecycle, Phase


def test_a_connection_starts_open() -> None:
    state = Lifecycle()
    assert state.phase is Phase.OPEN and state.open and not state.closing
    assert state.cause is None and state.code is None


@pytest.mark.parametrize("cause", list(Cause))
def test_an_open_connection_closes_once_with_the_first_cause(cause: Cause) -> None:
    state = Lifecycle()
    assert state.close(cause, 1000, "first")
    assert (state.phase, state.cause, state.code, state.reason) == (
        Phase.CLOSING,
        cause,
        1000,
        "first",
    )
    for other in Cause:
        assert not state.close(other, 1011, "second"), "a decided ending was replaced"
    assert (state.cause, state.code, state.reason) == (cause, 1000, "first")
    assert state.closing


def test_a_draining_program_can_still_be_closed_by_anyone() -> None:
    for cause in Cause:
        state = Lifecycle()
        assert state.move(Phase.DRAINING)
        assert not state.open and not state.closing
        assert not state.move(Phase.DRAINING), "draining twice"
        assert state.close(cause, 1009, "line too long")
        assert state.phase is Phase.CLOSING


def test_ended_is_final_and_reached_only_through_closing() -> None:
    state = Lifecycle()
    assert not state.move(Phase.ENDED)
    state.move(Phase.DRAINING)
    assert not state.move(Phase.ENDED)
    state.close(Cause.PROGRAM, 1000, "exit 0")
    assert state.move(Phase.ENDED)
    for phase in Phase:
        assert not state.move(phase)
    assert state.closing


@pytest.mark.parametrize(("start", "target"), list(itertools.product(Phase, Phase)))
def test_move_follows_the_table_and_changes_nothing_when_refused(
    start: Phase, target: Phase
) -> None:
    state = Lifecycle()
    state.phase = start
    allowed = target in ALLOWED[start]
    assert state.can(target) is allowed
    assert state.move(target) is allowed
    assert state.phase is (target if allowed else start)


def test_no_phase_leads_back_to_open() -> None:
    assert all(Phase.OPEN not in targets for targets in ALLOWED.values())
