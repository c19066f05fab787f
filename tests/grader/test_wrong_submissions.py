"""The catalogue of wrong submissions (tests/fixtures/wrong_submissions.py): each single, realistic
mistake loses points in its own tag only, with a message a student can act on."""

from __future__ import annotations

import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

from grader.execution import Budget
from grader.sandbox import BubblewrapSandbox, PlainSandbox, probe
from grader.scoring import grade_submission
from grader.suites import load_suite

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
from wrong_submissions import CATALOGUE  # noqa: E402

# The cases drawn at grading time come from this seed, so each mistake fails the same tests every run
# (a mistake that matters only for some batches, such as a missing smoothing term, would otherwise
# fail the drawn descent for some seeds and not others).
SEED = 1


def solution_module(assignment) -> str:
    """The master notebook's code cells, training aside, as one module."""
    nb = nbformat.read(assignment.folder / assignment.notebook, as_version=4)
    return "\n\n".join(c.source for c in nb.cells
                       if c.cell_type == "code" and "train" not in c.metadata.get("tags", []))


@pytest.fixture(scope="module")
def graded(assignment, tmp_path_factory, request):
    """Every catalogue entry graded once, two at a time."""
    sandbox = BubblewrapSandbox() if probe() is None else PlainSandbox(announce=False)
    suite = load_suite(assignment.suite_dir, assignment)
    source = solution_module(assignment)
    model = request.getfixturevalue("smoke_run") / "model.pt" if any(
        m.needs_model for m in CATALOGUE.values()) else None

    def grade(name: str):
        mistake = CATALOGUE[name]
        folder = tmp_path_factory.mktemp(name)
        (folder / "submission.py").write_text(mistake.apply(source))
        tests = suite if mistake.needs_model else [t for t in suite if t.tag != "heldout"]
        if mistake.needs_model:
            shutil.copy(model, folder / "model.pt")
        return name, grade_submission(folder, tests, sandbox, Budget(load_seconds=300), seed=SEED)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(grade, CATALOGUE))


def test_the_catalogue_holds_at_least_twenty_mistakes_across_every_tag():
    assert len(CATALOGUE) >= 20
    assert {m.tag for m in CATALOGUE.values()} == {"data", "architecture", "metrics", "loss", "heldout", "overlay"}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_each_mistake_loses_points_in_its_own_tag_only(graded, name):
    mistake, result = CATALOGUE[name], graded[name]
    failed = {t.number: t for t in result.tests if t.status != "passed"}
    assert set(failed) == set(mistake.fails), {k: v.output for k, v in failed.items()}
    for test in failed.values():
        assert test.tags == (mistake.tag,)
        assert len(test.output) > 40 and "Traceback" not in test.output
