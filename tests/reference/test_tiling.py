import numpy as np
import pytest
import torch
from torch import nn

from reference.inference import predict_large, predict_logits
from reference.tiling import TileGrid, merge_tiles, split_tiles


@pytest.mark.parametrize("shape", [(600, 520), (256, 256), (300, 257), (100, 90)])
def test_tiles_merge_back_to_the_image_exactly(shape):
    image = np.random.default_rng(0).random((3, *shape)).astype(np.float32)
    grid = TileGrid(*shape, tile=256, overlap=32)
    tiles = split_tiles(image, grid)
    assert tiles.shape[1:] == (3, min(256, shape[0]), min(256, shape[1]))
    np.testing.assert_allclose(merge_tiles(tiles, grid), image, atol=1e-6)


def test_tiles_cover_the_image_with_the_requested_overlap():
    grid = TileGrid(600, 520, tile=256, overlap=32)
    ys = sorted({y for y, _ in grid.positions})
    xs = sorted({x for _, x in grid.positions})
    assert ys == [0, 224, 344] and xs == [0, 224, 264]
    with pytest.raises(ValueError, match="overlap must lie in"):
        TileGrid(10, 10, tile=8, overlap=8)


class _Pointwise(nn.Module):
    """A 1x1 convolution: translation-equivariant with no context, so tiling must not change it."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        return self.conv(x)


def test_tiled_prediction_has_no_seams():
    image = np.random.default_rng(2).random((3, 400, 333)).astype(np.float32)
    model = _Pointwise()
    whole = predict_logits(model, image[None])[0].argmax(0).numpy()
    np.testing.assert_array_equal(predict_large(model, image, tile=128, overlap=32), whole)
