"""Fixtures the report tests share."""

import shutil

import numpy as np
import pytest

from grader.batch import BatchOptions, run_batch
from grader.scoring import GradingPlan
from tests.fixtures.mini import RIGHT, module
from tests.grader.batch.hostile import MARKUP


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


@pytest.fixture(scope="package")
def hostile_batch(mini_assignment, tmp_path_factory):
    """A real batch of hostile extras: `markup` (tests/fixtures/hostile/batch/markup: markup and control
    characters in its messages, curves and analysis), `wide` (the red team's wide_history: a history.csv
    of 290,000 numeric columns, under the size cap) and a plain `alice`."""
    folder = tmp_path_factory.mktemp("hostile") / "class"
    shutil.copytree(MARKUP, folder / "markup")
    for student in ("alice", "wide"):
        (folder / student).mkdir()
        (folder / student / "submission.py").write_text(RIGHT)
    columns = [np.base_repr(k, 36).lower() for k in range(290_000)]  # 1.98 MB: under the 2 MiB cap
    (folder / "wide" / "history.csv").write_text(",".join(columns) + "\n" + ",".join(["0"] * len(columns)) + "\n")
    out = folder.parent / "out"
    run_batch(folder, out, GradingPlan(mini_assignment, allow_unsandboxed=True), BatchOptions(progress=False))
    return out
