"""Scoring a trained model's labels on the hidden held-out set, shared by every suite that has one:
per-class Dice and IoU, what the report keeps, and the credit on the assignment's curve."""

from __future__ import annotations

import dataclasses

import numpy as np

from grader.scoring.segmentation import per_class
from grader.suites.base import Partial

CLASSES = ("background", "cytoplasm", "nucleus")


def score_heldout(answers, labels, target: np.ndarray, curve, reference: float | None = None,
                  who: str = "") -> Partial:
    """`labels`: the verifier's argmax per held-out image; `target`: every mask, flattened and joined.
    `curve` is the assignment's HeldoutConfig; `reference` replaces its reference Dice (a curve per
    encoder); `who` names the model in the message ("resnet50: ...")."""
    if reference is not None:
        curve = dataclasses.replace(curve, reference_dice=reference)
    pred = np.concatenate([label.ravel() for label in labels])
    dice, iou = per_class(pred, target, len(CLASSES)), per_class(pred, target, len(CLASSES), iou=True)
    mean_fg = float(np.nanmean(dice[1:]))
    answers.keep("predictions", list(labels))  # for the report's sample grid; images and masks stay here
    answers.keep("dice", dict(zip(CLASSES, dice.tolist())))
    answers.keep("iou", dict(zip(CLASSES, iou.tolist())))
    answers.keep("reference_dice", curve.reference_dice)
    fraction = curve.credit(mean_fg)
    whose = f"the {who} reference's" if who else "the reference's"
    summary = (f"{who + ': ' if who else ''}mean foreground Dice {mean_fg:.3f} (cytoplasm {dice[1]:.3f}, nucleus "
               f"{dice[2]:.3f}) is {mean_fg / curve.reference_dice:.0%} of {whose} {curve.reference_dice:.3f}")
    if fraction < 1:
        return Partial(fraction, f"{summary}; full marks from {curve.full_fraction:.0%}, none below "
                                 f"{curve.floor_fraction:.0%}.")
    return Partial(1.0, summary + ".")
