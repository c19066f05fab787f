"""Files a training run writes: each written to a temporary name, synced, then renamed into place,
so an interrupted run never leaves a half-written file behind."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from grader.fileio import write_atomic


def _json_safe(value: object) -> object:
    """NaN becomes null, numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_json(path: Path, data: object) -> Path:
    text = json.dumps(_json_safe(data), indent=2, allow_nan=False) + "\n"
    return write_atomic(path, lambda h: h.write(text.encode()))


def write_csv(path: Path, rows: list[dict[str, object]]) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else [])
    writer.writeheader()
    writer.writerows(_json_safe(rows))
    return write_atomic(path, lambda h: h.write(buffer.getvalue().encode()))


def save_state_dict(path: Path, state: dict[str, torch.Tensor]) -> Path:
    return write_atomic(path, lambda h: torch.save(state, h))


def save_png(path: Path, rgb: np.ndarray) -> Path:
    def write(handle: io.BufferedWriter) -> None:
        Image.fromarray(rgb).save(handle, format="PNG")
    return write_atomic(path, write)


def plot_curves(path: Path, history: list[dict[str, object]], class_names: tuple[str, ...]) -> Path:
    """Loss and per-class validation Dice by epoch, as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    epochs = [row["epoch"] for row in history]
    fig, (ax_loss, ax_dice) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [r["train_loss"] for r in history], label="train")
    ax_loss.plot(epochs, [r["val_loss"] for r in history], label="validation")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="Loss")
    ax_loss.legend()
    for name in class_names[1:]:
        ax_dice.plot(epochs, [r[f"val_dice_{name}"] for r in history], label=name)
    ax_dice.set(xlabel="epoch", ylabel="Dice", title="Validation Dice", ylim=(0, 1))
    ax_dice.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return write_atomic(path, lambda h: h.write(buffer.getvalue()))
