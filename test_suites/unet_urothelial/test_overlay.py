"""Overlays: the image where there is background, two distinct colours for cytoplasm and nucleus."""

import numpy as np

from grader.execution import call
from grader.suites import Failure, register

TESTS = []
_rng = np.random.default_rng(31)
IMAGE = _rng.random((3, 40, 48)).astype(np.float32)
MASK = np.zeros((40, 48), np.int64)
MASK[5:20, 5:25] = 1
MASK[10:15, 10:18] = 2
MASK[25:35, 30:44] = 2

overlay_call = call("o.overlay", "overlay", IMAGE, MASK, timeout=30)


@register(TESTS, id="overlay.contract", name="overlay: uint8 RGB, background untouched, classes coloured",
          points=3, tag="overlay", calls=[overlay_call],
          hint="Return uint8 (H, W, 3); copy the image where the mask is 0; blend class 1 and class 2 pixels "
               "towards two different colours.")
def _overlay(answers):
    out = np.asarray(answers.value("o.overlay", "overlay(image, mask)"))
    if out.shape != (40, 48, 3) or out.dtype != np.uint8:
        raise Failure(f"overlay returned {out.dtype} {out.shape}; expected uint8 (40, 48, 3)")
    answers.keep("overlay", out)
    original = np.moveaxis(IMAGE, 0, -1) * 255
    background = np.abs(out[MASK == 0].astype(float) - original[MASK == 0])
    if background.max() > 1.0:
        raise Failure("background pixels (class 0) differ from the image; leave them as they are")
    shift = {c: (out[MASK == c].astype(float) - original[MASK == c]).mean(0) for c in (1, 2)}
    for c in (1, 2):
        if np.abs(shift[c]).max() < 10:
            raise Failure(f"class {c} pixels look like the plain image; blend them towards a colour")
    if np.abs(shift[1] - shift[2]).max() < 20:
        raise Failure("cytoplasm and nucleus are tinted alike; give the two classes distinct colours")
