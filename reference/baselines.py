"""Classical baselines the network must beat: multi-level Otsu, and k-means colour clustering.

Both turn each pixel into stain density with the illumination flattened, label the densest class
nucleus, the middle one cytoplasm and the lightest background, and tidy the result with morphology.
They see colour and brightness only, which is exactly what the synthetic data is built to defeat.

Any channel count works. Brightfield images (a bright background that stain absorbs from, as in
the embedded RGB data) become optical density per channel; darkfield images (a dark background
that stained structures light up, as in fluorescence) become the signal above the local background
per channel. Otsu thresholds the density summed over channels; k-means clusters the per-channel
density vector, so it uses every channel there is.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import ndimage
from scipy.cluster.vq import kmeans2
from skimage import filters

from reference.metrics import SegmentationScores, confusion_matrix
from reference.postprocess import clean_mask

BASELINE_CLASSES = 3  # background, cytoplasm, nucleus: the three density levels the baselines tell apart


def optical_density(image: np.ndarray) -> np.ndarray:
    """`(H, W, C)` absorbance of a `(C, H, W)` [0, 1] image, with uneven illumination divided out."""
    rgb = np.moveaxis(np.asarray(image, np.float64), 0, -1)
    brightness = rgb.mean(-1)
    background = ndimage.gaussian_filter(ndimage.maximum_filter(brightness, 31), 15)
    return -np.log(np.clip(rgb / np.maximum(background, 1e-3)[..., None], 1e-3, 1.0))


def emitted_signal(image: np.ndarray) -> np.ndarray:
    """`(H, W, C)` signal above each channel's smooth local background, for darkfield images."""
    channels = np.asarray(image, np.float64)
    background = np.stack([ndimage.gaussian_filter(ndimage.minimum_filter(c, 31), 15) for c in channels])
    return np.moveaxis(np.clip(channels - background, 0.0, None), 0, -1)


def is_darkfield(image: np.ndarray) -> bool:
    """True when most pixels lie in the darker half of the image's range: a dark background with
    bright structures (fluorescence) rather than stain absorbing from a bright one (brightfield)."""
    brightness = np.asarray(image, np.float64).mean(0)
    low, high = np.percentile(brightness, [1, 99])
    return bool(np.median(brightness) < (low + high) / 2)


def stain_density(image: np.ndarray) -> np.ndarray:
    """`(H, W, C)` per-channel stain density of a `(C, H, W)` image, larger where there is more stain."""
    return emitted_signal(image) if is_darkfield(image) else optical_density(image)


def _order_by_density(labels: np.ndarray, density: np.ndarray, k: int) -> np.ndarray:
    """Relabel so that the lightest cluster is 0 and the densest is 2 (clusters beyond 3 merge upward)."""
    means = np.array([density[labels == c].mean() if (labels == c).any() else 0 for c in range(k)])
    rank = np.argsort(np.argsort(means))
    return np.minimum(rank, 2)[labels]


def _three_levels(density: np.ndarray) -> np.ndarray:
    """Two Otsu thresholds; an image with fewer than three grey levels gets one threshold, or none."""
    try:
        return np.digitize(density, filters.threshold_multiotsu(density, classes=3))
    except ValueError:  # skimage: too few distinct values to split into three classes
        if np.ptp(density) == 0:
            return np.zeros(density.shape, np.int64)
        return (density > filters.threshold_otsu(density)).astype(np.int64)


def _distinct_rows(features: np.ndarray, limit: int) -> int:
    """How many distinct rows `features` holds, counting no further than `limit`."""
    count, rest = 0, features
    while len(rest) and count < limit:
        count, rest = count + 1, rest[(rest != rest[0]).any(-1)]
    return count


def otsu_baseline(image: np.ndarray) -> np.ndarray:
    """Three classes by two Otsu thresholds on stain density summed over channels."""
    return clean_mask(_three_levels(stain_density(image).sum(-1)).astype(np.int64))


def kmeans_baseline(image: np.ndarray, k: int = 3, seed: int = 0) -> np.ndarray:
    """Three classes by k-means on each pixel's stain density vector (one entry per channel)."""
    density = stain_density(image)
    features = density.reshape(-1, density.shape[-1])
    k = _distinct_rows(features, k)  # a flat image has fewer distinct pixels than clusters
    if k < 2:
        return np.zeros(density.shape[:2], np.int64)
    _, labels = kmeans2(features, k, seed=seed, minit="++")
    return clean_mask(_order_by_density(labels.reshape(density.shape[:2]), density.sum(-1), k))


BASELINES: dict[str, Callable[[np.ndarray], np.ndarray]] = {"otsu": otsu_baseline, "kmeans": kmeans_baseline}


def evaluate_baseline(name: str, images: list[np.ndarray], masks: list[np.ndarray],
                      num_classes: int = BASELINE_CLASSES) -> SegmentationScores:
    """Scores of one baseline over a split, from the summed confusion matrix."""
    method = BASELINES[name]
    cm = sum(confusion_matrix(method(im), m, num_classes) for im, m in zip(images, masks))
    return SegmentationScores.from_confusion(cm)
