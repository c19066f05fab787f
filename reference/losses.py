"""Segmentation losses: cross-entropy, Dice, focal, and the chapter's cross-entropy + Dice."""

from __future__ import annotations

from typing import Callable

import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F

from reference.config import ConfigError

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def soft_dice(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """Mean over classes of `(2 sum p t + smooth) / (sum p + sum t + smooth)`, summed over batch and pixels."""
    probs = logits.softmax(dim=1)
    one_hot = F.one_hot(target, logits.shape[1]).movedim(-1, 1).to(probs.dtype)
    dims = (0, *range(2, logits.ndim))
    intersection = (probs * one_hot).sum(dims)
    return ((2 * intersection + smooth) / (probs.sum(dims) + one_hot.sum(dims) + smooth)).mean()


def dice_ce_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """`cross_entropy(logits, target) + 1 - soft_dice(logits, target)`: pixel-wise and region terms."""
    return F.cross_entropy(logits, target) + 1 - soft_dice(logits, target)


def _smp_loss(loss: torch.nn.Module) -> LossFn:
    return lambda logits, target: loss(logits, target)


LOSSES: dict[str, Callable[[], LossFn]] = {
    "ce": lambda: F.cross_entropy,
    "dice": lambda: _smp_loss(smp.losses.DiceLoss(mode="multiclass")),
    "focal": lambda: _smp_loss(smp.losses.FocalLoss(mode="multiclass")),
    "ce_dice": lambda: dice_ce_loss,
}


def get_loss(name: str) -> LossFn:
    """The loss registered under `name`; the error lists the valid names."""
    if name not in LOSSES:
        raise ConfigError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
    return LOSSES[name]()
