"""GitHub Actions workflow commands: an `::error` annotation per failed test."""

from __future__ import annotations

from grader.reports.markdown import CONTROL
from grader.scoring.results import GradeResult


def _data(text: str) -> str:
    """A workflow command's value: control characters (terminal escapes in a message) left out."""
    return CONTROL.sub("", text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotations(result: GradeResult, file: str = "") -> list[str]:
    """One `::error` line per failed test, titled with its id, attached to `file` when given."""
    where = f"file={_property(file)}," if file else ""
    return [f"::error {where}title={_property(f'{t.number} ({t.score:g}/{t.max_score:g})')}::{_data(t.output or t.name)}"
            for t in result.tests if t.status != "passed"]
