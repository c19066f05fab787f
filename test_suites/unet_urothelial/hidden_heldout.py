"""The trained model on the hidden held-out set, and `predict` on images of its own.

The held-out images never enter the submission's sandbox: the ResNet U-Net's one export (with
model.pt loaded, see test_architecture.py) is run on them by the grader's verifier, padded to a
multiple of 32 the way the reference's predict pads, and its argmax is scored here. `predict` is
checked apart, on a few drawn images of odd sizes, for agreeing with that same graph's argmax."""


import numpy as np

from grader.assignments import load_heldout
from grader.execution import Ref, call
from grader.suites import Failure, register, sibling_module
from grader.suites.heldout import score_heldout
from grader.verifier import LabelSet, VerificationFailed

CHECK_SIZES = ((75, 110), (75, 110), (130, 97))  # odd sizes, H, W >= 64: predict must pad and crop
PREDICT_PADS = ("reference", "replicate-end", "zeros-end", "reflect-center", "replicate-center", "zeros-center")
AGREEMENT = 0.95  # of pixels, under the padding nearest the submission's (which then agrees on all of them)


def _architecture():
    """test_architecture.py as `load_suite` loaded it (test files load before hidden ones): its ResNet
    U-Net calls and verifier job are shared, so the model is built, exported and verified once."""
    return sibling_module(__file__, "test_architecture")


CYTOPLASM_STAIN = np.array([0.3, 0.9, 0.5], np.float32)  # optical density per RGB channel
NUCLEUS_STAIN = np.array([0.9, 1.0, 0.4], np.float32)


def _inside(distance):
    """1 inside an ellipse (`distance` < 1), 0 outside, a soft edge between: (H, W, 1)."""
    return (np.clip(1.2 - distance, 0, 0.2) * 5)[..., None]


def draw_cells(rng, size):
    """A float32 (3, H, W) image of stained cells on a light background: cytoplasm bodies with darker
    nuclei, uneven stain and noise. Drawn here, so they may enter the sandbox."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    od = np.zeros((h, w, 3), np.float32)
    for _ in range(int(rng.integers(4, 9))):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry, rx = rng.uniform(10, 22, 2)
        angle = rng.uniform(0, np.pi)
        dy, dx = yy - cy, xx - cx
        u, v = dy * np.cos(angle) + dx * np.sin(angle), -dy * np.sin(angle) + dx * np.cos(angle)
        body, nucleus = (u / ry) ** 2 + (v / rx) ** 2, (u / (ry * 0.4)) ** 2 + (v / (rx * 0.4)) ** 2
        od += _inside(body) * rng.uniform(0.25, 0.45) * CYTOPLASM_STAIN
        od += _inside(nucleus) * rng.uniform(0.8, 1.2) * NUCLEUS_STAIN
    rgb = np.exp(-od) * rng.uniform(0.85, 0.98) + rng.normal(0, 0.02, od.shape).astype(np.float32)
    return np.moveaxis(np.clip(rgb, 0, 1), -1, 0).astype(np.float32)


_check_rng = np.random.default_rng(5150)
CHECK_IMAGES = tuple(draw_cells(_check_rng, size) for size in CHECK_SIZES)


def _groups(images):
    """Indices of images that share a size, so each group is one batched call."""
    by_size = {}
    for i, image in enumerate(images):
        by_size.setdefault(image.shape[1:], []).append(i)
    return list(by_size.values())


def _verified(arch, answers):
    graph, verification, _, _ = arch.verified(answers, "resnet")
    return verification


def build_tests(assignment):
    tests = []
    arch = _architecture()
    heldout = load_heldout(assignment)
    arch.add_labels("resnet", LabelSet("heldout", tuple(heldout.images), ("reference",)))
    arch.add_labels("resnet", LabelSet("predict_check", CHECK_IMAGES, PREDICT_PADS))
    network_calls = arch.CALLS["resnet"]
    load_id = arch.LOAD_RESNET.id
    curve = assignment.heldout
    target = np.concatenate([mask.ravel() for mask in heldout.masks])

    @register(tests, id="heldout.mean_foreground_dice", name="Trained model: Dice on the hidden held-out set",
              points=8, tag="heldout", calls=network_calls, visibility="after_due_date",
              hint="Train longer, check your augmentation keeps masks aligned, and save the weights of the model "
                   "that did best on the validation split.")
    def _heldout(answers):
        answers.value(arch.NETWORKS["resnet"][0].id, "build_model()")
        loaded = answers.value(load_id, "loading your model.pt into build_model() (save model.state_dict() as "
                                        "model.pt beside your notebook)")
        if isinstance(loaded, dict) and loaded.get("absent"):
            raise Failure("no model.pt was found beside your notebook: save model.state_dict() as model.pt "
                          "beside your notebook, so the grader can load your trained weights into build_model()")
        try:
            labels = _verified(arch, answers).label_set("heldout")["reference"]
        except VerificationFailed as err:
            raise Failure(f"your trained model could not be scored: {err}")
        return score_heldout(answers, labels, target, curve)

    groups = _groups(CHECK_IMAGES)
    predict_calls = [call(f"h.predict{k}", "predict", Ref(arch.NETWORKS["resnet"][0].store_as),
                          np.stack([CHECK_IMAGES[i] for i in group]), timeout=assignment.time.call_seconds)
                     for k, group in enumerate(groups)]

    @register(tests, id="heldout.predict_agrees", name="predict: labels of any size, as the network gives them",
              points=2, tag="heldout", calls=network_calls + predict_calls, visibility="after_due_date",
              hint="predict should put the model in eval mode, pad each image so both sides are multiples of 32, "
                   "run the model without gradients, crop the logits back to the image and take the argmax over "
                   "the class axis.")
    def _predict(answers):
        try:
            expected = _verified(arch, answers).label_set("predict_check")
        except VerificationFailed as err:
            raise Failure(f"predict could not be checked: {err}")
        agree, total = {pad: 0 for pad in PREDICT_PADS}, 0
        for k, group in enumerate(groups):
            labels = np.asarray(answers.value(f"h.predict{k}", "predict(model, images)"))
            shape = (len(group), *CHECK_IMAGES[group[0]].shape[1:])
            if labels.shape != shape:
                raise Failure(f"predict returned labels of shape {labels.shape} for images of shape "
                              f"({len(group)}, 3, {shape[1]}, {shape[2]}); expected {shape}")
            if labels.dtype.kind not in "iu":
                raise Failure(f"predict returned {labels.dtype} values; expected integer class labels")
            for pad in PREDICT_PADS:
                agree[pad] += sum(int((labels[j] == expected[pad][i]).sum()) for j, i in enumerate(group))
            total += labels.size
        best = max(agree.values()) / total
        if best < AGREEMENT:
            raise Failure(f"predict's labels match the argmax of your network's own logits on {best:.1%} of the "
                          f"pixels of images whose sides are not multiples of 32; expected at least {AGREEMENT:.0%}")

    return tests
