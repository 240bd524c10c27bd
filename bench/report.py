"""The results table: one row per figure, both servers side by side, their ratio and the goal."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

TIMES = "\u00d7"  # the multiplication sign, spelled out so no one mistakes it for an x


@dataclass(frozen=True)
class Goal:
    """What the figure should be: ``text`` for the reader, ``check`` decides on (wsdev, ratio)."""

    text: str
    check: Callable[[float, float | None], bool]


def ratio_at_least(x: float) -> Goal:
    return Goal(f"≥{x:g}{TIMES}", lambda _, ratio: ratio is not None and ratio >= x)


def ratio_at_most(x: float) -> Goal:
    return Goal(f"≤{x:g}{TIMES}", lambda _, ratio: ratio is not None and ratio <= x)


def wsdev_equals(x: float, text: str) -> Goal:
    return Goal(text, lambda wsdev, _: wsdev == x)


def wsdev_below(x: float, text: str) -> Goal:
    return Goal(text, lambda wsdev, _: wsdev < x)


@dataclass
class Row:
    """One figure for both servers. A value is the median of its runs; None means no result."""

    scenario: str
    metric: str
    websocketd: float | None
    wsdev: float | None
    fmt: str = "{:,.0f}"
    goal: Goal | None = None
    runs: int = 1
    note: str = ""
    shown: dict[str, str] = field(default_factory=dict)  # text shown instead of a number

    @property
    def ratio(self) -> float | None:
        if self.websocketd is None or self.wsdev is None or self.websocketd == 0:
            return None
        return self.wsdev / self.websocketd

    def verdict(self) -> str:
        if self.goal is None:
            return ""
        if self.wsdev is None:
            return "❌ no result"
        return "✅" if self.goal.check(self.wsdev, self.ratio) else "❌"

    def cell(self, kind: str) -> str:
        if kind in self.shown:
            return self.shown[kind]
        value = self.websocketd if kind == "websocketd" else self.wsdev
        return "n/a" if value is None else self.fmt.format(value)


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def markdown(rows: Sequence[Row]) -> str:
    """The table, in markdown, with the notes below it."""
    head = (
        "| scenario | figure | websocketd | wsdev | wsdev/websocketd | goal | met | runs |\n"
        "| --- | --- | ---: | ---: | ---: | --- | --- | ---: |\n"
    )
    lines = []
    notes = []
    for row in rows:
        ratio = "n/a" if row.ratio is None else f"{row.ratio:.2f}{TIMES}"
        goal = row.goal.text if row.goal else ""
        mark = ""
        if row.note:
            notes.append(row.note)
            mark = f" [{len(notes)}]"
        lines.append(
            f"| {row.scenario} | {row.metric}{mark} | {row.cell('websocketd')} | "
            f"{row.cell('wsdev')} | {ratio} | {goal} | {row.verdict()} | {row.runs} |"
        )
    text = head + "\n".join(lines) + "\n"
    if notes:
        text += "\n" + "\n".join(f"[{i}] {note}" for i, note in enumerate(notes, 1)) + "\n"
    return text
