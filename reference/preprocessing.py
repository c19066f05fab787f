"""Intensity preprocessing: keep images in [0, 1], or standardise with the training set's statistics."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

NORMALISATIONS = ("unit", "standardise")


@dataclass(frozen=True)
class Standardizer:
    """Per-channel mean and standard deviation, fitted on training images only."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def fit(cls, images: list[np.ndarray] | np.ndarray) -> "Standardizer":
        """Statistics over every pixel of `(C, H, W)` images, which may differ in size."""
        flat = np.concatenate([np.asarray(im, np.float64).reshape(im.shape[0], -1) for im in images], axis=1)
        return cls(tuple(flat.mean(axis=1).tolist()), tuple(np.maximum(flat.std(axis=1), 1e-6).tolist()))

    def apply(self, images: np.ndarray) -> np.ndarray:
        """Standardise `(C, H, W)` or `(N, C, H, W)` images."""
        shape = (-1, 1, 1)
        return ((images - np.reshape(self.mean, shape)) / np.reshape(self.std, shape)).astype(np.float32)

    def module(self) -> nn.Module:
        """The same standardisation as a network layer, so a saved model takes [0, 1] images."""
        return Standardize(self.mean, self.std)


class Standardize(nn.Module):
    """`(x - mean) / std` per channel, with mean and std stored in the state_dict."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std
