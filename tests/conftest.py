"""Shared fixtures: small generated datasets, one smoke training run per test session, sandboxes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reference.synthetic import SyntheticSpec, write_dataset

TINY = SyntheticSpec(size=96, n_train=6, n_val=2, n_test=2)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """A few small synthetic images per split: enough to run the pipeline end to end quickly."""
    root = tmp_path_factory.mktemp("tiny") / "data"
    write_dataset(root, seed=3, spec=TINY)
    return root


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> Path:
    """The real `smoke` training on the embedded dataset, as `python -m reference train` runs it."""
    from reference.cli import main

    out = tmp_path_factory.mktemp("smoke") / "run"
    assert main(["train", "--config", "smoke", "--out", str(out)]) == 0
    return out


@pytest.fixture(params=["bubblewrap", "plain"])
def sandbox(request):
    """Each sandbox implementation in turn; bubblewrap only where it can run."""
    from grader.sandbox import BubblewrapSandbox, PlainSandbox, probe

    if request.param == "bubblewrap":
        if probe() is not None:
            pytest.skip(f"bubblewrap unavailable: {probe()}")
        return BubblewrapSandbox()
    return PlainSandbox(announce=False)


@pytest.fixture(scope="session")
def assignment():
    """The default assignment, as `grader grade` loads it."""
    from grader.assignments import load_assignment

    return load_assignment(Path(__file__).resolve().parents[1] / "assignments" / "unet_urothelial")


@pytest.fixture(scope="session")
def release(assignment, tmp_path_factory):
    """The student release of the default assignment, as `grader assign` writes it."""
    from grader.assignments import write_release

    return write_release(assignment, tmp_path_factory.mktemp("release") / "unet_urothelial")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def mini_assignment() -> Path:
    """A three-test assignment (one hidden) that grades in about a second: for batch and report tests."""
    from tests.fixtures.mini import MINI_ASSIGNMENT

    return MINI_ASSIGNMENT


ANALYSIS = ("The model merges touching nuclei in dense clusters and misses faint cytoplasm at the image edges. "
            "<script>alert('not run')</script>")


@pytest.fixture(scope="session")
def graded_reference(smoke_run, tmp_path_factory):
    """The reference, packaged with its smoke model, history.csv and an analysis, graded on the whole
    default assignment (hidden tests included): a real result for report tests."""
    from grader.scoring import GradingPlan, grade
    from tests.fixtures.submissions import package_reference

    folder = package_reference(tmp_path_factory.mktemp("graded") / "reference_submission", smoke_run / "model.pt",
                               smoke_run / "history.csv", ANALYSIS)
    plan = GradingPlan(Path(__file__).resolve().parents[1] / "assignments" / "unet_urothelial",
                       allow_unsandboxed=True)
    return folder, grade(plan, folder)


@pytest.fixture(scope="session")
def encoder_graphs(tmp_path_factory):
    """smp U-Nets with ResNet18/34/50 encoders, with scSE attention, and hostile look-alikes: each exported,
    analysed and verified at most once per session, when a test first asks (tests/fixtures/graphs/encoders.py)."""
    from tests.fixtures.graphs.encoders import EncoderGraphs

    return EncoderGraphs(tmp_path_factory.mktemp("encoder_graphs"))
