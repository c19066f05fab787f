"""The seed of a grading's drawn cases: derived from the assignment's secret and the submission's
content (a regrade draws the same cases), recorded in results.json as `seed`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from grader.assignments import derive_seed, load_assignment, read_secret
from grader.assignments.secret import secret_path
from grader.batch.discover import submission_hash
from grader.scoring import GradeResult, GradingPlan, TestResult, grade, to_gradescope, write_results
from grader.scoring.results import from_gradescope

ADD = "def add(a, b):\n    return a + b\n"
DRAWN_SUITE = '''
from grader.execution import call
from grader.suites import Drawn, Failure, register_drawn

TESTS = []


@register_drawn(TESTS, id="metrics.drawn_add", name="add on numbers drawn for this grading", points=3,
                tag="metrics")
def _draw(rng):
    a, b = (int(x) for x in rng.integers(0, 10 ** 6, 2))

    def check(answers):
        if answers.value("m.drawn_add", "add") != a + b:
            raise Failure(f"add({a}, {b}) is wrong")

    return Drawn((call("m.drawn_add", "add", a, b, timeout=10),), check)
'''


def _assignment(tmp_path: Path) -> Path:
    """A one-part assignment whose only test draws its numbers at grading time."""
    folder = tmp_path / "drawn_assignment"
    (folder / "suite").mkdir(parents=True)
    (folder / "suite" / "test_drawn.py").write_text(DRAWN_SUITE)
    (folder / "assignment.toml").write_text('name = "drawn"\nsuite = "suite"\n[time]\nload_seconds = 20\n\n'
                                            '[[parts]]\ntag = "metrics"\ntitle = "Adding"\npoints = 3\n')
    return folder


def _submission(tmp_path: Path, text: str = ADD) -> Path:
    path = tmp_path / "student" / "submission.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path.parent


def test_results_json_carries_the_seed_and_reads_it_back(tmp_path):
    tests = (TestResult("a.x", "x", 2, 2, "passed", "", "visible", ("metrics",)),)
    data = to_gradescope(GradeResult(tests, 1.0, "log", "bubblewrap", seed=2 ** 52 + 3))
    assert data["seed"] == 2 ** 52 + 3 and list(data)[-1] == "tests"
    assert from_gradescope(data).seed == 2 ** 52 + 3
    assert "seed" not in to_gradescope(GradeResult(tests, 1.0, "log", "bubblewrap"))
    write_results(tmp_path / "results.json", GradeResult(tests, 1.0, "log", "bubblewrap", seed=7))
    assert json.loads((tmp_path / "results.json").read_text())["seed"] == 7


def test_an_instructors_grading_draws_the_secret_and_a_regrade_draws_the_same_cases(tmp_path):
    folder, submission = _assignment(tmp_path), _submission(tmp_path)
    plan = GradingPlan(folder, allow_unsandboxed=True)
    first = grade(plan, submission)
    secret = read_secret(load_assignment(folder))
    assert secret is not None  # the first grading drew it
    assert first.seed == derive_seed(secret, submission_hash(submission))
    assert first.score == first.max_score == 3
    assert grade(plan, submission).seed == first.seed

    (submission / "notes.md").write_text("a changed submission draws other cases\n")
    assert grade(plan, submission).seed != first.seed


def test_a_new_secret_draws_new_cases_for_the_same_submission(tmp_path):
    folder, submission = _assignment(tmp_path), _submission(tmp_path)
    plan = GradingPlan(folder, allow_unsandboxed=True)
    before = grade(plan, submission).seed
    path = secret_path(load_assignment(folder))
    path.unlink()
    path.write_text("00" * 16 + "\n")
    assert grade(plan, submission).seed == derive_seed(bytes(16), submission_hash(submission)) != before


def test_a_students_self_check_draws_from_the_content_alone_and_makes_no_secret(tmp_path):
    folder, submission = _assignment(tmp_path), _submission(tmp_path, "def add(a, b):\n    return 7\n")
    plan = GradingPlan(folder, hidden=False, allow_unsandboxed=True)
    result = grade(plan, submission)
    assert result.seed == derive_seed(None, submission_hash(submission))
    assert result.score == 0 and "is wrong" in result.tests[0].output
    assert not (folder / "hidden").exists()


def test_the_mini_assignment_without_drawn_tests_makes_no_secret(mini_assignment, tmp_path):
    folder = tmp_path / "mini"
    shutil.copytree(mini_assignment, folder)
    result = grade(GradingPlan(folder, allow_unsandboxed=True), _submission(tmp_path))
    assert result.seed is not None and not (folder / "hidden").exists()


def test_a_results_json_of_another_schema_version_is_refused_with_both_versions():
    import pytest

    from grader.scoring.results import ResultsVersionError, from_gradescope

    with pytest.raises(ResultsVersionError, match="schema version 7; this grader reads version 1"):
        from_gradescope({"schema_version": 7, "tests": [], "execution_time": 0, "output": ""})
