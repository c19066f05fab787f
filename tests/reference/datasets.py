"""Datasets in the layouts real microscopy comes in, made from the embedded generator's scenes:
a single-channel 16-bit brightfield PNG set and a 4-channel 12-bit fluorescence TIFF set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from reference.synthetic import generate_image

SPLIT_SIZES = {"train": 3, "val": 1, "test": 2}
SIDE = 64


def grey16(rgb: np.ndarray) -> tuple[np.ndarray, str]:
    """Brightfield luminance over the full 16-bit range, as a grey PNG."""
    return (rgb.astype(np.float64).mean(-1) * 257).astype(np.uint16), ".png"


def fluorescence4(rgb: np.ndarray) -> tuple[np.ndarray, str]:
    """Four darkfield channels `(4, H, W)` in a 12-bit range: the absorbed light of each colour and of
    their mean glows on a dark background, as stained structures do under fluorescence."""
    absorbed = 255 - np.moveaxis(rgb, -1, 0).astype(np.uint16)
    return np.concatenate([absorbed, absorbed.mean(0, keepdims=True).astype(np.uint16)]) * 16, ".tif"


def write_variant(root: Path, convert, seed: int = 7) -> Path:
    """Generated scenes written through `convert`, with 8-bit index masks, in CONTRACT.md's layout."""
    rng = np.random.default_rng(seed)
    for split, count in SPLIT_SIZES.items():
        for sub in ("images", "masks"):
            (root / split / sub).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            rgb, mask = generate_image(rng, SIDE)
            image, suffix = convert(rgb)
            if suffix == ".tif":
                tifffile.imwrite(root / split / "images" / f"{i}.tif", image, photometric="minisblack")
            else:
                Image.fromarray(image).save(root / split / "images" / f"{i}.png")
            Image.fromarray(mask).save(root / split / "masks" / f"{i}.png")
    return root
