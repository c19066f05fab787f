"""Cases drawn at grading time: the same seed draws the same cases, another seed others, and
submissions that match the suite's fixed cases without computing lose the drawn tests' points."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from grader.execution import Budget, CallOutcome, call
from grader.execution.calls import Array
from grader.sandbox import BubblewrapSandbox, PlainSandbox, probe
from grader.scoring import grade_submission, to_gradescope
from grader.scoring.segmentation import per_class
from grader.suites import Answers, Drawn, Failure, Test, instantiate, load_suite, register_drawn

ROOT = Path(__file__).resolve().parents[3]
CORPUS = ROOT / "tests" / "fixtures" / "hostile"
SEEDS = (11, 2 ** 52 + 7)

HONEST_LOSS = """
import torch.nn.functional as F


def dice_ce_loss(logits, target):
    probs = logits.softmax(dim=1)
    one_hot = F.one_hot(target, logits.shape[1]).permute(0, 3, 1, 2).to(probs.dtype)
    dims = (0, 2, 3)
    dice = (2 * (probs * one_hot).sum(dims) + 1) / (probs.sum(dims) + one_hot.sum(dims) + 1)
    return F.cross_entropy(logits, target) + 1 - dice.mean()
"""


@pytest.fixture(scope="module")
def suite(assignment, tmp_path_factory):
    """The suite's metric and loss tests (their files alone, so the other parts' imports stay out)."""
    folder = tmp_path_factory.mktemp("suite") / assignment.suite_dir.name
    folder.mkdir()
    for name in ("test_metrics.py", "test_loss.py"):
        shutil.copy(assignment.suite_dir / name, folder / name)
    return load_suite(folder, assignment, hidden=False)


@pytest.fixture(scope="module")
def sandbox():
    return BubblewrapSandbox() if probe() is None else PlainSandbox(announce=False)


def _arrays(test: Test) -> list[bytes]:
    out = []
    for c in test.calls:
        for arg in list(c.args) + [v for k, v in sorted(c.extra.items()) if isinstance(v, np.ndarray)]:
            data = arg.data if isinstance(arg, Array) else arg
            if isinstance(data, np.ndarray):
                out.append(data.tobytes() + str(data.shape).encode())
    return out


def test_drawn_tests_draw_the_same_cases_from_the_same_seed_and_others_from_another(suite):
    drawn = [t for t in suite if t.draw is not None]
    assert {t.id for t in drawn} == {"metrics.drawn_dice", "metrics.drawn_iou", "metrics.drawn_accuracy",
                                     "loss.drawn_value", "loss.drawn_gradient", "loss.drawn_descends"}
    first, again, other = (instantiate(suite, seed) for seed in (SEEDS[0], SEEDS[0], SEEDS[1]))
    for a, b, c, preview in zip(first, again, other, suite):
        if preview.draw is None:
            assert a is preview  # fixed tests are untouched
            continue
        assert _arrays(a) == _arrays(b)
        assert _arrays(a) != _arrays(c) and _arrays(a) != _arrays(preview)
        assert [x.id for x in a.calls] == [x.id for x in b.calls]


def test_a_test_draws_the_same_cases_whatever_else_is_graded(suite):
    alone = instantiate([t for t in suite if t.id == "metrics.drawn_iou"], SEEDS[0])[0]
    among_all = next(t for t in instantiate(suite, SEEDS[0]) if t.id == "metrics.drawn_iou")
    assert _arrays(alone) == _arrays(among_all)


def test_drawn_metric_cases_vary_shape_classes_and_missing_classes(suite):
    shapes, classes, missing = set(), set(), 0
    test = next(t for t in suite if t.id == "metrics.drawn_dice")
    for seed in range(5):
        for c in instantiate([test], seed)[0].calls:
            pred, target, k = c.args
            shapes.add(pred.ndim)
            classes.add(k)
            missing += int(np.isnan(per_class(pred, target, k)).any())
    assert shapes == {1, 2, 3, 4} and classes == {2, 3, 4, 5, 6} and missing > 0


def test_a_drawn_test_is_a_plain_test_once_instantiated():
    registry: list[Test] = []

    @register_drawn(registry, id="metrics.toy", name="toy", points=1, tag="metrics")
    def _draw(rng):
        value = int(rng.integers(1000))
        return Drawn((call("toy", "identity", value),), lambda answers: None)

    preview = registry[0]
    assert preview.draw is _draw and len(preview.calls) == 1
    assert instantiate(registry, 5)[0].calls[0].args == instantiate(registry, 5)[0].calls[0].args
    assert {instantiate(registry, s)[0].calls[0].args for s in range(20)} != {preview.calls[0].args}


def _fill(name: str, folder: Path, table: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = (CORPUS / f"{name}.py").read_text().replace("__TABLE__", repr(json.dumps(table)))
    (folder / "submission.py").write_text(text)
    return folder


def _metric_table(tests: list[Test]) -> dict:
    """The grader's oracle on every metric case written in the suite (fixed and previews)."""
    namespace: dict = {"__TABLE__": "{}"}
    exec((CORPUS / "looks_up_metrics.py").read_text(), namespace)
    key, table = namespace["key"], {}
    for test in tests:
        for c in test.calls:
            pred, target, *k = c.args
            if c.function == "pixel_accuracy":
                table[key(c.function, pred, target)] = float((pred == target).mean())
            else:
                answer = per_class(pred, target, k[0], iou=c.function == "iou_per_class")
                table[key(c.function, pred, target, num_classes=k[0])] = answer.tolist()
    return table


def _loss_table(tests: list[Test], formula) -> dict:
    """The grader's oracle on the loss-value cases written in the suite (fixed and previews)."""
    namespace: dict = {"__TABLE__": "{}"}
    exec((CORPUS / "loss_without_dice_matches_public_cases.py").read_text(), namespace)
    table = {}
    for test in tests:  # the value cases only: topping up the finite-difference points would give it away
        for c in test.calls if test.id in ("loss.dice_ce_value", "loss.drawn_value") else ():
                logits, target = (a.data for a in c.args)
                table[namespace["key"](logits, target)] = float(formula(logits, target))
    return table


def _by_id(result) -> dict[str, str]:
    return {t.number: t.status for t in result.tests}


@pytest.mark.parametrize("seed", SEEDS)
def test_metrics_looked_up_from_the_oracle_pass_the_fixed_cases_and_lose_the_drawn(suite, sandbox, tmp_path, seed):
    tests = [t for t in suite if t.tag == "metrics"]
    submission = _fill("looks_up_metrics", tmp_path / "lookup", _metric_table(tests))
    result = grade_submission(submission, tests, sandbox, Budget(load_seconds=60), seed=seed)
    statuses = _by_id(result)
    assert {k: v for k, v in statuses.items() if "drawn" not in k} == {t.id: "passed" for t in tests
                                                                       if t.draw is None}
    assert {k: v for k, v in statuses.items() if "drawn" in k} == {t.id: "failed" for t in tests if t.draw}
    assert result.score == pytest.approx(6) and result.max_score == 10
    assert "drawn afresh for every grading" in next(t.output for t in result.tests if t.number == "metrics.drawn_dice")
    assert result.seed == seed and to_gradescope(result)["seed"] == seed

    honest = tmp_path / "honest"
    honest.mkdir()
    shutil.copy(CORPUS / "_base.py", honest / "submission.py")
    assert _by_id(grade_submission(honest, tests, sandbox, Budget(load_seconds=60), seed=seed)) == {
        t.id: "passed" for t in tests}


def test_a_loss_without_its_dice_term_tuned_to_the_fixed_cases_loses_the_drawn(suite, sandbox, tmp_path):
    tests = [t for t in suite if t.tag == "loss"]
    formula = sys.modules["_grader_suite_unet_urothelial_test_loss"].formula  # the suite's own oracle
    submission = _fill("loss_without_dice_matches_public_cases", tmp_path / "ce_only", _loss_table(tests, formula))
    result = grade_submission(submission, tests, sandbox, Budget(load_seconds=120), seed=SEEDS[0])
    # Its value is right on the public case it recognises; its gradient and descent path are compared
    # with the definition's, which no value table reproduces, and the drawn cases catch the rest.
    assert _by_id(result) == {"loss.dice_ce_value": "passed", "loss.dice_ce_gradient": "failed",
                              "loss.dice_ce_descends": "failed", "loss.drawn_value": "failed",
                              "loss.drawn_gradient": "failed", "loss.drawn_descends": "failed"}
    assert result.score == 1 and result.max_score == 8

    honest = tmp_path / "honest"
    honest.mkdir()
    (honest / "submission.py").write_text(HONEST_LOSS)
    assert _by_id(grade_submission(honest, tests, sandbox, Budget(load_seconds=120), seed=SEEDS[0])) == {
        t.id: "passed" for t in tests}


def test_without_a_seed_a_grading_draws_a_fresh_one_and_records_it(suite, sandbox, tmp_path):
    tests = [t for t in suite if t.id == "metrics.drawn_accuracy"]
    (tmp_path / "empty.py").write_text("# nothing yet\n")
    seeds = {grade_submission(tmp_path / "empty.py", tests, sandbox, Budget(load_seconds=60)).seed for _ in range(2)}
    assert len(seeds) == 2 and all(isinstance(s, int) and 0 <= s < 2 ** 53 for s in seeds)
    (tmp_path / "nothing").mkdir()
    unrunnable = grade_submission(tmp_path / "nothing", tests, sandbox, seed=4)
    assert unrunnable.seed == 4 and unrunnable.problem == "not graded"


def test_answers_of_drawn_calls_reach_the_drawn_check(suite):
    test = instantiate([t for t in suite if t.id == "metrics.drawn_accuracy"], 3)[0]
    outcomes = {c.id: CallOutcome(c.id, "ok", float((c.args[0] == c.args[1]).mean())) for c in test.calls}
    assert test.check(Answers(outcomes)) is None
    wrong = dict(outcomes, **{test.calls[-1].id: CallOutcome(test.calls[-1].id, "ok", 2.0)})
    with pytest.raises(Failure, match="pixel_accuracy for label arrays of shape"):
        test.check(Answers(wrong))


def test_the_loss_oracles_gradient_is_the_definitions(suite):
    loss = sys.modules["_grader_suite_unet_urothelial_test_loss"]
    rng = np.random.default_rng(5)
    for _ in range(5):
        logits, target = loss._draw_batch(rng, side=(1, 4))
        finite = np.zeros_like(logits)
        for index in np.ndindex(logits.shape):
            step = np.zeros_like(logits)
            step[index] = 1e-6
            finite[index] = (loss.formula(logits + step, target) - loss.formula(logits - step, target)) / 2e-6
        assert np.allclose(loss.definition_gradient(logits, target), finite, atol=1e-7)
