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


def _drawn_cells() -> tuple[np.ndarray, np.ndarray]:
    """A small drawn field of three cells (pale cytoplasm, dark nuclei) and its mask: what the report
    shows the student's overlay on. Only the contract test's random image decides points."""
    rows, cols = np.mgrid[0:96, 0:128]
    mask = np.zeros((96, 128), np.int64)
    for (r, c, cyto, nucleus) in [(30, 34, 24, 9), (60, 86, 28, 11), (72, 30, 18, 7)]:
        distance = np.hypot((rows - r) / 1.15, cols - c)
        mask[(distance < cyto) & (mask == 0)] = 1
        mask[distance < nucleus] = 2
    colours = np.array([[0.94, 0.92, 0.89], [0.72, 0.82, 0.86], [0.36, 0.27, 0.52]], np.float32)
    image = np.moveaxis(colours[mask], -1, 0) + np.random.default_rng(5).normal(0, 0.02, (3, 96, 128))
    return np.clip(image, 0, 1).astype(np.float32), mask


SAMPLE, SAMPLE_MASK = _drawn_cells()
overlay_call = call("o.overlay", "overlay", IMAGE, MASK, timeout=30)
sample_call = call("o.overlay_sample", "overlay", SAMPLE, SAMPLE_MASK, timeout=30)


@register(TESTS, id="overlay.contract", name="overlay: uint8 RGB, background untouched, classes coloured",
          points=3, tag="overlay", calls=[overlay_call, sample_call],
          hint="Return uint8 (H, W, 3); copy the image where the mask is 0; blend class 1 and class 2 pixels "
               "towards two different colours.")
def _overlay(answers):
    out = np.asarray(answers.value("o.overlay", "overlay(image, mask)"))
    if out.shape != (40, 48, 3) or out.dtype != np.uint8:
        raise Failure(f"overlay returned {out.dtype} {out.shape}; expected uint8 (40, 48, 3)")
    answers.keep("overlay", _for_display(answers, out))
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


def _for_display(answers, contract_output: np.ndarray) -> np.ndarray:
    """The overlay of the drawn cells when that call gave an image, else the contract test's output."""
    sample = answers.outcome("o.overlay_sample")
    if sample.ok and np.shape(sample.value) == (96, 128, 3):
        return np.asarray(sample.value).astype(np.uint8)
    return contract_output
