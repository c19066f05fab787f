"""The submitted model.pt on the hidden held-out images: Dice computed here, scored on a curve."""

import numpy as np

from grader.assignments import load_heldout
from grader.execution import Ref, call, load_weights_call
from grader.scoring.segmentation import per_class
from grader.suites import Failure, Partial, register

CLASSES = ("background", "cytoplasm", "nucleus")


def build_tests(assignment):
    tests = []
    heldout = load_heldout(assignment)
    groups = heldout.groups()
    calls = [call("h.build", "build_model", store_as="heldout_model", timeout=120),
             load_weights_call("h.load", "heldout_model")]
    calls += [call(f"h.predict{k}", "predict", Ref("heldout_model"), np.stack([heldout.images[i] for i in group]),
                   timeout=assignment.time.call_seconds) for k, group in enumerate(groups)]
    curve = assignment.heldout

    @register(tests, id="heldout.mean_foreground_dice", name="Trained model: Dice on the hidden held-out set",
              points=10, tag="heldout", calls=calls, visibility="after_due_date",
              hint="Train longer, check your augmentation keeps masks aligned, and make sure predict pads "
                   "images whose sides are not multiples of 32 and crops the result back.")
    def _heldout(answers):
        answers.value("h.build", "build_model()")
        answers.value("h.load", "loading your model.pt into build_model() (save model.state_dict() as model.pt "
                                "beside your notebook)")
        preds, targets, samples = [], [], {}
        for k, group in enumerate(groups):
            labels = np.asarray(answers.value(f"h.predict{k}", "predict(model, images)"))
            expected = (len(group), *heldout.masks[group[0]].shape)
            if labels.shape != expected:
                raise Failure(f"predict returned labels of shape {labels.shape} for images of shape "
                              f"({len(group)}, 3, {expected[1]}, {expected[2]}); expected {expected}")
            preds += [labels.ravel()]
            targets += [np.concatenate([heldout.masks[i].ravel() for i in group])]
            samples.update({i: label.clip(0, 255).astype(np.uint8) for i, label in zip(group, labels)})
        # For the report's sample grid: predictions by held-out index (images and masks stay here).
        answers.keep("predictions", [samples[i] for i in range(len(heldout.images))])
        dice = per_class(np.concatenate(preds), np.concatenate(targets), 3)
        iou = per_class(np.concatenate(preds), np.concatenate(targets), 3, iou=True)
        mean_fg = float(np.nanmean(dice[1:]))
        answers.keep("dice", dict(zip(CLASSES, dice.tolist())))
        answers.keep("iou", dict(zip(CLASSES, iou.tolist())))
        answers.keep("reference_dice", curve.reference_dice)
        fraction = curve.credit(mean_fg)
        summary = (f"mean foreground Dice {mean_fg:.3f} (cytoplasm {dice[1]:.3f}, nucleus {dice[2]:.3f}) is "
                   f"{mean_fg / curve.reference_dice:.0%} of the reference's {curve.reference_dice:.3f}")
        if fraction < 1:
            return Partial(fraction, f"{summary}; full marks from {curve.full_fraction:.0%}, none below "
                                     f"{curve.floor_fraction:.0%}.")
        return Partial(1.0, summary + ".")

    return tests
