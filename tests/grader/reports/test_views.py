"""The report features the tests and classes the assignment's [report] and [classes] name, and
nothing assignment-specific comes from the engine."""

import dataclasses
from datetime import datetime, timezone

import numpy as np

from grader.assignments.config import Classes, Report
from grader.reports.views import report_view
from grader.scoring import GradeResult, TestResult

AFTER_RELEASE = datetime(2031, 1, 1, tzinfo=timezone.utc)


def _result(heldout_id: str, overlay_id: str, names: tuple[str, ...]) -> GradeResult:
    dice = {name: 0.5 + k / 10 for k, name in enumerate(names)}
    tests = (TestResult(heldout_id, "held-out Dice", 1, 2, "failed", "", "after_due_date", ("heldout",),
                        {"dice": dice, "iou": {name: v / 2 for name, v in dice.items()}}),
             TestResult(overlay_id, "overlay", 1, 1, "passed", "", "visible", ("overlay",),
                        {"overlay": np.zeros((4, 4, 3), np.uint8)}))
    return GradeResult(tests, 1.0, "", "plain")


def test_the_featured_tests_and_classes_come_from_the_assignment(assignment):
    renamed = dataclasses.replace(assignment, classes=Classes(("sky", "leaf", "bark"), ("#000000", "#00ff00", "#0000ff")),
                                  report=Report(heldout_test="scores.heldout", overlay_test="pictures.overlay"))
    view = report_view(_result("scores.heldout", "pictures.overlay", ("sky", "leaf", "bark")), renamed,
                       now=AFTER_RELEASE)
    assert [row.name for row in view.heldout.rows] == ["sky", "leaf", "bark"]
    assert [row.dice for row in view.heldout.rows] == [0.5, 0.6, 0.7]
    assert view.heldout.rows[1].ref_dice == assignment.heldout.reference_class_dice[1]
    assert view.overlay is not None and view.overlay.startswith("data:image/png;base64,")
    assert view.legend.labels == (("sky", "#000000"), ("leaf", "#00ff00"), ("bark", "#0000ff"))


def test_tests_the_assignment_does_not_feature_get_no_section(assignment):
    result = _result("heldout.mean_foreground_dice", "overlay.contract", assignment.class_names)
    featured = report_view(result, assignment, now=AFTER_RELEASE)
    assert featured.heldout is not None and featured.overlay is not None
    assert [label for label, _ in featured.legend.labels] == list(assignment.class_names)
    plain = report_view(result, dataclasses.replace(assignment, report=Report()), now=AFTER_RELEASE)
    assert plain.heldout is None and plain.overlay is None


def test_where_the_written_answer_goes_comes_from_the_assignment(assignment):
    from grader.assignments.config import SubmissionFiles
    from grader.reports.render import render_report

    result = _result("heldout.mean_foreground_dice", "overlay.contract", assignment.class_names)
    assert report_view(result, assignment).answer_hint == (
        "write it in the notebook cell tagged failure_analysis_answer, or in failure_analysis.md beside a module")
    file_only = dataclasses.replace(assignment, submission=SubmissionFiles(answer_file="comparison.md"))
    assert report_view(result, file_only).answer_hint == "write it in comparison.md beside your submission"
    page = render_report(result, file_only)
    assert "No written answer was found: write it in comparison.md beside your submission." in page
    assert "failure_analysis" not in page
    neither = dataclasses.replace(assignment, submission=SubmissionFiles())
    assert "No written answer was found." in render_report(result, neither)
