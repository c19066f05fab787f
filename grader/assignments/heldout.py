"""The hidden held-out set: made once on the instructor's side from the hidden seed, kept in the
assignment's git-ignored `hidden/` folder. Images cross into the sandbox; masks never do."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from grader.assignments.config import Assignment, AssignmentError


@dataclass(frozen=True)
class HeldoutSet:
    names: tuple[str, ...]
    images: tuple[np.ndarray, ...]  # float32 (3, H, W) in [0, 1]
    masks: tuple[np.ndarray, ...]  # int64 (H, W)

    def groups(self) -> list[list[int]]:
        """Indices of images that share a size, so each group is one batched call."""
        by_size: dict[tuple[int, int], list[int]] = {}
        for i, mask in enumerate(self.masks):
            by_size.setdefault(mask.shape, []).append(i)
        return list(by_size.values())


def _generate(assignment: Assignment, folder: Path) -> None:
    try:
        from reference.synthetic import generate_image
    except ImportError as err:
        raise AssignmentError(f"{folder} is missing and the reference package that makes it is not installed; "
                              "copy the hidden folder from the instructor's machine") from err
    spec = assignment.heldout
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    for i in range(spec.count):
        size = spec.sizes[i % len(spec.sizes)]
        image, mask = generate_image(np.random.default_rng([spec.seed, 7, i]), size)
        Image.fromarray(image).save(folder / "images" / f"heldout_{i:03d}.png")
        Image.fromarray(mask).save(folder / "masks" / f"heldout_{i:03d}.png")


def load_heldout(assignment: Assignment) -> HeldoutSet:
    """The held-out set, generated into `hidden/heldout-SEED` the first time it is needed (into a
    temporary folder renamed into place, so concurrent graders never read half of it)."""
    folder = assignment.hidden_dir / f"heldout-{assignment.heldout.seed}-{assignment.heldout.count}"
    if not (folder / "masks").is_dir():
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=folder.parent))
        _generate(assignment, staging)
        staging.chmod(0o755)  # mkdtemp makes it private
        try:
            staging.rename(folder)
        except OSError:  # another grader made it first
            shutil.rmtree(staging, ignore_errors=True)
    names, images, masks = [], [], []
    for path in sorted((folder / "images").glob("*.png")):
        names.append(path.stem)
        images.append(np.moveaxis(np.asarray(Image.open(path).convert("RGB")), -1, 0).astype(np.float32) / 255)
        masks.append(np.asarray(Image.open(folder / "masks" / path.name)).astype(np.int64))
    return HeldoutSet(tuple(names), tuple(images), tuple(masks))
