"""Exports of the current grades: `gradebook.csv`, a Canvas gradebook import, JUnit XML, and each
student's Gradescope `results.json`. Every file is written atomically from the gradebook."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from grader.assignments import Assignment
from grader.fileio import write_text_atomic
from grader.gradebook.store import ManualScore, Run
from grader.scoring.results import RESULTS_JSON, write_results

GRADEBOOK_CSV = "gradebook.csv"
CANVAS_CSV = "canvas.csv"
JUNIT_XML = "junit.xml"
# Characters XML 1.0 does not allow anywhere in a document, even escaped (most C0 controls, lone
# surrogates, U+FFFE and U+FFFF); a submission's messages may hold any of them.
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def manual_total(scores: dict[str, ManualScore]) -> float:
    return round(sum(s.points for s in scores.values()), 6)


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet would run as a formula


def _inert(cell):
    """A text cell that a spreadsheet would take for a formula (a student's name such as
    `=HYPERLINK(...)`) gets a leading apostrophe; numbers and other text are left as they are."""
    return f"'{cell}" if isinstance(cell, str) and cell.startswith(FORMULA_START) else cell


def as_written(cell: str) -> str:
    """The text `_inert` was given, from a cell read back: the apostrophe it added removed."""
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(FORMULA_START) else cell


def csv_text(rows: list[list]) -> str:
    """Rows as CSV text, every formula-like cell made inert. A cell holding a `;` is quoted as well:
    a spreadsheet in a locale whose separator is `;` would otherwise split `A;=CHAR(72)` and run the
    second half, which no apostrophe in front of the first protects."""
    return "".join(",".join(_field(_inert(cell)) for cell in row) + "\n" for row in rows)


def _field(cell) -> str:
    """One CSV field as Python's csv module writes it (None empty, quotes doubled), quoted also for `;`."""
    text = "" if cell is None else str(cell)
    return f'"{text.replace(chr(34), chr(34) * 2)}"' if any(c in text for c in ',;"\r\n') else text


def _test_ids(runs: list[Run]) -> list[str]:
    ids: dict[str, None] = {}
    for run in runs:
        ids.update(dict.fromkeys(t.number for t in run.result.tests))
    return list(ids)


def gradebook_csv(runs: list[Run], manual: dict[str, dict[str, ManualScore]], assignment: Assignment) -> str:
    """One row per student: totals, every test's score, every rubric item, and where the grade came from."""
    tests = _test_ids(runs)
    items = [item.id for item in assignment.rubric]
    max_manual = sum(item.points for item in assignment.rubric)
    header = ["student", "name", "lms_id", "total", "max_total", "autograded", "max_autograded", "manual",
              "max_manual", "problem", *tests, *(f"rubric.{i}" for i in items), "submission_hash",
              "assignment_version", "graded_at", "run_id"]
    rows = [header]
    for run in runs:
        scores = {t.number: t.score for t in run.result.tests}
        hand = manual.get(run.student, {})
        auto = run.result.score
        rows.append([run.student, run.identity.display_name, run.identity.lms_id,
                     f"{auto + manual_total(hand):g}", f"{run.result.max_score + max_manual:g}", f"{auto:g}",
                     f"{run.result.max_score:g}", f"{manual_total(hand):g}", f"{max_manual:g}", run.result.problem,
                     *(f"{scores[t]:g}" if t in scores else "" for t in tests),
                     *(f"{hand[i].points:g}" if i in hand else "" for i in items), run.submission_hash,
                     run.assignment_version, run.graded_at, run.id])
    return csv_text(rows)


def canvas_csv(runs: list[Run], manual: dict[str, dict[str, ManualScore]], assignment: Assignment) -> str:
    """Canvas's gradebook import: Student, ID (the Canvas user id from the download's file names),
    SIS User ID, SIS Login ID, Section, then the assignment's column with a Points Possible row."""
    column = assignment.title or assignment.name
    possible = sum(p.points for p in assignment.parts if not p.bonus) + sum(item.points for item in assignment.rubric)
    rows = [["Student", "ID", "SIS User ID", "SIS Login ID", "Section", column],
            ["Points Possible", "", "", "", "", f"{possible:g}"]]
    for run in runs:
        total = run.result.score + manual_total(manual.get(run.student, {}))
        rows.append([run.identity.display_name or run.student, run.identity.lms_id, "", "", "", f"{total:g}"])
    return csv_text(rows)


def _xml(text: object) -> str:
    """Text an XML 1.0 document can hold: forbidden characters left out."""
    return NOT_XML.sub("", str(text))


def junit_xml(runs: list[Run]) -> str:
    """One `<testsuite>` per student, one `<testcase>` per test; partial credit counts as a failure.
    Every text and attribute is cleaned of characters XML 1.0 forbids, so that one submission's
    message cannot make the class's file unparseable."""
    def element(parent: ET.Element | None, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        clean = {key: _xml(value) for key, value in attrs.items()}
        node = ET.Element(tag, clean) if parent is None else ET.SubElement(parent, tag, clean)
        if text is not None:
            node.text = _xml(text)
        return node

    root = element(None, "testsuites", name="grader", tests=str(sum(len(r.result.tests) for r in runs)))
    for run in runs:
        tests = run.result.tests
        suite = element(root, "testsuite", name=run.student, tests=str(len(tests)),
                        failures=str(sum(t.status != "passed" for t in tests)), errors="0",
                        time=f"{run.result.execution_time:.3f}", timestamp=run.graded_at)
        for t in tests:
            case = element(suite, "testcase", classname=f"{run.student}.{t.tags[0] if t.tags else 'test'}",
                           name=t.number, time="0")
            element(element(case, "properties"), "property", name="score", value=f"{t.score:g}/{t.max_score:g}")
            if t.status != "passed":
                element(case, "failure", t.output, message=f"{t.score:g}/{t.max_score:g} points: {t.name}")
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_exports(out: Path, runs: list[Run], manual: dict[str, dict[str, ManualScore]],
                  assignment: Assignment) -> list[Path]:
    """Write every export of the current grades into `out`; returns the paths written."""
    paths = [write_text_atomic(out / GRADEBOOK_CSV, gradebook_csv(runs, manual, assignment)),
             write_text_atomic(out / CANVAS_CSV, canvas_csv(runs, manual, assignment)),
             write_text_atomic(out / JUNIT_XML, junit_xml(runs))]
    for run in runs:
        paths.append(write_results(out / run.student / RESULTS_JSON, run.result))
    return paths
