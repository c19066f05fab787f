"""Classical baselines the network must beat: multi-level Otsu, and k-means colour clustering.

Both work on optical density after flattening the illumination, label the densest class nucleus,
the middle one cytoplasm and the lightest background, and tidy the result with morphology. They
see colour and brightness only, which is exactly what the synthetic data is built to defeat.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import ndimage
from scipy.cluster.vq import kmeans2
from skimage import filters

from reference.metrics import SegmentationScores, confusion_matrix
from reference.postprocess import clean_mask


def optical_density(image: np.ndarray) -> np.ndarray:
    """`(H, W, 3)` absorbance of a `(3, H, W)` [0, 1] image, with uneven illumination divided out."""
    rgb = np.moveaxis(np.asarray(image, np.float64), 0, -1)
    brightness = rgb.mean(-1)
    background = ndimage.gaussian_filter(ndimage.maximum_filter(brightness, 31), 15)
    return -np.log(np.clip(rgb / np.maximum(background, 1e-3)[..., None], 1e-3, 1.0))


def _order_by_density(labels: np.ndarray, density: np.ndarray, k: int) -> np.ndarray:
    """Relabel so that the lightest cluster is 0 and the densest is 2 (clusters beyond 3 merge upward)."""
    means = np.array([density[labels == c].mean() if (labels == c).any() else 0 for c in range(k)])
    rank = np.argsort(np.argsort(means))
    return np.minimum(rank, 2)[labels]


def otsu_baseline(image: np.ndarray) -> np.ndarray:
    """Three classes by two Otsu thresholds on total optical density."""
    density = optical_density(image).sum(-1)
    thresholds = filters.threshold_multiotsu(density, classes=3)
    return clean_mask(np.digitize(density, thresholds).astype(np.int64))


def kmeans_baseline(image: np.ndarray, k: int = 3, seed: int = 0) -> np.ndarray:
    """Three classes by k-means on the optical density colour vector of each pixel."""
    od = optical_density(image)
    features = od.reshape(-1, 3)
    _, labels = kmeans2(features, k, seed=seed, minit="++")
    return clean_mask(_order_by_density(labels.reshape(od.shape[:2]), od.sum(-1), k))


BASELINES: dict[str, Callable[[np.ndarray], np.ndarray]] = {"otsu": otsu_baseline, "kmeans": kmeans_baseline}


def evaluate_baseline(name: str, images: np.ndarray, masks: np.ndarray, num_classes: int = 3) -> SegmentationScores:
    """Scores of one baseline over a split, from the summed confusion matrix."""
    method = BASELINES[name]
    cm = sum(confusion_matrix(method(im), m, num_classes) for im, m in zip(images, masks))
    return SegmentationScores.from_confusion(cm)
