"""Loading segmentation datasets laid out as `SPLIT/images/NAME.*` and `SPLIT/masks/NAME.*`.

Besides the embedded 8-bit RGB PNGs, real microscopy data is read too: 8- and 16-bit PNG and TIFF,
single-channel and multi-channel (fluorescence) images, and masks stored either as class indices
or as colours. A dataset folder may hold a `dataset.toml` describing its classes and mask colours:

    class_names = ["background", "cytoplasm", "nucleus"]
    intensity = "percentile"          # dtype | minmax | percentile
    [mask_colors]                     # only for colour-coded masks
    "0,0,0" = 0
    "0,255,0" = 1
    "255,0,255" = 2
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

CLASS_NAMES = ("background", "cytoplasm", "nucleus")
SPLITS = ("train", "val", "test")
IMAGE_SUFFIXES = (".png", ".tif", ".tiff")
INTENSITY_MODES = ("dtype", "minmax", "percentile")


class DatasetError(ValueError):
    """A dataset folder or file that cannot be read as described; the message says what to fix."""


@dataclass(frozen=True)
class DatasetConfig:
    """How to read one dataset folder: its class names, mask colours and intensity scaling."""

    class_names: tuple[str, ...] = CLASS_NAMES
    mask_colors: dict[tuple[int, int, int], int] = field(default_factory=dict)
    intensity: str = "dtype"

    @classmethod
    def from_folder(cls, root: Path) -> "DatasetConfig":
        """Read `root/dataset.toml` when there is one, else the defaults."""
        path = Path(root) / "dataset.toml"
        if not path.exists():
            return cls()
        try:
            raw = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as err:
            raise DatasetError(f"{path}: not valid TOML ({err}); fix the file or remove it") from err
        unknown = set(raw) - {"class_names", "mask_colors", "intensity"}
        if unknown:
            raise DatasetError(f"{path}: unknown keys {sorted(unknown)}; "
                               "valid keys are class_names, mask_colors, intensity")
        intensity = raw.get("intensity", "dtype")
        if intensity not in INTENSITY_MODES:
            raise DatasetError(f"{path}: intensity = {intensity!r}; use one of {', '.join(INTENSITY_MODES)}")
        colors = {_parse_color(key, path): int(value) for key, value in raw.get("mask_colors", {}).items()}
        return cls(tuple(raw.get("class_names", CLASS_NAMES)), colors, intensity)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def _parse_color(text: str, path: Path) -> tuple[int, int, int]:
    parts = text.split(",")
    if len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
        raise DatasetError(f'{path}: mask colour key {text!r} must look like "R,G,B", e.g. "255,0,255"')
    return tuple(int(p) for p in parts)  # type: ignore[return-value]


def _is_sixteen_bit_colour_png(path: Path) -> bool:
    """Whether the PNG header says 16 bits per sample with more than one sample (grey+alpha, RGB,
    RGBA): Pillow reads those as 8-bit, keeping only the high byte of each value."""
    with open(path, "rb") as handle:
        header = handle.read(26)
    is_png = header[:8] == b"\x89PNG\r\n\x1a\n" and header[12:16] == b"IHDR"
    return is_png and header[24] == 16 and header[25] in (2, 4, 6)


def _read_raw(path: Path) -> tuple[np.ndarray, bool]:
    """The stored array, and whether its last axis holds the channels (RGB samples)."""
    if path.suffix.lower() in (".tif", ".tiff"):
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            return series.asarray(), series.axes.endswith("S")
    if _is_sixteen_bit_colour_png(path):
        raise DatasetError(f"{path}: a 16-bit colour PNG cannot be read at full depth (only its high byte "
                           "would survive); save it as 16-bit TIFF, e.g. tifffile.imwrite(path, array), "
                           "or as 16-bit single-channel PNG files")
    with Image.open(path) as img:
        if img.mode in ("P", "PA"):
            img = img.convert("RGB")
        array = np.asarray(img)
    return array, array.ndim == 3


def _channels_first(raw: np.ndarray, channels_last: bool, path: Path) -> np.ndarray:
    """(H, W) -> (1, H, W); channels-last (H, W, C) -> (C, H, W); (C, H, W) stays."""
    if raw.ndim == 2:
        return raw[None]
    if raw.ndim == 3 and channels_last:
        return np.moveaxis(raw, -1, 0)
    if raw.ndim == 3 and raw.shape[0] <= 8:
        return raw
    raise DatasetError(f"{path}: cannot read an image of shape {raw.shape} as channels; save images "
                       "as (H, W), RGB, or a (C, H, W) stack with at most 8 channels")


def scale_intensity(raw: np.ndarray, mode: str = "dtype") -> np.ndarray:
    """Map raw pixel values to float32 in [0, 1], per channel for the data-driven modes."""
    data = raw.astype(np.float64)
    if mode == "dtype":
        if np.issubdtype(raw.dtype, np.integer):
            return (data / np.iinfo(raw.dtype).max).astype(np.float32)
        if data.min() >= 0 and data.max() <= 1:
            return data.astype(np.float32)
        mode = "minmax"  # float data outside [0, 1] carries no scale of its own
    axes = tuple(range(1, data.ndim))
    if mode == "minmax":
        low, high = data.min(axis=axes, keepdims=True), data.max(axis=axes, keepdims=True)
    elif mode == "percentile":
        low = np.percentile(data, 0.5, axis=axes, keepdims=True)
        high = np.percentile(data, 99.8, axis=axes, keepdims=True)
    else:
        raise DatasetError(f"intensity mode {mode!r} is unknown; use one of {', '.join(INTENSITY_MODES)}")
    return np.clip((data - low) / np.maximum(high - low, 1e-12), 0, 1).astype(np.float32)


def read_image(path: Path, intensity: str = "dtype") -> np.ndarray:
    """An image file as float32 `(C, H, W)` in [0, 1]; an alpha channel of an RGBA PNG is dropped."""
    path = Path(path)
    raw = _channels_first(*_read_raw(path), path)
    if path.suffix.lower() == ".png" and raw.shape[0] in (2, 4):
        raw = raw[:-1]
    return scale_intensity(raw, intensity)


def read_mask(path: Path, mask_colors: dict[tuple[int, int, int], int] | None = None) -> np.ndarray:
    """A mask file as int64 `(H, W)` class indices, mapping colours through `mask_colors` if given."""
    path = Path(path)
    raw, channels_last = _read_raw(path)
    if raw.ndim == 3 and channels_last and raw.shape[-1] in (3, 4):
        rgb = raw[..., :3]
        if mask_colors:
            return _colors_to_classes(rgb, mask_colors, path)
        if not (np.all(rgb[..., 0] == rgb[..., 1]) and np.all(rgb[..., 1] == rgb[..., 2])):
            raise DatasetError(f"{path}: the mask is colour-coded; add a [mask_colors] table to "
                               "dataset.toml mapping each \"R,G,B\" to a class index")
        raw = rgb[..., 0]
    if raw.ndim != 2:
        raise DatasetError(f"{path}: a mask must be one class index per pixel, got shape {raw.shape}")
    if not np.issubdtype(raw.dtype, np.integer):
        raise DatasetError(f"{path}: mask values must be integers, got {raw.dtype}")
    return raw.astype(np.int64)


def _colors_to_classes(rgb: np.ndarray, mask_colors: dict[tuple[int, int, int], int], path: Path) -> np.ndarray:
    keys = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    out = np.full(keys.shape, -1, np.int64)
    for (r, g, b), index in mask_colors.items():
        out[keys == ((r << 16) | (g << 8) | b)] = index
    if (out < 0).any():
        unknown = {tuple(int(v) for v in rgb[y, x]) for y, x in zip(*np.nonzero(out < 0))}
        shown = ", ".join(f'"{r},{g},{b}"' for r, g, b in sorted(unknown)[:5])
        raise DatasetError(f"{path}: colours {shown} are not in [mask_colors]; add them to dataset.toml")
    return out


def _find(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}


def list_pairs(root: Path, split: str) -> list[tuple[str, Path, Path]]:
    """`(name, image_path, mask_path)` for one split, sorted by name; unpaired files are an error."""
    base = Path(root) / split
    if not (base / "images").is_dir() or not (base / "masks").is_dir():
        raise DatasetError(f"{base}: expected folders {split}/images and {split}/masks "
                           f"(make one with `python -m reference data --out {root}`)")
    images, masks = _find(base / "images"), _find(base / "masks")
    missing = sorted(set(images) ^ set(masks))
    if missing:
        raise DatasetError(f"{base}: these names have an image or a mask but not both: {missing[:5]}")
    if not images:
        raise DatasetError(f"{base}/images holds no .png or .tif files")
    return [(name, images[name], masks[name]) for name in sorted(images)]


def load_samples(root: Path, split: str, config: DatasetConfig | None = None
                 ) -> tuple[list[str], list[np.ndarray], list[np.ndarray]]:
    """Names, images and masks of one split, each image at its own size."""
    config = config or DatasetConfig.from_folder(root)
    names, images, masks = [], [], []
    for name, image_path, mask_path in list_pairs(root, split):
        image, mask = read_image(image_path, config.intensity), read_mask(mask_path, config.mask_colors)
        if image.shape[1:] != mask.shape:
            raise DatasetError(f"{image_path}: image is {image.shape[1:]} but its mask is {mask.shape}")
        if mask.min() < 0 or mask.max() >= config.num_classes:
            raise DatasetError(f"{mask_path}: class indices must lie in 0..{config.num_classes - 1}, "
                               f"found {sorted(np.unique(mask).tolist())}; set class_names in dataset.toml")
        names.append(name)
        images.append(image)
        masks.append(mask)
    return names, images, masks


def load_split(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """`(images, masks)`: float32 `(N, C, H, W)` in [0, 1] and int64 `(N, H, W)`, sorted by file name."""
    _, images, masks = load_samples(root, split)
    if len({im.shape for im in images}) > 1:
        raise DatasetError(f"{Path(root) / split}: images differ in size; use load_samples() and tile them")
    return np.stack(images), np.stack(masks)
