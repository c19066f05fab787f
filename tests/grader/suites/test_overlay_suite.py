"""The default suite's overlay test: points from the random image, the report's picture from drawn cells."""

import numpy as np
import pytest

from grader.execution import CallOutcome
from grader.suites import Answers, load_suite
from reference import overlay


@pytest.fixture(scope="module")
def overlay_test(assignment):
    return next(t for t in load_suite(assignment.suite_dir, assignment, hidden=False) if t.id == "overlay.contract")


def _answers(test, sample_status: str) -> Answers:
    contract, sample = test.calls
    return Answers({contract.id: CallOutcome(contract.id, "ok", overlay(*contract.args)),
                    sample.id: CallOutcome(sample.id, sample_status, overlay(*sample.args) if sample_status == "ok"
                                           else None, reason="the worker crashed")})


def test_the_report_shows_the_overlay_of_the_drawn_cells(overlay_test):
    answers = _answers(overlay_test, "ok")
    assert overlay_test.check(answers) is None  # full points
    sample = overlay_test.calls[1]
    assert np.array_equal(answers.kept["overlay"], overlay(*sample.args))
    assert answers.kept["overlay"].shape == (96, 128, 3)
    assert set(np.unique(sample.args[1])) == {0, 1, 2}


def test_without_the_drawn_cells_the_report_shows_the_graded_overlay_and_points_are_unchanged(overlay_test):
    answers = _answers(overlay_test, "crashed")
    assert overlay_test.check(answers) is None
    assert answers.kept["overlay"].shape == (40, 48, 3)
