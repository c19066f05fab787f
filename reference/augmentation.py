"""Joint augmentation of an image and its mask: flips, 90-degree turns, small shifts, elastic warps.

Every transform is drawn once from the caller's `numpy.random.Generator` and applied to image and
mask alike; the mask is resampled by nearest neighbour so its labels stay integral.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and strengths of each transform."""

    p_flip: float = 0.5
    p_rot90: float = 0.75
    p_shift: float = 0.5
    max_shift: float = 0.0625  # fraction of the side
    p_elastic: float = 0.25
    elastic_alpha: float = 6.0  # largest displacement, pixels
    elastic_sigma: float = 8.0  # smoothness of the displacement field, pixels


def _shift(image: np.ndarray, mask: np.ndarray, dy: int, dx: int) -> tuple[np.ndarray, np.ndarray]:
    shifted = ndimage.shift(image, (0, dy, dx), order=0, mode="reflect")
    return shifted, ndimage.shift(mask, (dy, dx), order=0, mode="reflect")


def _elastic(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, config: AugmentConfig
             ) -> tuple[np.ndarray, np.ndarray]:
    h, w = mask.shape
    fields = []
    for _ in range(2):
        field = ndimage.gaussian_filter(rng.uniform(-1, 1, (h, w)), config.elastic_sigma)
        fields.append(field / (np.abs(field).max() + 1e-12) * config.elastic_alpha)
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    coords = np.stack([yy + fields[0], xx + fields[1]])
    warped = np.stack([ndimage.map_coordinates(c, coords, order=1, mode="reflect") for c in image])
    return warped, ndimage.map_coordinates(mask, coords, order=0, mode="reflect")


def augment(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator,
            config: AugmentConfig = AugmentConfig()) -> tuple[np.ndarray, np.ndarray]:
    """Random transforms of `(C, H, W)` image and `(H, W)` mask, the same for both; dtypes kept."""
    image_dtype, mask_dtype = image.dtype, mask.dtype
    if rng.random() < config.p_flip:
        image, mask = image[:, :, ::-1], mask[:, ::-1]
    if rng.random() < config.p_flip:
        image, mask = image[:, ::-1, :], mask[::-1, :]
    if rng.random() < config.p_rot90:
        k = int(rng.integers(1, 4))
        image, mask = np.rot90(image, k, axes=(1, 2)), np.rot90(mask, k)
    if rng.random() < config.p_shift:
        limit = max(1, int(config.max_shift * min(mask.shape)))
        dy, dx = (int(v) for v in rng.integers(-limit, limit + 1, 2))
        image, mask = _shift(image, mask, dy, dx)
    if rng.random() < config.p_elastic:
        image, mask = _elastic(image, mask, rng, config)
    return np.ascontiguousarray(image, image_dtype), np.ascontiguousarray(mask, mask_dtype)
