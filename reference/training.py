"""The training pipeline: random crops with joint augmentation, Adam, validation each epoch, early
stopping on validation Dice, the best checkpoint kept, and a final evaluation on the test split."""

from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from reference import artifacts
from reference.augmentation import augment
from reference.config import TrainConfig
from reference.data import DatasetConfig, load_samples
from reference.inference import overlay, predict_logits
from reference.losses import LossFn, get_loss
from reference.metrics import SegmentationScores
from reference.models import create_model
from reference.preprocessing import NORMALISATIONS, Standardizer


@dataclass(frozen=True)
class Split:
    """One split held in memory; images may differ in size."""

    names: list[str]
    images: list[np.ndarray]
    masks: list[np.ndarray]


@dataclass(frozen=True)
class Runtime:
    """What the run actually uses once the config has met the machine."""

    device: torch.device
    amp: bool
    channels_last: bool
    compile: bool
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrainResult:
    out_dir: Path
    best_epoch: int
    epochs_run: int
    test_scores: SegmentationScores
    history: list[dict[str, object]]


def resolve_runtime(config: TrainConfig) -> Runtime:
    """Pick the device; GPU-only features fall back to plain fp32 eager on a CPU, said aloud."""
    has_cuda = torch.cuda.is_available()
    notes = []
    if config.device == "cuda" and not has_cuda:
        notes.append("no GPU here: training on the CPU without AMP, channels_last or torch.compile")
    use_cuda = has_cuda and config.device in ("auto", "cuda")
    device = torch.device("cuda" if use_cuda else "cpu")
    return Runtime(device, config.amp and use_cuda, config.channels_last and use_cuda,
                   config.compile and use_cuda, tuple(notes))


class CropDataset(torch.utils.data.Dataset):
    """Random training crops for the whole run; item `g` is drawn from a generator seeded with
    `(seed, g)`, so crops are the same whatever the number of workers."""

    def __init__(self, split: Split, tile: int, length: int, seed: int, use_augment: bool):
        self.split, self.tile, self.length, self.seed, self.use_augment = split, tile, length, seed, use_augment

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, index])
        k = int(rng.integers(len(self.split.images)))
        image, mask = _pad_to(self.split.images[k], self.split.masks[k], self.tile)
        y = int(rng.integers(0, mask.shape[0] - self.tile + 1))
        x = int(rng.integers(0, mask.shape[1] - self.tile + 1))
        image, mask = image[:, y:y + self.tile, x:x + self.tile], mask[y:y + self.tile, x:x + self.tile]
        if self.use_augment:
            image, mask = augment(image, mask, rng)
        return torch.from_numpy(np.ascontiguousarray(image)), torch.from_numpy(np.ascontiguousarray(mask))


def _pad_to(image: np.ndarray, mask: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    pad_h, pad_w = max(size - mask.shape[0], 0), max(size - mask.shape[1], 0)
    if not (pad_h or pad_w):
        return image, mask
    return (np.pad(image, ((0, 0), (0, pad_h), (0, pad_w)), mode="reflect"),
            np.pad(mask, ((0, pad_h), (0, pad_w)), mode="reflect"))


def load_dataset(root: Path, config: DatasetConfig) -> dict[str, Split]:
    return {split: Split(*load_samples(root, split, config)) for split in ("train", "val", "test")}


def build_network(config: TrainConfig, in_channels: int, num_classes: int, train: Split) -> nn.Module:
    """The configured smp model; with `standardise` the training statistics become its first layer."""
    if config.normalisation not in NORMALISATIONS:
        raise ValueError(f"normalisation {config.normalisation!r} is unknown; use one of {NORMALISATIONS}")
    model = create_model(config.arch, config.encoder, in_channels, num_classes)
    if config.normalisation == "standardise":
        model = nn.Sequential(Standardizer.fit(train.images).module(), model)
    return model


def _batch_confusion(logits: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Confusion matrix of one batch, on the batch's device (no host sync)."""
    index = target.reshape(-1) * num_classes + logits.argmax(1).reshape(-1)
    return torch.bincount(index, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def evaluate(model: nn.Module, split: Split, loss_fn: LossFn, num_classes: int, batch_size: int
             ) -> tuple[float, SegmentationScores, list[np.ndarray]]:
    """Mean loss, split scores and predicted masks, batching images of equal size together."""
    cm = np.zeros((num_classes, num_classes), np.int64)
    losses, predictions = [], [None] * len(split.images)
    order = sorted(range(len(split.images)), key=lambda i: split.masks[i].shape)
    for _, group in itertools.groupby(order, key=lambda i: split.masks[i].shape):
        group = list(group)
        for chunk in (group[s:s + batch_size] for s in range(0, len(group), batch_size)):
            images = np.stack([split.images[i] for i in chunk])
            target = torch.from_numpy(np.stack([split.masks[i] for i in chunk]))
            logits = predict_logits(model, images, batch_size)
            losses.append(float(loss_fn(logits, target)) * len(chunk))
            cm += _batch_confusion(logits, target, num_classes).numpy()
            for i, pred in zip(chunk, logits.argmax(1).numpy()):
                predictions[i] = pred.astype(np.int64)
    return sum(losses) / len(split.images), SegmentationScores.from_confusion(cm), predictions


class EarlyStopping:
    """Tracks the best validation score and says when `patience` epochs have not improved it."""

    def __init__(self, patience: int):
        self.patience, self.best, self.best_epoch, self.stale = patience, -np.inf, 0, 0

    def update(self, score: float, epoch: int) -> bool:
        """Record `score`; True when it is the best so far."""
        if score > self.best:
            self.best, self.best_epoch, self.stale = score, epoch, 0
            return True
        self.stale += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.stale >= self.patience


def _train_epoch(model: nn.Module, batches: Iterator, optimizer: torch.optim.Optimizer, scheduler,
                 loss_fn: LossFn, runtime: Runtime, num_classes: int, progress: tqdm) -> tuple[float, float]:
    """One epoch of optimiser steps; returns mean loss and the epoch's foreground Dice.

    Loss and confusion stay on the device and are read back every few steps only, so the
    progress bar does not stall a GPU on a host sync per step."""
    model.train()
    total = torch.zeros((), device=runtime.device)
    cm = torch.zeros((num_classes, num_classes), dtype=torch.int64, device=runtime.device)
    memory_format = torch.channels_last if runtime.channels_last else torch.contiguous_format
    count = 0
    for images, masks in batches:
        images = images.to(runtime.device, non_blocking=True, memory_format=memory_format)
        masks = masks.to(runtime.device, non_blocking=True)
        with torch.autocast(runtime.device.type, dtype=torch.bfloat16, enabled=runtime.amp):
            logits = model(images)
            loss = loss_fn(logits.float(), masks)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        total += loss.detach()
        cm += _batch_confusion(logits.detach(), masks, num_classes)
        count += 1
        if count % 5 == 0 or count == progress.total:
            dice = SegmentationScores.from_confusion(cm.cpu().numpy()).mean_foreground_dice
            progress.set_postfix(loss=f"{total.item() / count:.3f}", dice=f"{dice:.3f}")
        progress.update()
    return total.item() / max(count, 1), SegmentationScores.from_confusion(cm.cpu().numpy()).mean_foreground_dice


def _history_row(epoch: int, train_loss: float, train_dice: float, val_loss: float,
                 scores: SegmentationScores, class_names: tuple[str, ...]) -> dict[str, object]:
    row: dict[str, object] = {"epoch": epoch, "train_loss": train_loss, "train_dice_fg": train_dice,
                              "val_loss": val_loss}
    row.update({f"val_dice_{name}": float(d) for name, d in zip(class_names, scores.dice)})
    row["val_dice_fg"] = scores.mean_foreground_dice
    return row


def _make_loader(train: Split, config: TrainConfig, runtime: Runtime) -> torch.utils.data.DataLoader:
    dataset = CropDataset(train, config.tile, config.epochs * config.steps_per_epoch * config.batch_size,
                          config.seed, config.augment)
    return torch.utils.data.DataLoader(
        dataset, batch_size=config.batch_size, shuffle=False, num_workers=config.num_workers,
        pin_memory=runtime.device.type == "cuda", drop_last=True,
        prefetch_factor=4 if config.num_workers else None, persistent_workers=False)


def _seed_everything(seed: int, runtime: Runtime) -> None:
    torch.manual_seed(seed)
    if runtime.device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        torch.backends.cudnn.benchmark = True


def train(config: TrainConfig, data_root: Path, out_dir: Path, log=print) -> TrainResult:
    """Train on the dataset at `data_root` and write the run's files to `out_dir`."""
    runtime = resolve_runtime(config)
    for note in runtime.notes:
        log(f"note: {note}")
    data_config = DatasetConfig.from_folder(data_root)
    splits = load_dataset(data_root, data_config)
    in_channels, num_classes = splits["train"].images[0].shape[0], data_config.num_classes
    _seed_everything(config.seed, runtime)
    model = build_network(config, in_channels, num_classes, splits["train"]).to(runtime.device)
    if runtime.channels_last:
        model = model.to(memory_format=torch.channels_last)
    step_model = torch.compile(model) if runtime.compile else model
    loss_fn = get_loss(config.loss)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    total_steps = config.epochs * config.steps_per_epoch
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, total_steps, eta_min=config.lr * 0.05)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_run_config(out_dir, config, runtime, in_channels, data_config)
    batches = iter(_make_loader(splits["train"], config, runtime))
    stopper, history = EarlyStopping(config.patience), []
    for epoch in range(1, config.epochs + 1):
        with tqdm(total=config.steps_per_epoch, desc=f"epoch {epoch}/{config.epochs}", file=sys.stderr,
                  mininterval=0.5, leave=True) as progress:
            train_loss, train_dice = _train_epoch(step_model, itertools.islice(batches, config.steps_per_epoch),
                                                  optimizer, scheduler, loss_fn, runtime, num_classes, progress)
            val_loss, scores, _ = evaluate(model, splits["val"], loss_fn, num_classes, config.eval_batch_size)
            progress.set_postfix(loss=f"{train_loss:.3f}", val_loss=f"{val_loss:.3f}",
                                 val_dice=f"{scores.mean_foreground_dice:.3f}")
        history.append(_history_row(epoch, train_loss, train_dice, val_loss, scores, data_config.class_names))
        artifacts.write_csv(out_dir / "history.csv", history)
        if stopper.update(scores.mean_foreground_dice, epoch):
            artifacts.save_state_dict(out_dir / "model.pt", model.state_dict())
        if stopper.should_stop:
            log(f"early stop: validation Dice has not improved for {config.patience} epochs")
            break
    return _finish(model, out_dir, splits["test"], loss_fn, data_config, config, stopper, history)


def _finish(model: nn.Module, out_dir: Path, test: Split, loss_fn: LossFn, data_config: DatasetConfig,
            config: TrainConfig, stopper: EarlyStopping, history: list[dict[str, object]]) -> TrainResult:
    """Reload the best checkpoint, score the test split and write metrics, curves and overlays."""
    model.load_state_dict(torch.load(out_dir / "model.pt", weights_only=True))
    test_loss, scores, predictions = evaluate(model, test, loss_fn, data_config.num_classes,
                                              config.eval_batch_size)
    metrics = {**scores.by_name(data_config.class_names), "pixel_accuracy": scores.accuracy,
               "mean_foreground_dice": scores.mean_foreground_dice, "test_loss": test_loss,
               "best_epoch": stopper.best_epoch, "epochs_run": len(history), "test_images": len(test.images)}
    artifacts.write_json(out_dir / "metrics.json", metrics)
    artifacts.plot_curves(out_dir / "curves.png", history, data_config.class_names)
    artifacts.save_png(out_dir / "overlays.png", overlay_grid(test, predictions))
    return TrainResult(out_dir, stopper.best_epoch, len(history), scores, history)


def for_display(image: np.ndarray) -> np.ndarray:
    """The image as `overlay` should show it: unchanged when it uses the upper half of [0, 1], else
    (12-bit data in 16-bit files, a dim fluorescence channel) each channel stretched to its own
    0.5-99.8 percentile range, so a dim image is not a black panel."""
    if np.percentile(image, 99.8) >= 0.5:
        return image
    low = np.percentile(image, 0.5, axis=(1, 2), keepdims=True)
    high = np.percentile(image, 99.8, axis=(1, 2), keepdims=True)
    return np.clip((image - low) / np.maximum(high - low, 1e-12), 0, 1)


def overlay_grid(split: Split, predictions: list[np.ndarray], rows: int = 4) -> np.ndarray:
    """Rows of image | ground truth overlay | prediction overlay, for the first test images.

    Any channel count is shown as `inference.display_rgb` composes it."""
    tiles = []
    for image, mask, pred in list(zip(split.images, split.masks, predictions))[:rows]:
        visible = for_display(image)
        panels = [overlay(visible, np.zeros_like(mask)), overlay(visible, mask), overlay(visible, pred)]
        gap = np.full((mask.shape[0], 4, 3), 255, np.uint8)
        tiles.append(np.concatenate([panels[0], gap, panels[1], gap, panels[2]], 1))
    width = max(t.shape[1] for t in tiles)
    tiles = [np.pad(t, ((0, 4), (0, width - t.shape[1]), (0, 0)), constant_values=255) for t in tiles]
    return np.concatenate(tiles, 0)


def _write_run_config(out_dir: Path, config: TrainConfig, runtime: Runtime, in_channels: int,
                      data_config: DatasetConfig) -> None:
    artifacts.write_json(out_dir / "config.json", {
        "train": config.describe(), "device": str(runtime.device), "amp": runtime.amp,
        "channels_last": runtime.channels_last, "compile": runtime.compile, "in_channels": in_channels,
        "class_names": list(data_config.class_names)})


def load_trained(out_dir: Path) -> nn.Module:
    """Rebuild the network a run saved, from its `config.json` and `model.pt`."""
    import json
    run = json.loads((Path(out_dir) / "config.json").read_text())
    config = TrainConfig(**run["train"])
    model = create_model(config.arch, config.encoder, run["in_channels"], len(run["class_names"]))
    state = torch.load(Path(out_dir) / "model.pt", weights_only=True)
    if config.normalisation == "standardise":
        channels = run["in_channels"]
        model = nn.Sequential(Standardizer((0.0,) * channels, (1.0,) * channels).module(), model)
    model.load_state_dict(state)
    return model.eval()

