"""The hidden held-out set: synthetic images drawn from the assignment's secret and cached in its
git-ignored `hidden/` folder, or an instructor's folder of real images and masks. Images cross
into the sandbox; masks never do."""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from grader.assignments.config import Assignment, AssignmentError
from grader.assignments.secret import ensure_secret
from grader.fileio import make_private, publish_folder


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


def checkout_root(folder: Path) -> Path | None:
    """The project checkout an assignment folder lives in: the nearest parent holding the
    reference package (which the grader's wheel deliberately leaves out)."""
    return next((p for p in Path(folder).resolve().parents if (p / "reference" / "__init__.py").is_file()), None)


@contextlib.contextmanager
def _importable(root: Path | None):
    """`root` on sys.path while the generator is imported, so the installed console script finds
    the checkout's reference package without the checkout being the working directory."""
    added = root is not None and str(root) not in sys.path
    if added:
        sys.path.insert(0, str(root))
    try:
        yield
    finally:
        if added:
            sys.path.remove(str(root))


def _generator(assignment: Assignment):
    root = checkout_root(assignment.folder)
    try:
        with _importable(root):
            return importlib.import_module("reference.synthetic").generate_image
    except ImportError as err:
        where = (f"the reference package of {root} could not be imported ({err}); run `make install` there"
                 if root is not None else
                 f"no project checkout (a folder with reference/__init__.py) holds {assignment.folder}")
        raise AssignmentError(f"the synthetic held-out set of {assignment.folder} is made by the reference "
                              f"package, and {where}. Grade from the project checkout, or copy its hidden/ "
                              "folder here from the machine that made it, or set heldout.folder in "
                              "assignment.toml to a folder of real images and masks") from err


def _generate(assignment: Assignment, secret: bytes, folder: Path) -> None:
    generate_image = _generator(assignment)
    spec = assignment.heldout
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    entropy = int.from_bytes(secret, "big")
    for i in range(spec.count):
        size = spec.sizes[i % len(spec.sizes)]
        image, mask = generate_image(np.random.default_rng([entropy, 7, i]), size)
        Image.fromarray(image).save(folder / "images" / f"heldout_{i:03d}.png")
        Image.fromarray(mask).save(folder / "masks" / f"heldout_{i:03d}.png")


def _cache_key(assignment: Assignment, secret: bytes) -> str:
    """Names the cached set by a digest of what made it, never by the secret itself."""
    spec = assignment.heldout
    made_of = b"heldout\0" + secret + repr((spec.count, spec.sizes)).encode()
    return hashlib.sha256(made_of).hexdigest()[:16]


def synthetic_folder(assignment: Assignment) -> Path:
    """The cached synthetic set, generated the first time it is needed: into a staging folder that
    is renamed into place (concurrent graders never read half of one) and removed on failure. Only
    the grader's user may read it."""
    secret = ensure_secret(assignment)
    folder = assignment.hidden_dir / f"heldout-{_cache_key(assignment, secret)}"
    if (folder / "masks").is_dir():
        make_private(folder)
        return folder
    return publish_folder(folder, lambda staging: _generate(assignment, secret, staging), ".heldout-staging-",
                          mode=0o700)


def _read_image(path: Path, where: str) -> np.ndarray:
    try:
        with Image.open(path) as image:
            return np.moveaxis(np.asarray(image.convert("RGB")), -1, 0).astype(np.float32) / 255
    except (OSError, ValueError) as err:
        raise AssignmentError(f"{where}: {path.name} is not a readable image ({err})") from err


def _read_mask(path: Path, shape: tuple[int, int], classes: int, where: str) -> np.ndarray:
    try:
        with Image.open(path) as image:
            mask = np.asarray(image)
    except (OSError, ValueError) as err:
        raise AssignmentError(f"{where}: {path.name} is not a readable image ({err})") from err
    if mask.ndim != 2 or mask.dtype.kind not in "ui":
        raise AssignmentError(f"{where}: {path.name} must be a single-channel mask of class indices, not an image "
                              f"of shape {mask.shape} and type {mask.dtype}")
    if mask.shape != shape:
        raise AssignmentError(f"{where}: {path.name} is {mask.shape[0]}×{mask.shape[1]} but its image is "
                              f"{shape[0]}×{shape[1]}")
    if mask.size and (mask.min() < 0 or mask.max() >= classes):
        raise AssignmentError(f"{where}: {path.name} holds label {int(mask.max())}; labels must be 0 to "
                              f"{classes - 1} (heldout.classes = {classes})")
    return mask.astype(np.int64)


def _instructor_folder(assignment: Assignment) -> Path:
    folder = (assignment.folder / assignment.heldout.folder).resolve()
    where = f"{assignment.folder / 'assignment.toml'}: heldout.folder {assignment.heldout.folder!r}"
    if not folder.is_dir():
        raise AssignmentError(f"{where} is not a folder (it is read relative to the assignment folder)")
    for sub in ("images", "masks"):
        if not (folder / sub).is_dir():
            raise AssignmentError(f"{where} has no {sub}/ folder; the layout is images/NAME.png and masks/NAME.png")
    images = {p.stem for p in (folder / "images").glob("*.png")}
    masks = {p.stem for p in (folder / "masks").glob("*.png")}
    if not images:
        raise AssignmentError(f"{where} holds no images/*.png")
    if images != masks:
        odd = sorted(images ^ masks)[0]
        side = "images" if odd in images else "masks"
        raise AssignmentError(f"{where}: {side}/{odd}.png has no partner in "
                              f"{'masks' if side == 'images' else 'images'}/; every image needs a mask of the "
                              "same name")
    return folder


def load_heldout(assignment: Assignment) -> HeldoutSet:
    """The held-out set: the instructor's folder when `heldout.folder` names one, else the synthetic
    set drawn from the assignment's secret (drawing the secret itself on first use)."""
    real = bool(assignment.heldout.folder)
    folder = _instructor_folder(assignment) if real else synthetic_folder(assignment)
    where = f"heldout.folder {assignment.heldout.folder!r}" if real else str(folder)
    names, images, masks = [], [], []
    for path in sorted((folder / "images").glob("*.png")):
        image = _read_image(path, where)
        names.append(path.stem)
        images.append(image)
        masks.append(_read_mask(folder / "masks" / path.name, image.shape[1:], assignment.heldout.classes, where))
    return HeldoutSet(tuple(names), tuple(images), tuple(masks))
