"""Segmentation metrics from one confusion matrix: per-class Dice and IoU, pixel accuracy.

Dice and IoU are computed per class over all pixels given (micro over images, one value per class);
a class present in neither prediction nor target has no defined score and gets `nan`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def confusion_matrix(pred: np.ndarray, target: np.ndarray, num_classes: int) -> np.ndarray:
    """int64 `(K, K)`: rows are target classes, columns predicted classes."""
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"pred has shape {pred.shape} but target has {target.shape}; they must match")
    index = target.astype(np.int64).ravel() * num_classes + pred.astype(np.int64).ravel()
    return np.bincount(index, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / np.maximum(denominator, 1), np.nan).astype(np.float64)


def dice_from_confusion(cm: np.ndarray) -> np.ndarray:
    tp = np.diag(cm)
    return _ratio(2 * tp, cm.sum(0) + cm.sum(1))


def iou_from_confusion(cm: np.ndarray) -> np.ndarray:
    tp = np.diag(cm)
    return _ratio(tp, cm.sum(0) + cm.sum(1) - tp)


def dice_per_class(pred: np.ndarray, target: np.ndarray, num_classes: int) -> np.ndarray:
    """float64 `(num_classes,)`: `2|P∩T| / (|P|+|T|)` per class; `nan` where a class is in neither."""
    return dice_from_confusion(confusion_matrix(pred, target, num_classes))


def iou_per_class(pred: np.ndarray, target: np.ndarray, num_classes: int) -> np.ndarray:
    """float64 `(num_classes,)`: `|P∩T| / |P∪T|` per class; `nan` where a class is in neither."""
    return iou_from_confusion(confusion_matrix(pred, target, num_classes))


def pixel_accuracy(pred: np.ndarray, target: np.ndarray) -> float:
    """The fraction of elements where prediction and target agree."""
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"pred has shape {pred.shape} but target has {target.shape}; they must match")
    return float((pred == target).mean())


@dataclass(frozen=True)
class SegmentationScores:
    """Scores of a whole split, from its accumulated confusion matrix."""

    dice: np.ndarray
    iou: np.ndarray
    accuracy: float
    present: np.ndarray  # classes that occur in the target

    @classmethod
    def from_confusion(cls, cm: np.ndarray) -> "SegmentationScores":
        return cls(dice_from_confusion(cm), iou_from_confusion(cm),
                   float(np.trace(cm) / max(cm.sum(), 1)), cm.sum(1) > 0)

    @property
    def mean_foreground_dice(self) -> float:
        """Mean Dice over the foreground classes (all but class 0) present in the target."""
        values = [d for d, p in zip(self.dice[1:], self.present[1:]) if p]
        return float(np.mean(values)) if values else float("nan")

    def by_name(self, class_names: tuple[str, ...]) -> dict[str, dict[str, float | None]]:
        """Dice and IoU keyed by class name, `None` for classes absent from the target."""
        def value(array: np.ndarray, k: int) -> float | None:
            return float(array[k]) if self.present[k] else None
        return {"dice": {n: value(self.dice, k) for k, n in enumerate(class_names)},
                "iou": {n: value(self.iou, k) for k, n in enumerate(class_names)}}
