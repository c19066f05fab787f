import json
from pathlib import Path

import pytest

from grader.execution import Budget
from grader.sandbox import BubblewrapSandbox, PlainSandbox, probe
from grader.scoring import grade_submission, to_gradescope, write_results
from grader.suites import load_suite
from tests.fixtures.submissions import package_reference

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def suite(assignment):
    return load_suite(assignment.suite_dir, assignment)


@pytest.fixture(scope="module")
def sandbox():
    return BubblewrapSandbox() if probe() is None else PlainSandbox(announce=False)


@pytest.mark.slow
def test_the_reference_solution_with_its_trained_model_scores_full_marks(smoke_run, suite, sandbox, tmp_path):
    submission = package_reference(tmp_path / "reference_submission", smoke_run / "model.pt")
    result = grade_submission(submission, suite, sandbox, Budget(load_seconds=300))
    failed = {t.number: t.output for t in result.tests if t.status != "passed"}
    assert failed == {}
    assert result.score == result.max_score > 0
    assert {t.tags[0] for t in result.tests} == {"data", "architecture", "metrics", "loss", "heldout", "overlay"}
    heldout = next(t for t in result.tests if t.number == "heldout.mean_foreground_dice")
    assert set(heldout.kept["dice"]) == {"background", "cytoplasm", "nucleus"}
    write_results(tmp_path / "results.json", result)
    data = json.loads((tmp_path / "results.json").read_text())
    for test in data["tests"]:
        assert {"name", "score", "max_score", "status", "output", "visibility", "tags", "number"} <= set(test)


def test_without_model_pt_only_the_heldout_test_fails_and_says_why(suite, sandbox, tmp_path):
    submission = package_reference(tmp_path / "no_model")
    result = grade_submission(submission, suite, sandbox, Budget(load_seconds=300))
    failed = {t.number: t.output for t in result.tests if t.status != "passed"}
    assert list(failed) == ["heldout.mean_foreground_dice"], failed
    assert "model.pt" in failed["heldout.mean_foreground_dice"]


def test_a_submission_that_defines_nothing_gets_every_test_failed_with_a_reason(suite, sandbox, tmp_path):
    (tmp_path / "empty.py").write_text("# nothing yet\n")
    result = grade_submission(tmp_path / "empty.py", suite, sandbox, Budget(load_seconds=60))
    assert [t.number for t in result.tests] == [t.id for t in suite]
    assert all(t.status == "failed" and t.score == 0 for t in result.tests)
    assert all("is not defined" in t.output for t in result.tests)


def test_gradescope_format_sums_scores():
    from grader.scoring import GradeResult, TestResult
    tests = (TestResult("a.x", "x", 2, 2, "passed", "", "visible", ("metrics",)),
             TestResult("a.y", "y", 0, 3, "failed", "why", "hidden", ("loss",)))
    data = to_gradescope(GradeResult(tests, 1.23456, "log", "bubblewrap"))
    assert (data["score"], data["max_score"], data["execution_time"]) == (2, 5, 1.235)
    assert data["tests"][1]["tags"] == ["loss"]
