import numpy as np
import pytest
import torch

from reference.inference import CLASS_COLORS, overlay, predict
from reference.models import build_model


@pytest.mark.parametrize("height,width", [(64, 64), (70, 100), (97, 131)])
def test_predict_handles_sizes_that_are_not_multiples_of_32(height, width):
    model = build_model().train()
    images = np.random.default_rng(0).random((2, 3, height, width)).astype(np.float32)
    labels = predict(model, images)
    assert labels.shape == (2, height, width) and labels.dtype == np.int64
    assert set(np.unique(labels)) <= {0, 1, 2}
    assert model.training  # the caller's mode is restored
    assert torch.is_grad_enabled()


def test_predict_is_deterministic_in_eval_mode():
    model = build_model()
    images = np.random.default_rng(1).random((1, 3, 64, 96)).astype(np.float32)
    np.testing.assert_array_equal(predict(model, images), predict(model, images))


def test_overlay_keeps_background_and_colours_the_two_classes_apart():
    image = np.random.default_rng(2).random((3, 20, 30)).astype(np.float32)
    mask = np.zeros((20, 30), np.int64)
    mask[5:10, 5:10] = 1
    mask[12:15, 20:25] = 2
    out = overlay(image, mask)
    assert out.dtype == np.uint8 and out.shape == (20, 30, 3)
    original = np.rint(np.moveaxis(image, 0, -1) * 255)
    np.testing.assert_array_equal(out[mask == 0], original[mask == 0])
    flat = np.full((3, 20, 30), 0.5, np.float32)
    tinted = overlay(flat, mask, alpha=1.0)
    assert tuple(tinted[6, 6]) == CLASS_COLORS[1] and tuple(tinted[13, 21]) == CLASS_COLORS[2]
    assert CLASS_COLORS[1] != CLASS_COLORS[2]
