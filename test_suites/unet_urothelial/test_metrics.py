"""Dice, IoU and pixel accuracy against values computed here: on hand-made and hypothesis-drawn
cases that every grading shares, and on label arrays drawn afresh for each grading (from a seed
only the grader knows), so answers cannot be looked up."""

import numpy as np

from grader.execution import call
from grader.scoring.segmentation import per_class
from grader.suites import Drawn, Failure, register, register_drawn

TESTS = []

TARGET = np.array([[0, 0, 1, 1], [0, 2, 2, 1]], np.int64)
PRED = np.array([[0, 1, 1, 1], [0, 2, 0, 0]], np.int64)
EMPTY_TARGET = np.zeros((4, 4), np.int64)
EMPTY_TARGET[1, 1] = 2


def _expected(pred, target, k, iou=False):
    return per_class(pred, target, k, iou)


def _check_vector(value, expected, what):
    value = np.asarray(value, dtype=float) if not isinstance(value, np.ndarray) else value
    if value.shape != expected.shape:
        raise Failure(f"{what} returned shape {value.shape}; expected one value per class, shape {expected.shape}")
    if value.dtype != np.float64:
        raise Failure(f"{what} returned dtype {value.dtype}; the specification asks for float64")
    if not np.allclose(value, expected, equal_nan=True, atol=1e-9):
        raise Failure(f"{what} returned {np.round(value, 4).tolist()}, which is not right; "
                      "recount the intersection and the sizes of each class's two sets")


dice_table = call("m.dice_table", "dice_per_class", PRED, TARGET, 3, timeout=30)


@register(TESTS, id="metrics.dice_hand_table", name="Dice per class on a hand-made case", points=1, tag="metrics",
          calls=[dice_table], hint="Dice is 2|P∩T| / (|P| + |T|), computed separately for each class.")
def _dice_table(answers):
    _check_vector(answers.value("m.dice_table", "dice_per_class"), _expected(PRED, TARGET, 3),
                  "dice_per_class on a small hand-made case")


dice_empty = call("m.dice_empty", "dice_per_class", EMPTY_TARGET, EMPTY_TARGET, 3, timeout=30)


@register(TESTS, id="metrics.dice_empty_class", name="Dice of a class present in neither mask", points=1,
          tag="metrics", calls=[dice_empty],
          hint="A class in neither prediction nor target has no defined overlap: the specification asks for nan.")
def _dice_empty(answers):
    value = np.asarray(answers.value("m.dice_empty", "dice_per_class"))
    if value.shape != (3,) or not np.isnan(value[1]):
        raise Failure(f"for a class found in neither mask, dice_per_class gave {np.asarray(value).tolist()}")
    _check_vector(value, _expected(EMPTY_TARGET, EMPTY_TARGET, 3), "dice_per_class")


iou_table = call("m.iou_table", "iou_per_class", PRED, TARGET, 3, timeout=30)


@register(TESTS, id="metrics.iou_hand_table", name="IoU per class on a hand-made case", points=1, tag="metrics",
          calls=[iou_table], hint="IoU is |P∩T| / |P∪T|; the union counts shared pixels once.")
def _iou_table(answers):
    _check_vector(answers.value("m.iou_table", "iou_per_class"), _expected(PRED, TARGET, 3, iou=True),
                  "iou_per_class on a small hand-made case")


accuracy = call("m.accuracy", "pixel_accuracy", PRED, TARGET, timeout=30)


@register(TESTS, id="metrics.pixel_accuracy", name="Pixel accuracy on a hand-made case", points=1, tag="metrics",
          calls=[accuracy], hint="The fraction of all pixels whose predicted label equals the target label.")
def _accuracy(answers):
    value = answers.value("m.accuracy", "pixel_accuracy")
    if not isinstance(value, float) or not abs(value - 5 / 8) <= 1e-9:  # a NaN fails too
        raise Failure(f"pixel_accuracy returned {value!r} on a small hand-made case; expected the fraction of "
                      "matching pixels as a Python float")


PERFECT = np.array([[0, 0, 2], [2, 2, 0]], np.int64)  # class 1 absent from both
DISJOINT_PRED = np.array([[1, 1, 0], [0, 0, 2]], np.int64)
DISJOINT_TARGET = np.array([[0, 2, 1], [1, 2, 0]], np.int64)
SINGLE = np.zeros((5, 7), np.int64)
SINGLE[2, 3] = 1
BATCH_PRED = np.random.default_rng(8).integers(0, 3, (4, 6, 5))
BATCH_TARGET = np.random.default_rng(9).integers(0, 3, (4, 6, 5))
EDGE_CASES = {  # name: (pred, target)
    "perfect": (PERFECT, PERFECT),
    "disjoint": (DISJOINT_PRED, DISJOINT_TARGET),
    "single_pixel": (SINGLE, SINGLE),
    "batched": (BATCH_PRED, BATCH_TARGET),
}
edge_calls = {(name, metric): call(f"m.{metric}_{name}", metric, pred, target, 3, timeout=30)
              for name, (pred, target) in EDGE_CASES.items() for metric in ("dice_per_class", "iou_per_class")}


@register(TESTS, id="metrics.edge_cases", name="Dice and IoU: perfect, disjoint, single-pixel and batched masks",
          points=1, tag="metrics", calls=list(edge_calls.values()),
          hint="Count over every element of the arrays, whatever their number of dimensions; a class missing "
               "from both arrays is nan, a class missing from one of them scores 0.")
def _edge_cases(answers):
    for (name, metric), c in edge_calls.items():
        pred, target = EDGE_CASES[name]
        _check_vector(answers.value(c.id, metric), per_class(pred, target, 3, metric == "iou_per_class"),
                      f"{metric} on {name.replace('_', ' ')} masks")


def _random_cases(count=20):
    """Label arrays drawn by hypothesis, derandomised: the same cases at every grading."""
    from hypothesis import given, settings
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp

    cases = []

    @st.composite
    def pairs(draw):
        k = draw(st.integers(2, 5))
        shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6))
        labels = hnp.arrays(np.int64, shape, elements=st.integers(0, k - 1))
        return draw(labels), draw(labels), k

    @settings(derandomize=True, max_examples=count, database=None, deadline=None)
    @given(pairs())
    def collect(case):
        cases.append(case)

    collect()
    return cases


RANDOM = _random_cases()
random_calls = [(call(f"m.rand{i}_dice", "dice_per_class", p, t, k, timeout=30),
                 call(f"m.rand{i}_iou", "iou_per_class", p, t, k, timeout=30),
                 call(f"m.rand{i}_acc", "pixel_accuracy", p, t, timeout=30)) for i, (p, t, k) in enumerate(RANDOM)]


@register(TESTS, id="metrics.random_cases", name="Dice, IoU and accuracy on random label arrays", points=1,
          tag="metrics", calls=[c for triple in random_calls for c in triple],
          hint="These arrays have 1 to 3 dimensions and 2 to 5 classes; nothing about them should be assumed.")
def _random(answers):
    for (p, t, k), (dice, iou, acc) in zip(RANDOM, random_calls):
        where = f"for arrays of shape {p.shape} with {k} classes"
        _check_vector(answers.value(dice.id, "dice_per_class"), per_class(p, t, k), f"dice_per_class {where}")
        _check_vector(answers.value(iou.id, "iou_per_class"), per_class(p, t, k, iou=True), f"iou_per_class {where}")
        value = answers.value(acc.id, "pixel_accuracy")
        if not isinstance(value, float) or not abs(value - float((p == t).mean())) <= 1e-9:
            raise Failure(f"pixel_accuracy {where} returned {value!r}")


def _draw_labels(rng, count=12):
    """Label arrays of 1 to 4 dimensions and 2 to 6 classes, the prediction agreeing with the target
    on a random share of elements. Every fourth case lacks a class in both arrays, the next ones a
    class in the prediction only and in the target only; the fourth is left to chance."""
    cases = []
    for i in range(count):
        k = int(rng.integers(2, 7))
        ndim = int(rng.integers(1, 5))
        shape = tuple(int(side) for side in rng.integers(1, (48, 24, 10, 6)[ndim - 1] + 1, ndim))
        in_target, in_pred = rng.random(k) < 0.8, rng.random(k) < 0.8
        missing, kept = rng.choice(k, 2, replace=False)
        in_target[kept] = in_pred[kept] = True
        if i % 4 in (0, 2):
            in_target[missing] = False
        if i % 4 in (0, 1):
            in_pred[missing] = False
        target = rng.choice(np.flatnonzero(in_target), size=shape)
        noise = rng.choice(np.flatnonzero(in_pred), size=shape)
        agree = rng.random(shape) < rng.uniform(0, 0.95)
        pred = np.where(agree & in_pred[target], target, noise)
        cases.append((pred.astype(np.int64), target.astype(np.int64), k))
    return cases


def _drawn_metric(rng, metric):
    cases = _draw_labels(rng)
    calls = [call(f"m.drawn_{metric}{i}", metric, p, t, *([k] if metric != "pixel_accuracy" else []), timeout=30)
             for i, (p, t, k) in enumerate(cases)]

    def check(answers):
        for (p, t, k), c in zip(cases, calls):
            where = f"for label arrays of shape {p.shape} with {k} classes"
            value = answers.value(c.id, metric)
            if metric == "pixel_accuracy":
                if not isinstance(value, float) or not abs(value - float((p == t).mean())) <= 1e-9:
                    raise Failure(f"pixel_accuracy {where} returned {value!r}, which is not the fraction of "
                                  "matching elements as a Python float")
            else:
                _check_vector(value, per_class(p, t, k, iou=metric == "iou_per_class"), f"{metric} {where}")

    return Drawn(tuple(calls), check)


DRAWN_HINT = ("These label arrays are drawn afresh for every grading: 1 to 4 dimensions, 2 to 6 classes, some "
              "classes missing from one array or both. Compute the answer from the arrays you are given.")


@register_drawn(TESTS, id="metrics.drawn_dice", name="Dice per class on label arrays drawn for this grading",
                points=1.5, tag="metrics", hint=DRAWN_HINT)
def _drawn_dice(rng):
    return _drawn_metric(rng, "dice_per_class")


@register_drawn(TESTS, id="metrics.drawn_iou", name="IoU per class on label arrays drawn for this grading",
                points=1.5, tag="metrics", hint=DRAWN_HINT)
def _drawn_iou(rng):
    return _drawn_metric(rng, "iou_per_class")


@register_drawn(TESTS, id="metrics.drawn_accuracy", name="Pixel accuracy on label arrays drawn for this grading",
                points=1, tag="metrics", hint=DRAWN_HINT)
def _drawn_accuracy(rng):
    return _drawn_metric(rng, "pixel_accuracy")
