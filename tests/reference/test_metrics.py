import numpy as np
import pytest
import segmentation_models_pytorch as smp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from reference.metrics import SegmentationScores, confusion_matrix, dice_per_class, iou_per_class, pixel_accuracy


def test_hand_computed_table():
    target = np.array([[0, 0, 1, 1],
                       [0, 2, 2, 1]])
    pred = np.array([[0, 1, 1, 1],
                     [0, 2, 0, 0]])
    # class 0: P={00,10,12,13} T={00,01,10}: inter 2 -> dice 4/7, iou 2/5
    # class 1: P={01,02,03} T={02,03,13}: inter 2 -> dice 4/6, iou 2/4
    # class 2: P={11} T={11,12}: inter 1 -> dice 2/3, iou 1/2
    np.testing.assert_allclose(dice_per_class(pred, target, 3), [4 / 7, 4 / 6, 2 / 3])
    np.testing.assert_allclose(iou_per_class(pred, target, 3), [2 / 5, 2 / 4, 1 / 2])
    assert pixel_accuracy(pred, target) == pytest.approx(5 / 8)


def test_perfect_disjoint_empty_and_single_pixel():
    target = np.zeros((5, 5), np.int64)
    target[2, 2] = 2
    np.testing.assert_allclose(dice_per_class(target, target, 3), [1, np.nan, 1])
    disjoint = np.where(target == 2, 0, 2)
    np.testing.assert_allclose(dice_per_class(disjoint, target, 3), [0, np.nan, 0])
    assert np.isnan(iou_per_class(target, target, 3)[1])
    assert dice_per_class(target, target, 3).dtype == np.float64


def test_batched_inputs_are_scored_over_all_elements():
    rng = np.random.default_rng(0)
    pred, target = rng.integers(0, 3, (4, 16, 16)), rng.integers(0, 3, (4, 16, 16))
    cm = sum(confusion_matrix(p, t, 3) for p, t in zip(pred, target))
    np.testing.assert_allclose(dice_per_class(pred, target, 3), SegmentationScores.from_confusion(cm).dice)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="must match"):
        dice_per_class(np.zeros((2, 2)), np.zeros((3, 3)), 3)


def _smp_scores(pred, target, k):
    tp, fp, fn, tn = smp.metrics.get_stats(torch.from_numpy(pred)[None], torch.from_numpy(target)[None],
                                           mode="multiclass", num_classes=k)
    tp, fp, fn, tn = (v.sum(0) for v in (tp, fp, fn, tn))
    dice = smp.metrics.f1_score(tp, fp, fn, tn, reduction="none").numpy()
    iou = smp.metrics.iou_score(tp, fp, fn, tn, reduction="none").numpy()
    present = ((pred == np.arange(k)[:, None, None]).any((1, 2))) | ((target == np.arange(k)[:, None, None]).any((1, 2)))
    return np.where(present, dice, np.nan), np.where(present, iou, np.nan)


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.int64, (2, 9, 7), elements=st.integers(0, 3)),
       hnp.arrays(np.int64, (2, 9, 7), elements=st.integers(0, 3)))
def test_matches_segmentation_models_pytorch_metrics(pred, target):
    pred2d, target2d = pred.reshape(18, 7), target.reshape(18, 7)
    dice, iou = _smp_scores(pred2d, target2d, 4)
    np.testing.assert_allclose(dice_per_class(pred, target, 4), dice, atol=1e-9)
    np.testing.assert_allclose(iou_per_class(pred, target, 4), iou, atol=1e-9)
    assert pixel_accuracy(pred, target) == pytest.approx((pred == target).mean())


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.int64, (6, 6), elements=st.integers(0, 2)),
       hnp.arrays(np.int64, (6, 6), elements=st.integers(0, 2)))
def test_dice_and_iou_are_related_by_their_formula(pred, target):
    dice, iou = dice_per_class(pred, target, 3), iou_per_class(pred, target, 3)
    np.testing.assert_allclose(dice, 2 * iou / (1 + iou))


def test_scores_report_null_for_classes_absent_from_the_target():
    target = np.zeros((4, 4), np.int64)
    target[0, 0] = 2
    scores = SegmentationScores.from_confusion(confusion_matrix(target, target, 3))
    named = scores.by_name(("background", "cytoplasm", "nucleus"))
    assert named["dice"] == {"background": 1.0, "cytoplasm": None, "nucleus": 1.0}
    assert scores.mean_foreground_dice == 1.0
