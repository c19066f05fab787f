"""Loading a split and augmenting image and mask together."""

import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from grader.execution import DataDir, Rng, call
from grader.suites import Failure, register

NAMES = ["b_07", "a_12", "c_01"]  # written out of order: load_split must sort by file name
SHAPE = (40, 56)


def _write_dataset(root: Path) -> tuple[np.ndarray, np.ndarray]:
    """The dataset, written once (to a temporary folder renamed into place, so graders running side
    by side never read a half-written one); returns what load_split must give for it."""
    rng = np.random.default_rng(515)
    images = rng.integers(0, 256, (len(NAMES), *SHAPE, 3), dtype=np.uint8)
    masks = rng.integers(0, 3, (len(NAMES), *SHAPE), dtype=np.uint8)
    if not root.is_dir():
        root.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=root.parent))
        for split in ("train", "val"):
            (staging / split / "images").mkdir(parents=True)
            (staging / split / "masks").mkdir(parents=True)
            for name, image, mask in zip(NAMES, images, masks):
                Image.fromarray(image).save(staging / split / "images" / f"{name}.png")
                Image.fromarray(mask).save(staging / split / "masks" / f"{name}.png")
        staging.chmod(0o755)  # mkdtemp makes it private
        try:
            staging.rename(root)
        except OSError:  # another grader got there first
            shutil.rmtree(staging, ignore_errors=True)
    order = np.argsort(NAMES)
    return (np.moveaxis(images[order], -1, 1).astype(np.float32) / 255), masks[order].astype(np.int64)


def drawn_pattern():
    """An asymmetric drawing (an L, a bar, a dot) whose mask is carried in the image's first channel."""
    mask = np.zeros((48, 64), np.int64)
    mask[6:34, 8:14] = 1
    mask[28:34, 8:40] = 1
    mask[38:46, 44:50] = 2
    mask[10:13, 52:55] = 2
    image = np.stack([mask / 2, 1 - mask / 2, np.full(mask.shape, 0.25)]).astype(np.float32)
    return image, mask


SEEDS = list(range(12))


def _keeps_the_content(out_image, out_mask, seed):
    """A geometric transform keeps the image's size (or swaps its sides) and most of what it shows:
    each class keeps at least half of its pixels, and the image is not blank."""
    image, mask = drawn_pattern()
    if out_mask.shape not in (mask.shape, mask.shape[::-1]) or out_image.shape[0] != image.shape[0]:
        raise Failure(f"augment turned a {image.shape} image into {out_image.shape} (seed {seed}): a flip, turn or "
                      "shift keeps the size (a quarter turn swaps height and width)")
    if not np.isfinite(out_image).all():
        raise Failure(f"the augmented image holds NaN or infinite values (seed {seed})")
    for label in (1, 2):
        if (out_mask == label).sum() < 0.5 * (mask == label).sum():
            raise Failure(f"after augmentation, class {label} covers far fewer pixels than before (seed {seed}): "
                          "the transform should move the content, not erase it")
    if np.abs(out_image[2] - 0.25).mean() > 0.15:
        raise Failure(f"the augmented image no longer looks like the input (seed {seed}): apply the transform "
                      "to the image's pixels, keeping its values")


def build_tests(assignment):
    tests = []
    root = Path(assignment.hidden_dir) / "suite-data" / "load_split"
    images, masks = _write_dataset(root)
    load = call("d.load_split", "load_split", DataDir(root), "val", timeout=60)

    @register(tests, id="data.load_split_shapes_dtypes", name="load_split: shapes, dtypes and value range", points=2,
              tag="data", calls=[load], hint="Images are float32 (N, 3, H, W) in [0, 1]; masks int64 (N, H, W).")
    def _shapes(answers):
        value = answers.value("d.load_split", "load_split(root, 'val')")
        if not isinstance(value, tuple) or len(value) != 2:
            raise Failure(f"load_split returned {type(value).__name__}; expected a tuple (images, masks)")
        got_images, got_masks = (np.asarray(v) for v in value)
        problems = []
        if got_images.shape != images.shape:
            problems.append(f"images have shape {got_images.shape}, expected {images.shape} (N, 3, H, W)")
        if got_images.dtype != np.float32:
            problems.append(f"images are {got_images.dtype}, expected float32")
        elif not np.isfinite(got_images).all():
            problems.append("images hold NaN or infinite values; every pixel should be a number in [0, 1]")
        elif got_images.size and (got_images.min() < 0 or got_images.max() > 1):
            problems.append(f"image values span [{got_images.min():.3g}, {got_images.max():.3g}], expected [0, 1]")
        if got_masks.shape != masks.shape:
            problems.append(f"masks have shape {got_masks.shape}, expected {masks.shape} (N, H, W)")
        if got_masks.dtype != np.int64:
            problems.append(f"masks are {got_masks.dtype}, expected int64")
        if problems:
            raise Failure("; ".join(problems))

    @register(tests, id="data.load_split_order_and_labels", name="load_split: pairs sorted by name, labels kept",
              points=2, tag="data", calls=[load],
              hint="Pair images and masks by file name and sort by it; scale 8-bit pixels by 255, not by the maximum.")
    def _order(answers):
        got_images, got_masks = (np.asarray(v) for v in answers.value("d.load_split", "load_split(root, 'val')"))
        if got_images.shape != images.shape or got_masks.shape != masks.shape:
            raise Failure("shapes differ from the specification (see data.load_split_shapes_dtypes)")
        if not np.allclose(got_images, images, atol=1 / 255):
            raise Failure("the images are not in sorted file-name order, or their values are scaled differently")
        if not np.array_equal(got_masks, masks):
            raise Failure("the masks do not match their images in sorted file-name order, or labels were changed")

    image, mask = drawn_pattern()
    augments = [call(f"d.augment{s}", "augment", image, mask, Rng(1000 + s), timeout=30) for s in SEEDS]

    def outputs(answers):
        pairs = []
        for s in SEEDS:
            value = answers.value(f"d.augment{s}", "augment(image, mask, rng)")
            if not isinstance(value, tuple) or len(value) != 2:
                raise Failure(f"augment returned {type(value).__name__}; expected a tuple (image, mask)")
            pairs.append((np.asarray(value[0]), np.asarray(value[1])))
            if pairs[-1][0].ndim == 3 and pairs[-1][0].shape[1:] == pairs[-1][1].shape:
                _keeps_the_content(*pairs[-1], s)
        return pairs

    @register(tests, id="data.augment_keeps_alignment", name="augment: image and mask move together", points=3,
              tag="data", calls=augments,
              hint="Draw one random transform and apply the very same one to the image and to the mask.")
    def _aligned(answers):
        for k, (out_image, out_mask) in enumerate(outputs(answers)):
            if out_image.shape[1:] != out_mask.shape or out_image.ndim != 3:
                raise Failure(f"augment returned image {out_image.shape} and mask {out_mask.shape}; "
                              "expected (C, H, W) and (H, W) of the same size")

            carried = np.rint(out_image[0] * 2).astype(np.int64)
            agreement = float((carried == out_mask).mean())
            if agreement < 0.97:
                raise Failure(f"after augmentation only {agreement:.0%} of pixels still match their mask "
                              f"(seed {k}): the image and the mask were transformed differently")

    @register(tests, id="data.augment_types_and_randomness", name="augment: dtypes, labels and randomness", points=2,
              tag="data", calls=augments,
              hint="Keep float32 images and int64 masks with labels 0, 1, 2, and make the transform depend on rng.")
    def _types(answers):
        pairs = outputs(answers)
        for out_image, out_mask in pairs:
            if out_image.dtype != np.float32 or out_mask.dtype != np.int64:
                raise Failure(f"augment returned {out_image.dtype} and {out_mask.dtype}; expected float32 and int64")
            if not set(np.unique(out_mask).tolist()) <= {0, 1, 2}:
                raise Failure(f"the augmented mask holds labels {sorted(np.unique(out_mask).tolist())}: "
                              "interpolating a mask invents labels; resample it by nearest neighbour")
        changed = sum(not (o.shape == mask.shape and np.array_equal(o, mask)) for _, o in pairs)
        if changed < len(pairs) // 2:
            raise Failure(f"only {changed} of {len(pairs)} differently seeded calls changed the data: "
                          "the transform should usually do something")
        if len({o.tobytes() for _, o in pairs}) < 3:
            raise Failure("different random generators gave the same result: draw the transform from rng")

    return tests
