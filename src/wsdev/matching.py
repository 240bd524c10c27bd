"""Whether a replay's replies are the recorded ones, and a readable account when not (H3).

Replies are compared in order, one by one; timing is ignored. A recorded reply matches exactly
unless its line says otherwise: ``"match": "regex"`` (the reply must match the whole pattern) or
``"match": "json"`` (compared as JSON values, with the ``"ignore"`` keys left out at any depth).
stderr is compared only when asked. When the program ended the recorded session itself, how it
ended (``exit 0``, ``exit 3``) must match too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wsdev.replay import Outcome, Reply
from wsdev.transcript import Step, Transcript

# Beyond this many differences a report says how many more there were.
MAX_SHOWN = 10


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One difference, with where it happened: ``what`` ("message 3", "stderr line 1", …)."""

    what: str
    after: str  # the sent message that preceded it, as shown to a person
    expected: str
    got: str
    note: str = ""


def reply_matches(step: Step, got: str | bytes) -> bool:
    """Whether ``got`` matches the recorded ``received`` step under its rule."""
    expected = step.data
    match = step.rule.get("match", "exact")
    if isinstance(expected, bytes) or isinstance(got, bytes):
        return expected == got
    if match == "regex":
        assert isinstance(expected, str)
        try:
            return re.fullmatch(expected, got, re.DOTALL) is not None
        except re.error:
            return False
    if match == "json":
        assert isinstance(expected, str)
        ignore = frozenset(step.rule.get("ignore", ()))
        try:
            return bool(_without(json.loads(expected), ignore) == _without(json.loads(got), ignore))
        except json.JSONDecodeError:
            return False
    return expected == got


def _without(value: Any, ignore: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return {k: _without(v, ignore) for k, v in value.items() if k not in ignore}
    if isinstance(value, list):
        return [_without(v, ignore) for v in value]
    return value


def compare(transcript: Transcript, outcome: Outcome, *, stderr: bool = False) -> list[Mismatch]:
    """Every difference between the recorded session and the replay's outcome."""
    mismatches: list[Mismatch] = []
    sent = [s for s in transcript.steps if s.kind == "sent"]
    expected = _with_preceding(transcript, "received")
    got = outcome.received
    for index in range(max(len(expected), len(got))):
        step, before = expected[index] if index < len(expected) else (None, None)
        reply = got[index] if index < len(got) else None
        if step is not None and reply is not None and reply_matches(step, reply.data):
            continue
        after = before if step is not None else _sent_before(sent, reply)
        mismatches.append(
            Mismatch(
                f"message {index + 1}",
                _show_after(after),
                _show_expected(step),
                _show(reply.data) if reply is not None else "(nothing)",
                _note(step, reply, outcome),
            )
        )
    if stderr:
        recorded = _with_preceding(transcript, "stderr")
        lines = outcome.stderr
        for index in range(max(len(recorded), len(lines))):
            step, before = recorded[index] if index < len(recorded) else (None, None)
            line = lines[index] if index < len(lines) else None
            if step is not None and line is not None and step.data == line.data:
                continue
            after = before if step is not None else _sent_before(sent, line)
            mismatches.append(
                Mismatch(
                    f"stderr line {index + 1}",
                    _show_after(after),
                    _show(step.data) if step is not None and step.data is not None else "(nothing)",
                    _show(line.data) if line is not None else "(nothing)",
                )
            )
    mismatches += _ending(transcript, outcome)
    return mismatches


def _ending(transcript: Transcript, outcome: Outcome) -> list[Mismatch]:
    closes = transcript.of_kind("close")
    if not closes:
        return []
    close = closes[-1]
    recorded_by = close.extra.get("by")
    last_sent = next((s for s in reversed(transcript.steps) if s.kind == "sent"), None)
    after = _show_after(last_sent)
    if recorded_by == "program":
        want = f"{close.data!s} {close.extra.get('reason', '')}".strip()
        have = f"{outcome.close_code} {outcome.close_reason}".strip()
        if outcome.by != "program" or want != have:
            return [Mismatch("the end", after, f"program closed: {want}", _show_end(outcome))]
    elif outcome.by == "program" and outcome.exit is not None and not outcome.exit.ok:
        # The client ended the recorded session; this program failed on its own. (One that
        # exits cleanly after its last reply merely won the race with the client's Close.)
        return [Mismatch("the end", after, "the client closes the session", _show_end(outcome))]
    return []


def _show_end(outcome: Outcome) -> str:
    if not outcome.by:
        return f"(the session did not end: waited for {outcome.timed_out or 'its end'})"
    who = {"program": "program closed", "client": "client closed", "server": "server closed"}
    return f"{who.get(outcome.by, outcome.by)}: {outcome.close_code} {outcome.close_reason}"


def _with_preceding(transcript: Transcript, kind: str) -> list[tuple[Step, Step | None]]:
    """Each step of ``kind`` with the ``sent`` step before it (None before the first)."""
    out: list[tuple[Step, Step | None]] = []
    last: Step | None = None
    for step in transcript.steps:
        if step.kind == "sent":
            last = step
        elif step.kind == kind:
            out.append((step, last))
    return out


def _sent_before(sent: list[Step], reply: Reply | None) -> Step | None:
    if reply is None or reply.after == 0 or reply.after > len(sent):
        return None
    return sent[reply.after - 1]


def _show_after(step: Step | None) -> str:
    if step is None or step.data is None:
        return "before any message was sent"
    return f"after sent {_show(step.data)}"


def _show_expected(step: Step | None) -> str:
    if step is None or step.data is None:
        return "(nothing)"
    match = step.rule.get("match", "exact")
    if match == "regex":
        return f"/{step.data!s}/ (regex)"
    if match == "json":
        ignore = step.rule.get("ignore", [])
        return _show(step.data) + (
            f" (JSON, ignoring {', '.join(ignore)})" if ignore else " (JSON)"
        )
    return _show(step.data)


def _show(data: str | bytes | int) -> str:
    if isinstance(data, bytes):
        return f"<{len(data)} bytes> {data[:48].hex(' ')}" + (" …" if len(data) > 48 else "")
    text = json.dumps(data, ensure_ascii=False) if isinstance(data, str) else str(data)
    return text if len(text) <= 200 else text[:200] + " …"


def _note(step: Step | None, reply: Reply | None, outcome: Outcome) -> str:
    if reply is None and outcome.timed_out:
        return f"no reply within the timeout (waited for {outcome.timed_out})"
    if step is None or reply is None or step.rule.get("match") != "json":
        return ""
    ignore = frozenset(step.rule.get("ignore", ()))
    assert isinstance(step.data, str) and isinstance(reply.data, str)
    try:
        want, have = json.loads(step.data), json.loads(reply.data)
    except json.JSONDecodeError:
        return "the reply is not JSON"
    where = _first_difference(_without(want, ignore), _without(have, ignore), "")
    return f"differs at {where or 'the top level'}"


def _first_difference(want: Any, have: Any, where: str) -> str:
    if isinstance(want, Mapping) and isinstance(have, Mapping):
        for key in sorted(set(want) | set(have)):
            if want.get(key, ...) != have.get(key, ...):
                return _first_difference(want.get(key), have.get(key), f"{where}.{key}")
    if isinstance(want, list) and isinstance(have, list) and len(want) == len(have):
        for index, (a, b) in enumerate(zip(want, have, strict=True)):
            if a != b:
                return _first_difference(a, b, f"{where}[{index}]")
    return where.lstrip(".")


def report(mismatches: list[Mismatch]) -> str:
    """The mismatches as a person reads them: expected, then got, each under where it was."""
    lines: list[str] = []
    for mismatch in mismatches[:MAX_SHOWN]:
        lines.append(f"{mismatch.what}, {mismatch.after}:")
        lines.append(f"  expected: {mismatch.expected}")
        lines.append(f"  got:      {mismatch.got}")
        if mismatch.note:
            lines.append(f"  ({mismatch.note})")
    if len(mismatches) > MAX_SHOWN:
        lines.append(f"… and {len(mismatches) - MAX_SHOWN} more differences")
    return "\n".join(lines)


def updated(transcript: Transcript, outcome: Outcome) -> Transcript:
    """The transcript with the replay's replies (and stderr, ending) in place of the recorded.

    A recorded reply that still matches keeps its line, and so its rule (regex, JSON) and time.
    """
    expected = transcript.of_kind("received")
    replies: list[tuple[int, float, Step]] = []
    for index, reply in enumerate(outcome.received):
        old = expected[index] if index < len(expected) else None
        if old is not None and reply_matches(old, reply.data):
            replies.append((reply.after, reply.t, old))
        else:
            replies.append((reply.after, reply.t, Step("received", reply.t, reply.data)))
    errors = [(r.after, r.t, Step("stderr", r.t, r.data)) for r in outcome.stderr]
    sent = [s for s in transcript.steps if s.kind == "sent"]
    steps: list[Step] = []
    produced = sorted(replies + errors, key=lambda item: (item[0], item[1]))
    position = 0
    for count in range(len(sent) + 1):
        if count > 0:
            steps.append(sent[count - 1])
        while position < len(produced) and produced[position][0] <= count:
            steps.append(produced[position][2])
            position += 1
    end = max((s.t for s in steps), default=0.0)
    if outcome.by:
        reason = {"reason": outcome.close_reason, "by": outcome.by}
        steps.append(Step("close", end, outcome.close_code, extra=reason))
    if outcome.exit is not None:
        status = outcome.exit
        extra = {"signal": status.describe().removeprefix("signal ")} if status.signal else {}
        steps.append(Step("exit", end, status.code, extra=extra))
    return Transcript(transcript.header, tuple(steps), transcript.source)
