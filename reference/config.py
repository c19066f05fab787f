"""Training configurations: one dataclass, declared once with a type, default and help per key.

`smoke` trains on a CPU in minutes; `full` is the GPU run (256x256 tiles, AMP, channels_last,
large batches, many epochs). Any key can be overridden (`--set encoder=resnet18`), which is how
the chapter's ResNet18/34/50 or U-Net/FPN comparisons are run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


class ConfigError(ValueError):
    """A configuration name or override that is not valid; the message lists what is."""


def _key(default, help_text: str):
    return field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of a training run."""

    arch: str = _key("Unet", "segmentation_models_pytorch architecture (Unet, FPN, ...)")
    encoder: str = _key("resnet34", "encoder backbone (resnet18, resnet34, resnet50, ...)")
    loss: str = _key("ce_dice", "ce, dice, focal or ce_dice")
    normalisation: str = _key("unit", "unit: images in [0, 1]; standardise: training mean and std")
    tile: int = _key(128, "side of the square training crops, pixels")
    batch_size: int = _key(8, "training crops per batch")
    steps_per_epoch: int = _key(25, "batches per epoch")
    epochs: int = _key(12, "most epochs to train")
    patience: int = _key(5, "epochs without a better validation Dice before stopping early")
    lr: float = _key(2e-3, "Adam learning rate (cosine-annealed to 5% over the run)")
    weight_decay: float = _key(0.0, "Adam weight decay")
    augment: bool = _key(True, "joint flips, 90-degree turns, shifts and elastic warps")
    seed: int = _key(0, "seed of weights, crops and augmentation")
    data_seed: int = _key(0, "seed of the embedded dataset when no --data is given")
    device: str = _key("auto", "auto, cpu or cuda")
    amp: bool = _key(False, "mixed precision (bfloat16 autocast) on a GPU")
    channels_last: bool = _key(False, "channels_last memory format on a GPU")
    compile: bool = _key(False, "torch.compile the model on a GPU")
    num_workers: int = _key(0, "DataLoader worker processes")
    eval_batch_size: int = _key(8, "images per batch when validating and testing")

    def with_overrides(self, assignments: list[str]) -> "TrainConfig":
        """A copy with `KEY=VALUE` strings applied, each value parsed to the key's type."""
        fields = {f.name: f for f in dataclasses.fields(self)}
        changes = {}
        for item in assignments:
            key, sep, text = item.partition("=")
            if not sep or key not in fields:
                raise ConfigError(f"--set {item!r}: expected KEY=VALUE with KEY one of {', '.join(fields)}")
            changes[key] = _parse(text, type(getattr(self, key)), key)
        return dataclasses.replace(self, **changes)

    def describe(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def _parse(text: str, kind: type, key: str) -> object:
    if kind is bool:
        if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ConfigError(f"--set {key}={text}: expected true or false")
        return text.lower() in ("true", "1", "yes")
    try:
        return kind(text)
    except ValueError as err:
        raise ConfigError(f"--set {key}={text}: expected a {kind.__name__}") from err


CONFIGS: dict[str, TrainConfig] = {
    "smoke": TrainConfig(),
    "full": TrainConfig(tile=256, batch_size=32, steps_per_epoch=50, epochs=80, patience=15, lr=1e-3,
                        device="cuda", amp=True, channels_last=True, compile=True, num_workers=8,
                        eval_batch_size=32),
}


def get_config(name: str) -> TrainConfig:
    """The configuration registered under `name`; the error lists the valid names."""
    if name not in CONFIGS:
        raise ConfigError(f"unknown config {name!r}; choose one of {', '.join(CONFIGS)}")
    return CONFIGS[name]
