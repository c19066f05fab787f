"""Hand grading of the rubric (the failure analysis) through a CSV the instructor fills in: one row
per student, one column per rubric item, and a comment. Blank cells are not graded yet."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from grader.assignments import Assignment
from grader.errors import UserError
from grader.fileio import write_text_atomic
from grader.gradebook.exports import as_written, csv_text
from grader.gradebook.store import ManualScore, Run

RUBRIC_CSV = "rubric.csv"


class ManualGradesError(UserError, ValueError):
    """A rubric CSV that cannot be merged; the message names the row and column."""


def write_rubric_template(path: Path, assignment: Assignment, runs: list[Run],
                          entered: dict[str, dict[str, ManualScore]]) -> Path:
    """A CSV with a row per graded student and a column per rubric item, keeping scores already entered."""
    if not assignment.rubric:
        raise ManualGradesError(f"{assignment.folder / 'assignment.toml'} declares no [[rubric]] items to grade")
    items = [item.id for item in assignment.rubric]
    rows = [["student", "name", *(f"{i} (max {item.points:g})" for i, item in zip(items, assignment.rubric)),
             "comment"]]
    for run in runs:
        have = entered.get(run.student, {})
        comment = next((s.comment for s in have.values() if s.comment), "")
        rows.append([run.student, run.identity.display_name,
                     *(f"{have[i].points:g}" if i in have else "" for i in items), comment])
    return write_text_atomic(path, csv_text(rows))  # a student named =HYPERLINK(...) stays text in a spreadsheet


def _item_of(column: str) -> str:
    return column.split(" (max", 1)[0].strip()


def read_manual_scores(path: Path, assignment: Assignment, students: set[str]) -> list[ManualScore]:
    """The filled-in scores of a rubric CSV, checked against the rubric and the graded students."""
    maxima = {item.id: item.points for item in assignment.rubric}
    try:
        rows = list(csv.DictReader(io.StringIO(Path(path).read_text(encoding="utf-8-sig"))))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise ManualGradesError(f"{path}: cannot be read as a CSV file ({err})") from err
    if not rows:
        raise ManualGradesError(f"{path}: no rows; write a template with `grader gradebook rubric` first")
    columns = {c: _item_of(c) for c in rows[0] if c and c not in ("student", "name", "comment")}
    unknown = [c for c, item in columns.items() if item not in maxima]
    if "student" not in rows[0] or unknown:
        raise ManualGradesError(f"{path}: " + (f"column {unknown[0]!r} is not a rubric item; the items are "
                                               f"{', '.join(maxima)}" if unknown else "no 'student' column"))
    scores = []
    for line, row in enumerate(rows, start=2):
        student = (row.get("student") or "").strip()
        if student not in students:  # the template wrote a formula-like name with an apostrophe before it
            student = as_written(student)
        if student not in students:
            raise ManualGradesError(f"{path}, line {line}: no graded submission for student {student!r}")
        comment = (row.get("comment") or "").strip()
        for column, item in columns.items():
            cell = (row.get(column) or "").strip()
            if not cell:
                continue
            try:
                points = float(cell)
            except ValueError:
                raise ManualGradesError(f"{path}, line {line}, {item}: {cell!r} is not a number") from None
            if not 0 <= points <= maxima[item]:
                raise ManualGradesError(f"{path}, line {line}, {item}: {points:g} is outside 0..{maxima[item]:g}")
            scores.append(ManualScore(student, item, points, comment, Path(path).name))
    return scores
