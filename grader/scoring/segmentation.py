"""The grader's own segmentation metrics, an oracle independent of any submission and of the
reference solution: per-class Dice and IoU from one confusion matrix over all pixels given."""

from __future__ import annotations

import numpy as np


def confusion(pred: np.ndarray, target: np.ndarray, num_classes: int) -> np.ndarray:
    """int64 `(K, K)`, rows target, columns prediction; labels outside 0..K-1 count as wrong."""
    pred, target = np.asarray(pred).ravel(), np.asarray(target).ravel().astype(np.int64)
    pred = np.where((pred >= 0) & (pred < num_classes), pred, -1).astype(np.int64)
    valid = pred >= 0
    cm = np.bincount(target[valid] * num_classes + pred[valid], minlength=num_classes ** 2)
    cm = cm.reshape(num_classes, num_classes)
    cm_invalid = np.bincount(target[~valid], minlength=num_classes)
    return cm, cm_invalid


def per_class(pred: np.ndarray, target: np.ndarray, num_classes: int, iou: bool = False) -> np.ndarray:
    """Dice (or IoU) per class; `nan` where a class is in neither prediction nor target."""
    cm, missed = confusion(pred, target, num_classes)
    tp = np.diag(cm).astype(np.float64)
    predicted, actual = cm.sum(0), cm.sum(1) + missed
    total = predicted + actual
    with np.errstate(invalid="ignore", divide="ignore"):
        values = tp / (total - tp) if iou else 2 * tp / total
    return np.where(total > 0, values, np.nan)
