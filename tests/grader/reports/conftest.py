"""Fixtures the report tests share."""

import pytest

from grader.batch import BatchOptions, run_batch
from grader.scoring import GradingPlan
from tests.fixtures.mini import module


@pytest.fixture(scope="package")
def graded_batch(mini_assignment, tmp_path_factory):
    """A real batch: two right, two with a wrong `scale`, one that crashes, one with nothing to run."""
    folder = tmp_path_factory.mktemp("summary") / "class"
    folder.mkdir()
    for name, text in [("ada", module(0)), ("alan", module(0)), ("grace", module(1)), ("linus", module(1)),
                       ("crash", "raise RuntimeError('boom')\n")]:
        (folder / f"{name}.py").write_text(text)
    (folder / "empty").mkdir()
    (folder / "empty" / "notes.txt").write_text("I forgot the notebook\n")
    out = folder.parent / "out"
    run_batch(folder, out, GradingPlan(mini_assignment, allow_unsandboxed=True), BatchOptions(progress=False))
    return out
