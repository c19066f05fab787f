"""The self-check's table for a terminal: each test's status, points, and the hint when it failed."""

from __future__ import annotations

import shutil
import textwrap

from grader.reports.markdown import strip_controls
from grader.scoring.results import GradeResult

MARKS = {"passed": "PASS", "failed": "FAIL"}
COLORS = {"passed": "\033[32m", "failed": "\033[31m"}
RESET = "\033[0m"


def format_table(result: GradeResult, color: bool = False, width: int | None = None) -> str:
    """A plain-text table; failed tests carry their message (which ends with the hint), wrapped."""
    width = width or min(shutil.get_terminal_size((100, 24)).columns, 120)
    id_width = max([len(t.number) for t in result.tests] + [4])
    lines = [f"{'':4}  {'test':<{id_width}}  {'points':>9}", "-" * min(width, id_width + 17)]
    for t in result.tests:
        mark = MARKS.get(t.status, t.status.upper())
        if color:
            mark = f"{COLORS.get(t.status, '')}{mark}{RESET}"
        lines.append(f"{mark:4}  {t.number:<{id_width}}  {t.score:>4g} / {t.max_score:<3g}")
        if t.status != "passed" and t.output:
            lines += textwrap.wrap(strip_controls(t.output), width=max(40, width - 6), initial_indent="      ",
                                   subsequent_indent="      ")
    passed = sum(t.status == "passed" for t in result.tests)
    lines += ["-" * min(width, id_width + 17),
              f"{passed} of {len(result.tests)} tests passed, {result.score:g} / {result.max_score:g} points"]
    return "\n".join(lines)
