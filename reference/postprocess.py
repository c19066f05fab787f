"""Post-processing of a predicted mask: morphological clean-up and nucleus instances by watershed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage import feature, measure, morphology, segmentation

from reference.synthetic import CYTOPLASM, NUCLEUS


def clean_mask(mask: np.ndarray, radius: int = 1, min_size: int = 16) -> np.ndarray:
    """Opening then closing per foreground class, and removal of specks smaller than `min_size`."""
    footprint = morphology.disk(radius)
    out = np.zeros_like(mask)
    cell = morphology.closing(morphology.opening(mask > 0, footprint), footprint)
    out[morphology.remove_small_objects(cell, max_size=min_size - 1)] = CYTOPLASM
    nucleus = morphology.closing(morphology.opening(mask == NUCLEUS, footprint), footprint)
    out[morphology.remove_small_objects(nucleus, max_size=min_size - 1) & cell] = NUCLEUS
    return out


@dataclass(frozen=True)
class Instances:
    """A label image (0 background, 1..count one object each) and how many objects it holds."""

    labels: np.ndarray
    count: int


def connected_components(binary: np.ndarray) -> Instances:
    """Objects as 8-connected regions; touching objects stay merged."""
    labels, count = measure.label(binary, connectivity=2, return_num=True)
    return Instances(labels, int(count))


def split_touching(binary: np.ndarray, min_distance: int = 5) -> Instances:
    """Watershed on the distance transform, seeded at its peaks, to split touching objects."""
    distance = ndimage.distance_transform_edt(binary)
    peaks = feature.peak_local_max(distance, min_distance=min_distance, labels=measure.label(binary),
                                   exclude_border=False)
    markers = np.zeros(binary.shape, np.int64)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    labels = segmentation.watershed(-distance, markers, mask=binary)
    return Instances(labels, int(len(np.unique(labels[labels > 0]))))


def count_nuclei(mask: np.ndarray, min_distance: int = 5) -> Instances:
    """Nucleus instances in a 3-class mask, touching nuclei split by watershed."""
    return split_touching(mask == NUCLEUS, min_distance)
