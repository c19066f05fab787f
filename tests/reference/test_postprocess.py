import numpy as np
from skimage import draw

from reference.postprocess import clean_mask, connected_components, count_nuclei, split_touching


def _two_touching_disks():
    binary = np.zeros((60, 90), bool)
    for cx in (30, 52):
        rr, cc = draw.disk((30, cx), 13, shape=binary.shape)
        binary[rr, cc] = True
    return binary


def test_watershed_splits_touching_nuclei_that_components_merge():
    binary = _two_touching_disks()
    assert connected_components(binary).count == 1
    split = split_touching(binary)
    assert split.count == 2
    assert set(np.unique(split.labels)) == {0, 1, 2}
    assert ((split.labels > 0) == binary).all()


def test_count_nuclei_reads_class_two_of_a_mask():
    mask = np.where(_two_touching_disks(), 2, 0)
    mask[0:5, 0:5] = 1
    assert count_nuclei(mask).count == 2


def test_clean_mask_removes_specks_and_fills_pinholes():
    mask = np.zeros((40, 40), np.int64)
    mask[5:30, 5:30] = 1
    mask[10:20, 10:20] = 2
    mask[15, 15] = 1  # pinhole in the nucleus
    mask[35, 35] = 2  # isolated speck
    cleaned = clean_mask(mask)
    assert cleaned[15, 15] == 2
    assert cleaned[35, 35] == 0
    assert (cleaned[5:30, 5:30] > 0).mean() > 0.95
