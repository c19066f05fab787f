"""Images for reports, as PNG data URIs: the input, label maps and error maps in the Okabe-Ito
palette, which stays distinguishable with the common colour-vision deficiencies."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

# Error map: predicted a cell where there is background; missed a cell; cell found, wrong class.
ERROR_COLORS = {"false_positive": (213, 94, 0), "false_negative": (86, 180, 233), "wrong_class": (204, 121, 167)}
MAX_SIDE = 512  # larger images are shown downscaled, to keep reports small


def png_data_uri(rgb: np.ndarray) -> str:
    """`uint8 (H, W, 3)` (or `(H, W)`) as an inline PNG."""
    image = Image.fromarray(np.ascontiguousarray(rgb))
    if max(image.size) > MAX_SIDE:
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def to_rgb(image: np.ndarray) -> np.ndarray:
    """A `float (3, H, W)` image in [0, 1] (or an `(H, W, 3)` uint8 one) as `uint8 (H, W, 3)`."""
    image = np.asarray(image)
    if image.dtype == np.uint8 and image.ndim == 3 and image.shape[-1] == 3:
        return image
    return (np.clip(np.moveaxis(image, 0, -1), 0, 1) * 255).round().astype(np.uint8)


def label_rgb(mask: np.ndarray, colors: tuple[str, ...]) -> np.ndarray:
    """Class indices as colours ("#rrggbb", label k gets colors[k]); other indices are shown black."""
    mask = np.asarray(mask)
    out = np.zeros((*mask.shape, 3), np.uint8)
    for label, color in enumerate(colors):
        out[mask == label] = rgb_color(color)
    return out


def error_rgb(image: np.ndarray, prediction: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Correct pixels show the image in faded grey; each kind of error has its own colour."""
    grey = to_rgb(image).mean(-1, keepdims=True)
    out = np.repeat(128 + grey / 2, 3, -1).astype(np.uint8)
    fg_pred, fg_true = prediction > 0, truth > 0
    out[fg_pred & ~fg_true] = ERROR_COLORS["false_positive"]
    out[~fg_pred & fg_true] = ERROR_COLORS["false_negative"]
    out[fg_pred & fg_true & (prediction != truth)] = ERROR_COLORS["wrong_class"]
    return out


def rgb_color(text: str) -> tuple[int, int, int]:
    """"#rrggbb" as a triple of 0-255 values."""
    return int(text[1:3], 16), int(text[3:5], 16), int(text[5:7], 16)


def hex_color(rgb: tuple[int, int, int] | np.ndarray) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(int(c) for c in rgb))
