"""Dice, IoU and pixel accuracy against values computed here, on hand-made cases."""

import numpy as np

from grader.execution import call
from grader.scoring.segmentation import per_class
from grader.suites import Failure, register

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
        raise Failure(f"{what} returned {np.round(value, 4).tolist()} on a small hand-made case; "
                      "recount the intersection and the sizes of each class's two sets")


dice_table = call("m.dice_table", "dice_per_class", PRED, TARGET, 3, timeout=30)


@register(TESTS, id="metrics.dice_hand_table", name="Dice per class on a hand-made case", points=2, tag="metrics",
          calls=[dice_table], hint="Dice is 2|P∩T| / (|P| + |T|), computed separately for each class.")
def _dice_table(answers):
    _check_vector(answers.value("m.dice_table", "dice_per_class"), _expected(PRED, TARGET, 3), "dice_per_class")


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


@register(TESTS, id="metrics.iou_hand_table", name="IoU per class on a hand-made case", points=2, tag="metrics",
          calls=[iou_table], hint="IoU is |P∩T| / |P∪T|; the union counts shared pixels once.")
def _iou_table(answers):
    _check_vector(answers.value("m.iou_table", "iou_per_class"), _expected(PRED, TARGET, 3, iou=True),
                  "iou_per_class")


accuracy = call("m.accuracy", "pixel_accuracy", PRED, TARGET, timeout=30)


@register(TESTS, id="metrics.pixel_accuracy", name="Pixel accuracy on a hand-made case", points=1, tag="metrics",
          calls=[accuracy], hint="The fraction of all pixels whose predicted label equals the target label.")
def _accuracy(answers):
    value = answers.value("m.accuracy", "pixel_accuracy")
    if not isinstance(value, float) or abs(value - 5 / 8) > 1e-9:
        raise Failure(f"pixel_accuracy returned {value!r} on a small hand-made case (a Python float is expected)")
