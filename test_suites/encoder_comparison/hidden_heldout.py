"""Each trained model on the hidden held-out set, on a curve of its own.

The held-out images never enter the submission's sandbox: each model's one export (with its
model_ENCODER.pt loaded, see test_encoders.py) is run on them by the grader's verifier, padded to a
multiple of 32 the way the reference's predict pads, and its argmax is scored here. Each encoder's
curve is centred on the reference's own Dice with that encoder ([suite_settings]
heldout_reference_dice), so a ResNet18 is not held to a ResNet50's figure or the reverse."""


import numpy as np

from grader.assignments import AssignmentError, load_heldout
from grader.suites import Failure, register, sibling_module
from grader.suites.heldout import score_heldout
from grader.verifier import LabelSet, VerificationFailed


def _encoders():
    """test_encoders.py as `load_suite` loaded it (test files load before hidden ones)."""
    return sibling_module(__file__, "test_encoders")


def reference_dice(assignment, encoders):
    """[suite_settings] heldout_reference_dice: a number in (0, 1] for every encoder, checked here."""
    where = f"{assignment.folder / 'assignment.toml'}: suite_settings.heldout_reference_dice"
    table = (getattr(assignment, "suite_settings", None) or {}).get("heldout_reference_dice")
    if not isinstance(table, dict):
        raise AssignmentError(f"{where} is missing: give the reference's held-out Dice per encoder, e.g. "
                              "{ resnet18 = 0.89, resnet34 = 0.90, resnet50 = 0.89 }")
    if set(table) != set(encoders):
        raise AssignmentError(f"{where} has the keys {', '.join(sorted(map(str, table)))}; expected exactly "
                              f"{', '.join(encoders)}")
    for key, value in table.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
            raise AssignmentError(f"{where}.{key} must be a Dice between 0 and 1, not {value!r}")
    return {key: float(value) for key, value in table.items()}


def build_tests(assignment):
    tests = []
    enc = _encoders()
    references = reference_dice(assignment, enc.ENCODERS)
    heldout = load_heldout(assignment)
    for key in enc.ENCODERS:
        enc.add_labels(key, LabelSet("heldout", tuple(heldout.images), ("reference",)))
    target = np.concatenate([mask.ravel() for mask in heldout.masks])
    for key in enc.ENCODERS:
        _register(tests, enc, key, references[key], assignment.heldout, target)
    return tests


def _register(tests, enc, key, reference, curve, target):
    label, weights = enc.LABELS[key], enc.weights_file(key)

    @register(tests, id=f"heldout.{key}_dice", name=f"Trained {key} U-Net: Dice on the hidden held-out set",
              points=3, tag="heldout", calls=enc.CALLS[key], visibility="after_due_date",
              hint="Train longer, check your augmentation keeps masks aligned, and save the weights of the epoch "
                   "that did best on the validation split.")
    def _heldout(answers):
        if not enc.loaded(answers, key):
            raise Failure(f"no {weights} was found beside your notebook: save model.state_dict() of {label} as "
                          f"{weights}, so the grader can load your trained weights")
        _, verification, _ = enc.verified(answers, key)
        try:
            labels = verification.label_set("heldout")["reference"]
        except VerificationFailed as err:
            raise Failure(f"your trained {key} model could not be scored: {err}")
        return score_heldout(answers, labels, target, curve, reference, who=key)

    return tests
