"""The results table: one row per figure, both servers side by side, their ratio and the goal.

A row may compare two other things (wsdev with its dashboard off and on): it names its columns,
and the table starts anew, with its own header, wherever the columns change.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

TIMES = "\u00d7"  # the multiplication sign, spelled out so no one mistakes it for an x
#: Column labels of a row: the left figure, the right figure, and their ratio (right / left).
SIDE_BY_SIDE = ("websocketd", "wsdev", "wsdev/websocketd")


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
    """One figure for both servers. A value is the median of its runs; None means no result.

    ``websocketd`` is the left column and ``wsdev`` the right one (whatever ``columns`` calls
    them); the ratio is right / left, and a goal judges the right one.
    """

    scenario: str
    metric: str
    websocketd: float | None
    wsdev: float | None
    fmt: str = "{:,.0f}"
    goal: Goal | None = None
    runs: int = 1
    note: str = ""
    shown: dict[str, str] = field(default_factory=dict)  # by column label: text, not a number
    columns: tuple[str, str, str] = SIDE_BY_SIDE
    show_ratio: bool = True  # False where the two figures are of different things

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
        """The cell of the column labelled ``kind``."""
        if kind in self.shown:
            return self.shown[kind]
        value = self.websocketd if kind == self.columns[0] else self.wsdev
        return "n/a" if value is None else self.fmt.format(value)


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _head(columns: tuple[str, str, str]) -> list[str]:
    left, right, ratio = columns
    return [
        f"| scenario | figure | {left} | {right} | {ratio} | goal | met | runs |",
        "| --- | --- | ---: | ---: | ---: | --- | --- | ---: |",
    ]


def markdown(rows: Sequence[Row]) -> str:
    """The table, in markdown, with the notes below it (a new table where the columns change)."""
    lines: list[str] = []
    notes = []
    columns: tuple[str, str, str] | None = None
    for row in rows:
        if row.columns != columns:
            lines += ([""] if columns is not None else []) + _head(row.columns)
            columns = row.columns
        ratio = "n/a" if row.ratio is None else f"{row.ratio:.2f}{TIMES}"
        if not row.show_ratio:
            ratio = ""
        goal = row.goal.text if row.goal else ""
        mark = ""
        if row.note:
            notes.append(row.note)
            mark = f" [{len(notes)}]"
        lines.append(
            f"| {row.scenario} | {row.metric}{mark} | {row.cell(row.columns[0])} | "
            f"{row.cell(row.columns[1])} | {ratio} | {goal} | {row.verdict()} | {row.runs} |"
        )
    text = "\n".join(lines) + "\n"
    if notes:
        text += "\n" + "\n".join(f"[{i}] {note}" for i, note in enumerate(notes, 1)) + "\n"
    return text
