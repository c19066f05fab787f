"""Prediction at any image size, and overlays of a mask on its image."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reference.tiling import TileGrid, merge_tiles, split_tiles

# Okabe-Ito orange and blue: distinguishable with every common colour-vision deficiency.
CLASS_COLORS = {1: (230, 159, 0), 2: (0, 114, 178)}
MULTIPLE = 32  # ResNet encoders downsample five times


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def predict_logits(model: nn.Module, images: np.ndarray | torch.Tensor, batch_size: int = 8) -> torch.Tensor:
    """Logits `(N, K, H, W)` on the CPU; images are reflect-padded to a multiple of 32, then cropped back."""
    was_training = model.training
    model.eval()
    x = torch.as_tensor(np.asarray(images, np.float32))
    h, w = x.shape[-2:]
    pad_h, pad_w = (-h) % MULTIPLE, (-w) % MULTIPLE
    outputs = []
    for batch in x.split(batch_size):
        batch = batch.to(_device_of(model))
        if pad_h or pad_w:
            mode = "reflect" if min(h, w) > max(pad_h, pad_w) else "replicate"
            batch = F.pad(batch, (0, pad_w, 0, pad_h), mode=mode)
        outputs.append(model(batch)[..., :h, :w].float().cpu())
    model.train(was_training)
    return torch.cat(outputs)


def predict(model: nn.Module, images: np.ndarray) -> np.ndarray:
    """int64 `(N, H, W)` labels from float32 `(N, C, H, W)` images of any size H, W >= 64."""
    return predict_logits(model, images).argmax(1).numpy().astype(np.int64)


def predict_large(model: nn.Module, image: np.ndarray, tile: int = 256, overlap: int = 32) -> np.ndarray:
    """int64 `(H, W)` labels for one large `(C, H, W)` image, predicted tile by tile and blended."""
    grid = TileGrid(image.shape[1], image.shape[2], tile, overlap)
    probs = predict_logits(model, split_tiles(image, grid)).softmax(1).numpy()
    return merge_tiles(probs, grid).argmax(0).astype(np.int64)


def display_rgb(image: np.ndarray) -> np.ndarray:
    """float `(H, W, 3)` for showing any image: grey for one channel, red and green (with red as blue
    too, so it reads magenta) for two, the first three channels as red, green and blue for three or more.

    `(C, H, W)` with up to 8 channels is read channels-first, as the loader stores it; otherwise an
    `(H, W)` image or an `(H, W, 1 | 3)` channels-last one is accepted too."""
    array = np.asarray(image, np.float64)
    if array.ndim == 2:
        array = array[None]
    elif array.ndim == 3 and array.shape[0] > 8 and array.shape[-1] in (1, 3):
        array = np.moveaxis(array, -1, 0)
    if array.ndim != 3 or array.shape[0] == 0:
        raise ValueError(f"expected an image (C, H, W), (H, W) or (H, W, 3), got shape {array.shape}")
    channels = {1: (0, 0, 0), 2: (0, 1, 0)}.get(array.shape[0], (0, 1, 2))
    return np.moveaxis(array[list(channels)], 0, -1)


def overlay(image: np.ndarray, mask: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """uint8 `(H, W, 3)`: background shows the image, cytoplasm and nucleus blend towards their colours.

    Images of any channel count are shown as `display_rgb` composes them."""
    out = np.clip(display_rgb(image) * 255, 0, 255)
    for label, color in CLASS_COLORS.items():
        where = mask == label
        out[where] = (1 - alpha) * out[where] + alpha * np.array(color, np.float64)
    return out.round().astype(np.uint8)
