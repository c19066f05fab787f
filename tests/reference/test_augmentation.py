import dataclasses

import numpy as np
import pytest

from reference.augmentation import AugmentConfig, augment

NOTHING = AugmentConfig(p_flip=0, p_rot90=0, p_shift=0, p_elastic=0)
ONLY = {
    "flip": dataclasses.replace(NOTHING, p_flip=1.0),
    "rot90": dataclasses.replace(NOTHING, p_rot90=1.0),
    "shift": dataclasses.replace(NOTHING, p_shift=1.0, max_shift=0.2),
    "elastic": dataclasses.replace(NOTHING, p_elastic=1.0),
}


def drawn_pattern(h=64, w=80):
    """An asymmetric pattern (an L, a bar and a dot) drawn into the image; its mask labels it.
    Every image channel carries the labels too, so alignment can be read back from the image."""
    mask = np.zeros((h, w), np.int64)
    mask[8:40, 10:18] = 1
    mask[32:40, 10:44] = 1
    mask[45:60, 50:56] = 2
    mask[12:16, 60:64] = 2
    image = np.stack([mask / 2, mask / 4, 1 - mask / 2]).astype(np.float32)
    return image, mask


def _labels_from_image(image):
    return np.rint(image[0] * 2).astype(np.int64)


@pytest.mark.parametrize("name", ["flip", "rot90", "shift"])
def test_rigid_transforms_move_image_and_mask_alike(name):
    image, mask = drawn_pattern()
    changed = 0
    for seed in range(8):
        out_image, out_mask = augment(image, mask, np.random.default_rng(seed), ONLY[name])
        np.testing.assert_array_equal(_labels_from_image(out_image), out_mask)
        changed += not np.array_equal(out_mask, mask) if out_mask.shape == mask.shape else 1
    assert changed >= 6  # the transform really happens


def test_elastic_warp_keeps_image_and_mask_aligned_and_labels_integral():
    image, mask = drawn_pattern()
    out_image, out_mask = augment(image, mask, np.random.default_rng(3), ONLY["elastic"])
    assert not np.array_equal(out_mask, mask)
    agreement = (_labels_from_image(out_image) == out_mask).mean()
    assert agreement > 0.97  # only interpolated edge pixels may differ
    assert set(np.unique(out_mask)) <= {0, 1, 2}


def test_default_augmentation_keeps_dtypes_and_label_set_and_changes_data():
    image, mask = drawn_pattern(64, 64)
    changed = 0
    for seed in range(200):
        out_image, out_mask = augment(image, mask, np.random.default_rng(seed))
        assert out_image.dtype == np.float32 and out_mask.dtype == np.int64
        assert out_image.shape == image.shape and out_mask.shape == mask.shape
        assert set(np.unique(out_mask)) <= {0, 1, 2}
        changed += not np.array_equal(out_mask, mask)
    assert 180 <= changed < 200  # random: usually changes, now and then leaves the data alone


def test_same_generator_state_gives_the_same_augmentation():
    image, mask = drawn_pattern()
    a = augment(image, mask, np.random.default_rng(11))
    b = augment(image, mask, np.random.default_rng(11))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
