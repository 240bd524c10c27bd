"""Summarise an Autobahn|Testsuite fuzzingclient report (its index.json) by case group.

    python3 scripts/autobahn_summary.py REPORT_DIR/index.json --agent wsdev \\
        [--allow 1.2] [--json summary.json]

Prints, per group (1.1, 1.2, 2, 3, …, 6.21, 7.1, …, 10.1), how many cases were OK, NON-STRICT,
INFORMATIONAL and FAILED, and the ids of the failed ones. A case FAILED when its behaviour or its
closing behaviour did (FAILED, WRONG CODE, UNCLEAN); it is NON-STRICT when either is. Exits 1
when a case failed outside the ``--allow``ed groups, else 0. ``--json`` writes
``{"cases": {id: verdict}, "failed": [...], "unexpected": [...]}`` for a caller to read.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

VERDICTS = ("OK", "NON-STRICT", "INFORMATIONAL", "FAILED")
FAILING = {"FAILED", "WRONG CODE", "UNCLEAN"}


def case_key(case_id: str) -> tuple[int, ...]:
    return tuple(int(part) for part in case_id.split("."))


def group_of(case_id: str) -> str:
    """The case's group: 1.2.3 is in 1.2, 5.12 in 5 (groups of two-part ids have no subgroups)."""
    parts = case_id.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 else parts[0]


def verdict(result: Mapping[str, Any]) -> str:
    """One word for a case: its behaviour, made FAILED or NON-STRICT by its closing behaviour."""
    behaviors = {str(result.get("behavior")), str(result.get("behaviorClose"))}
    if behaviors & FAILING:
        return "FAILED"
    if "NON-STRICT" in behaviors:
        return "NON-STRICT"
    if "UNIMPLEMENTED" in behaviors:
        return "UNIMPLEMENTED"
    return str(result.get("behavior"))


def load(index: Path, agent: str) -> dict[str, str]:
    """Each case id's verdict for ``agent`` in the report ``index`` (wstest's index.json)."""
    report: dict[str, dict[str, Mapping[str, Any]]] = json.loads(index.read_text())
    if agent not in report:
        raise SystemExit(f"{index}: no results for agent {agent!r} (has {sorted(report)})")
    results = report[agent]
    return {case: verdict(results[case]) for case in sorted(results, key=case_key)}


def in_groups(case_id: str, groups: Iterable[str]) -> bool:
    return any(case_id == group or case_id.startswith(group + ".") for group in groups)


def table(agent: str, cases: Mapping[str, str]) -> list[str]:
    """The summary's lines: a total, then one line per group."""
    groups: dict[str, dict[str, list[str]]] = {}
    for case, word in cases.items():
        groups.setdefault(group_of(case), {}).setdefault(word, []).append(case)
    totals = {word: sum(word == v for v in cases.values()) for word in VERDICTS}
    others = sorted({v for v in cases.values()} - set(VERDICTS))
    totals |= {word: sum(word == v for v in cases.values()) for word in others}
    lines = [
        f"{agent}: {len(cases)} cases — " + ", ".join(f"{w} {n}" for w, n in totals.items()),
        f"  {'group':<7}{'OK':>4}{'NON-STRICT':>12}{'INFORMATIONAL':>15}{'FAILED':>8}  failed",
    ]
    for group in sorted(groups, key=case_key):
        words = groups[group]
        counts = [len(words.get(word, [])) for word in VERDICTS]
        failed = " ".join(words.get("FAILED", []))
        extra = "".join(f" {w}: {' '.join(words[w])}" for w in others if w in words)
        lines.append(
            f"  {group:<7}{counts[0]:>4}{counts[1]:>12}{counts[2]:>15}{counts[3]:>8}  "
            f"{failed}{extra}".rstrip()
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("index", type=Path, help="the report's index.json")
    parser.add_argument("--agent", required=True, help="the agent name in the report")
    parser.add_argument(
        "--allow", action="append", default=[], help="a group whose failures are expected"
    )
    parser.add_argument("--json", type=Path, help="also write the verdicts here")
    args = parser.parse_args(argv)
    cases = load(args.index, args.agent)
    print("\n".join(table(args.agent, cases)))
    failed = [case for case, word in cases.items() if word == "FAILED"]
    unexpected = [case for case in failed if not in_groups(case, args.allow)]
    if args.json is not None:
        args.json.write_text(
            json.dumps({"cases": cases, "failed": failed, "unexpected": unexpected}, indent=1)
        )
    if unexpected:
        allowed = f" outside {', '.join(args.allow)}" if args.allow else ""
        print(f"{args.agent}: {len(unexpected)} case(s) FAILED{allowed}: {' '.join(unexpected)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
