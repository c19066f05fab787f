"""The encoder comparison assignment graded end to end: the master solution (random-init models,
an honest table) earns every visible point, and each entry of its catalogue of wrong submissions
(tests/fixtures/encoder_comparison/wrong_submissions.py) loses points in its own part only, with a
message a student can act on.

Slow: each grading builds and exports three ResNet U-Nets and a variant in the sandbox and verifies
their graphs; submissions whose models are the master's share its verifier runs (the cache is keyed
by the graph's hash). Each submission is graded when a test first needs it."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.assignments import load_assignment
from grader.execution import Budget
from grader.sandbox import BubblewrapSandbox, PlainSandbox, probe
from grader.scoring import grade_submission
from grader.suites import load_suite
from tests.fixtures.encoder_comparison.submissions import (ASSIGNMENT, copy_submission, produce, read_table,
                                                           solution_source, write_table)
from tests.fixtures.encoder_comparison.wrong_submissions import CATALOGUE

pytestmark = pytest.mark.slow
SEED = 1


@pytest.fixture(scope="module")
def comparison():
    return load_assignment(ASSIGNMENT)


@pytest.fixture(scope="module")
def suite(comparison):
    """Every test, hidden ones included, so every grading shares one verifier job per graph."""
    return load_suite(comparison.suite_dir, comparison)


@pytest.fixture(scope="module")
def master(tmp_path_factory) -> Path:
    return produce(solution_source(), tmp_path_factory.mktemp("master") / "submission")


def _submission(name: str, master: Path, root: Path) -> Path:
    """The catalogue entry `name` as its author would hand it in."""
    mistake = CATALOGUE[name]
    if mistake.edits or mistake.split != "test":
        return produce(mistake.apply(solution_source()), root / name, split=mistake.split)
    folder = copy_submission(master, root / name)
    write_table(folder / "results.csv", mistake.table(read_table(folder / "results.csv")))
    return folder


class Graded(dict):
    """Gradings by submission name, each made when a test first asks for it (so `-k` grades only what
    it selects): "master" with every test, catalogue entries and "missing_files" with the visible ones."""

    def __init__(self, suite, master, root):
        super().__init__()
        self.suite, self.master, self.root = suite, master, root
        self.sandbox = BubblewrapSandbox() if probe() is None else PlainSandbox(announce=False)

    def __missing__(self, name):
        if name == "master":
            folder, tests = self.master, self.suite
        else:
            folder = _missing_files(self.master, self.root) if name == "missing_files" else _submission(
                name, self.master, self.root)
            tests = [t for t in self.suite if t.visibility == "visible"]
        self[name] = grade_submission(folder, tests, self.sandbox, Budget(load_seconds=600), seed=SEED)
        return self[name]


def _missing_files(master: Path, root: Path) -> Path:
    folder = copy_submission(master, root / "missing_files")
    (folder / "results.csv").unlink()
    (folder / "model_resnet50.pt").unlink()
    return folder


@pytest.fixture(scope="module")
def graded(suite, master, tmp_path_factory):
    return Graded(suite, master, tmp_path_factory.mktemp("wrong"))


def test_the_catalogue_covers_every_visible_part():
    assert {m.tag for m in CATALOGUE.values()} == {"encoders", "table", "variant"}


def test_the_master_earns_every_visible_point_and_random_weights_earn_no_heldout_credit(graded):
    result = graded["master"]
    visible = [t for t in result.tests if t.visibility == "visible"]
    assert all(t.status == "passed" for t in visible), {t.number: t.output for t in visible if t.status != "passed"}
    heldout = [t for t in result.tests if t.tags == ("heldout",)]
    assert len(heldout) == 3
    for test in heldout:
        assert test.score < test.max_score and "reference" in test.output and "Traceback" not in test.output


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_each_mistake_loses_points_in_its_own_part_only(graded, name):
    mistake, result = CATALOGUE[name], graded[name]
    failed = {t.number: t for t in result.tests if t.status != "passed"}
    assert set(failed) == set(mistake.fails), {k: v.output for k, v in failed.items()}
    for test in failed.values():
        assert test.tags == (mistake.tag,)
        assert len(test.output) > 40 and "Traceback" not in test.output


def test_a_flattering_table_says_which_number_is_off_and_by_how_much(graded):
    output = next(t.output for t in graded["table_flatters_the_nucleus"].tests if t.number == "table.resnet34_dice")
    assert "nucleus Dice" in output and "0.050 higher" in output and "0.010" in output


def test_a_copied_row_is_named_with_the_models_own_count(graded):
    output = next(t.output for t in graded["table_row_copied_from_another_model"].tests
                  if t.number == "table.resnet50_parameters")
    assert "24,436,659" in output and "32,4" in output  # the table's count, the graph's convolution weights


def test_a_wrong_encoder_is_named_by_what_it_computes(graded):
    output = next(t.output for t in graded["build_model_ignores_the_encoder"].tests
                  if t.number == "encoders.resnet50_encoder")
    assert "ResNet34" in output and "3-4-6-3" in output


def test_missing_files_fail_the_table_with_what_to_hand_in(graded):
    failed = {t.number: t.output for t in graded["missing_files"].tests if t.status != "passed"}
    assert set(failed) == {"table.format"} | {f"table.{e}_{w}" for e in ("resnet18", "resnet34", "resnet50")
                                              for w in ("dice", "parameters")}
    assert all("no results.csv was found" in output for output in failed.values())
