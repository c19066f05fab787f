import csv
import json

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from reference import build_model, predict
from reference.baselines import evaluate_baseline
from reference.config import TrainConfig
from reference.data import load_samples, load_split
from reference.training import EarlyStopping, load_trained, resolve_runtime, train

TINY_RUN = TrainConfig(encoder="resnet18", tile=64, batch_size=4, steps_per_epoch=4, epochs=3, lr=3e-3)


@pytest.fixture(scope="module")
def tiny_run(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    return train(TINY_RUN, tiny_dataset, out, log=lambda *_: None)


def test_a_short_training_lowers_the_loss(tiny_run):
    losses = [row["train_loss"] for row in tiny_run.history]
    assert losses[-1] < losses[0]


def test_run_writes_every_artifact(tiny_run):
    out = tiny_run.out_dir
    for name in ("model.pt", "history.csv", "metrics.json", "config.json", "curves.png", "overlays.png"):
        assert (out / name).stat().st_size > 0, name
    rows = list(csv.DictReader((out / "history.csv").open()))
    assert len(rows) == 3
    assert {"epoch", "train_loss", "val_loss", "val_dice_cytoplasm", "val_dice_nucleus"} <= set(rows[0])
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["dice"]) == set(metrics["iou"]) == {"background", "cytoplasm", "nucleus"}
    fg = [metrics["dice"]["cytoplasm"], metrics["dice"]["nucleus"]]
    assert metrics["mean_foreground_dice"] == pytest.approx(np.mean(fg))
    assert 0 <= metrics["pixel_accuracy"] <= 1
    assert not list(out.glob(".*.tmp"))  # no half-written file left behind


def test_checkpoint_round_trips(tiny_run, tiny_dataset):
    state = torch.load(tiny_run.out_dir / "model.pt", weights_only=True)
    model = load_trained(tiny_run.out_dir)
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key])
    images, masks = load_split(tiny_dataset, "test")
    from reference.metrics import SegmentationScores, confusion_matrix
    cm = sum(confusion_matrix(p, m, 3) for p, m in zip(predict(model, images), masks))
    np.testing.assert_allclose(SegmentationScores.from_confusion(cm).dice, tiny_run.test_scores.dice)


def test_training_is_deterministic_on_cpu(tiny_dataset, tmp_path):
    config = TrainConfig(encoder="resnet18", tile=64, batch_size=2, steps_per_epoch=2, epochs=1)
    a = train(config, tiny_dataset, tmp_path / "a", log=lambda *_: None)
    b = train(config, tiny_dataset, tmp_path / "b", log=lambda *_: None)
    assert a.history == b.history
    sa = torch.load(tmp_path / "a" / "model.pt", weights_only=True)
    sb = torch.load(tmp_path / "b" / "model.pt", weights_only=True)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def _as_sixteen_bit_grey_without_cytoplasm(source, target):
    """A 'real' dataset: 16-bit single-channel TIFF images, cytoplasm unlabelled (merged into background)."""
    for split in ("train", "val", "test"):
        names, images, masks = load_samples(source, split)
        (target / split / "images").mkdir(parents=True)
        (target / split / "masks").mkdir(parents=True)
        for name, image, mask in zip(names, images, masks):
            grey = (image.mean(0) * 4000 + 100).astype(np.uint16)  # 12-bit camera range
            tifffile.imwrite(target / split / "images" / f"{name}.tif", grey)
            Image.fromarray(np.where(mask == 1, 0, mask).astype(np.uint8)).save(target / split / "masks" / f"{name}.png")
    (target / "dataset.toml").write_text('intensity = "percentile"\n')


def test_trains_on_single_channel_sixteen_bit_data_lacking_a_class(tiny_dataset, tmp_path):
    real = tmp_path / "real"
    _as_sixteen_bit_grey_without_cytoplasm(tiny_dataset, real)
    config = TrainConfig(encoder="resnet18", tile=64, batch_size=2, steps_per_epoch=2, epochs=1,
                         normalisation="standardise")
    result = train(config, real, tmp_path / "run", log=lambda *_: None)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["dice"]["cytoplasm"] is None and metrics["iou"]["cytoplasm"] is None
    assert metrics["dice"]["nucleus"] is not None
    assert metrics["mean_foreground_dice"] == pytest.approx(metrics["dice"]["nucleus"])
    model = load_trained(tmp_path / "run")
    assert model[1].encoder.conv1.in_channels == 1
    assert not torch.equal(model[0].mean, torch.zeros_like(model[0].mean))  # training statistics saved
    assert result.test_scores.present.tolist() == [True, False, True]


def test_early_stopping_waits_for_patience():
    stopper = EarlyStopping(patience=2)
    assert stopper.update(0.5, 1) and not stopper.should_stop
    assert not stopper.update(0.4, 2) and not stopper.should_stop
    assert not stopper.update(0.5, 3) and stopper.should_stop
    assert stopper.best_epoch == 1


def test_gpu_only_features_fall_back_on_a_cpu():
    runtime = resolve_runtime(TrainConfig(device="cuda", amp=True, channels_last=True, compile=True))
    if torch.cuda.is_available():
        assert runtime.device.type == "cuda" and runtime.amp and runtime.compile
    else:
        assert runtime.device.type == "cpu" and not (runtime.amp or runtime.channels_last or runtime.compile)
        assert "no GPU here" in runtime.notes[0]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_path_trains_with_amp_channels_last_and_compile(tiny_dataset, tmp_path):
    config = TrainConfig(encoder="resnet18", tile=64, batch_size=4, steps_per_epoch=3, epochs=2, device="cuda",
                         amp=True, channels_last=True, compile=True, num_workers=2)
    result = train(config, tiny_dataset, tmp_path, log=lambda *_: None)
    run = json.loads((tmp_path / "config.json").read_text())
    assert run["device"].startswith("cuda") and run["amp"] and run["compile"] and run["channels_last"]
    assert np.isfinite(result.history[-1]["train_loss"])


@pytest.mark.slow
def test_smoke_run_reaches_the_bar_and_beats_the_classical_baselines(smoke_run):
    metrics = json.loads((smoke_run / "metrics.json").read_text())
    assert metrics["mean_foreground_dice"] >= 0.75
    _, images, masks = load_samples(smoke_run / "data", "test")
    for name in ("otsu", "kmeans"):
        baseline = evaluate_baseline(name, images, masks).mean_foreground_dice
        assert metrics["mean_foreground_dice"] >= baseline + 0.10, name
    model = build_model()
    model.load_state_dict(torch.load(smoke_run / "model.pt", weights_only=True))  # the contract's format
