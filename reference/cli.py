"""`python -m reference data|train|baseline`: a thin layer of argument parsing over the library."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from reference.baselines import BASELINE_CLASSES, BASELINES, evaluate_baseline
from reference.config import CONFIGS, ConfigError, get_config
from reference.data import DatasetConfig, DatasetError, load_samples
from reference.models import ModelConfigError
from reference.synthetic import SyntheticSpec, write_dataset


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m reference", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    data = sub.add_parser("data", help="write the embedded synthetic dataset")
    data.add_argument("--out", type=Path, required=True, help="folder to write SPLIT/images and SPLIT/masks")
    data.add_argument("--seed", type=int, default=0, help="same seed, same bytes (default 0)")
    train = sub.add_parser("train", help="train a model and write model.pt, history.csv, metrics.json")
    train.add_argument("--config", default="auto",
                       help=f"one of {', '.join(CONFIGS)}, or auto: full on a GPU, smoke otherwise (default)")
    train.add_argument("--out", type=Path, required=True, help="run folder")
    train.add_argument("--data", type=Path, help="dataset folder (default: the embedded dataset)")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config key, e.g. --set encoder=resnet18 (repeatable)")
    base = sub.add_parser("baseline", help="score the classical baselines on a split")
    base.add_argument("--data", type=Path, required=True, help="dataset folder")
    base.add_argument("--split", default="test")
    return parser


def _embedded_data(out: Path, seed: int) -> Path:
    """The embedded dataset for a run, generated beside it once."""
    root = out / "data"
    if not (root / "test" / "masks").is_dir():
        print(f"writing the embedded dataset (seed {seed}) to {root}")
        write_dataset(root, seed)
    return root


def baseline_table(data: Path, split: str) -> dict[str, object]:
    """Scores of every classical baseline on one split; any channel count and bit depth."""
    config = DatasetConfig.from_folder(data)
    if config.num_classes != BASELINE_CLASSES:
        raise DatasetError(f"{data}: the classical baselines label {BASELINE_CLASSES} classes (background, "
                           f"cytoplasm, nucleus) but this dataset has {config.num_classes} "
                           f"({', '.join(config.class_names)}), so they cannot be scored on it")
    _, images, masks = load_samples(data, split, config)
    return {name: evaluate_baseline(name, images, masks) for name in BASELINES}


def _print_table(rows: dict[str, object], class_names: tuple[str, ...]) -> None:
    header = f"{'method':<22}" + "".join(f"{n:>12}" for n in class_names) + f"{'mean fg':>10}"
    print(header)
    print("-" * len(header))
    for name, scores in rows.items():
        cells = "".join(f"{d:>12.3f}" for d in scores.dice)
        print(f"{name:<22}{cells}{scores.mean_foreground_dice:>10.3f}")


def _baselines_beside_training(data: Path) -> dict[str, object]:
    """The baseline rows printed after training; a dataset they do not apply to gets a note instead."""
    try:
        return {f"baseline: {k}": v for k, v in baseline_table(data, "test").items()}
    except DatasetError as err:
        print(f"note: {err}")
        return {}


def _run(args: argparse.Namespace) -> int:
    if args.command == "data":
        counts = write_dataset(args.out, args.seed, SyntheticSpec())
        print(f"wrote {sum(counts.values())} images to {args.out} ({counts})")
        return 0
    if args.command == "baseline":
        _print_table(baseline_table(args.data, args.split), DatasetConfig.from_folder(args.data).class_names)
        return 0
    import torch

    from reference.training import train  # imports the training stack only when needed

    name = args.config if args.config != "auto" else ("full" if torch.cuda.is_available() else "smoke")
    config = get_config(name).with_overrides(args.set)
    data = args.data or _embedded_data(args.out, config.data_seed)
    result = train(config, data, args.out)
    print(f"\nDice on the test split ({len(result.history)} epochs, best epoch {result.best_epoch}):")
    rows = {f"{config.arch}-{config.encoder} ({name})": result.test_scores, **_baselines_beside_training(data)}
    _print_table(rows, DatasetConfig.from_folder(data).class_names)
    print(f"\nwrote {args.out}/model.pt, history.csv, metrics.json, curves.png, overlays.png")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except (ConfigError, DatasetError, ModelConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
