"""The whole reference pipeline on data that is not 8-bit RGB: one 16-bit channel, four 12-bit channels."""

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reference.baselines import BASELINES, evaluate_baseline, is_darkfield
from reference.cli import main
from reference.data import load_samples
from reference.inference import display_rgb, overlay, predict_large
from reference.postprocess import clean_mask, count_nuclei
from reference.tiling import TileGrid, merge_tiles, split_tiles
from reference.training import for_display, load_trained
from tests.reference.datasets import SIDE, SPLIT_SIZES

FAST = ["--set", "encoder=resnet18", "--set", "epochs=1", "--set", "steps_per_epoch=2", "--set", "batch_size=2",
        "--set", "tile=64", "--set", "eval_batch_size=2"]
RUN_FILES = ("model.pt", "history.csv", "metrics.json", "config.json", "curves.png", "overlays.png")


@pytest.fixture(scope="module", params=[("grey16_dataset", 1), ("fluorescence4_dataset", 4)],
                ids=["grey16", "fluorescence4"])
def cli_run(request, tmp_path_factory):
    """`python -m reference train --config smoke --data DATASET` with a seconds-long schedule."""
    fixture, channels = request.param
    data = request.getfixturevalue(fixture)
    out = tmp_path_factory.mktemp("run") / "run"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        status = main(["train", "--config", "smoke", "--data", str(data), "--out", str(out), *FAST])
    return status, data, out, channels, stdout.getvalue() + stderr.getvalue()


def test_train_exits_zero_and_writes_every_file(cli_run):
    status, _, out, channels, output = cli_run
    assert status == 0, output
    for name in RUN_FILES:
        assert (out / name).stat().st_size > 0, name
    assert json.loads((out / "config.json").read_text())["in_channels"] == channels
    assert Image.open(out / "curves.png").format == "PNG"
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 <= metrics["pixel_accuracy"] <= 1 and metrics["test_images"] == SPLIT_SIZES["test"]
    assert "baseline: otsu" in output and "baseline: kmeans" in output


def test_overlays_png_shows_every_test_image_visibly(cli_run):
    _, _, out, _, _ = cli_run
    grid = np.asarray(Image.open(out / "overlays.png"))
    rows = min(SPLIT_SIZES["test"], 4)
    assert grid.shape == (rows * (SIDE + 4), 3 * SIDE + 8, 3) and grid.dtype == np.uint8
    first_image = grid[:SIDE, :SIDE]
    assert first_image.std() > 10  # not a flat panel: 12-bit data is stretched for display


def test_trained_model_predicts_large_images_and_postprocesses(cli_run):
    _, data, out, channels, _ = cli_run
    model = load_trained(out)
    _, images, _ = load_samples(data, "test")
    image = np.concatenate([images[0], images[1]], axis=2)  # 64 x 128: more than one tile
    assert image.shape[0] == channels
    labels = predict_large(model, image, tile=64, overlap=16)
    assert labels.shape == image.shape[1:] and labels.dtype == np.int64
    assert set(np.unique(labels)) <= {0, 1, 2}
    cleaned = clean_mask(labels)
    assert cleaned.shape == labels.shape and count_nuclei(cleaned).count >= 0


@pytest.mark.parametrize("dataset", ["grey16_dataset", "fluorescence4_dataset"])
def test_baseline_command_scores_the_dataset(dataset, request, capsys):
    assert main(["baseline", "--data", str(request.getfixturevalue(dataset))]) == 0
    out = capsys.readouterr().out
    assert "otsu" in out and "kmeans" in out and "nucleus" in out


@pytest.mark.parametrize("dataset", ["grey16_dataset", "fluorescence4_dataset"])
def test_baselines_find_cells_in_either_polarity(dataset, request):
    """Brightfield grey and darkfield fluorescence alike: the densest-stained class is found, far above chance."""
    _, images, masks = load_samples(request.getfixturevalue(dataset), "train")
    assert {is_darkfield(im) for im in images} == {dataset.startswith("fluorescence")}
    for name in BASELINES:
        assert evaluate_baseline(name, images, masks).mean_foreground_dice > 0.4, name


def test_baselines_keep_their_numbers_on_rgb(tiny_dataset):
    """The embedded RGB data is brightfield: optical density, exactly as documented in the README."""
    _, images, masks = load_samples(tiny_dataset, "train")
    assert not any(is_darkfield(im) for im in images)
    expected = {"otsu": [0.950086, 0.485521, 0.722045], "kmeans": [0.957436, 0.380373, 0.630665]}
    for name, dice in expected.items():
        np.testing.assert_allclose(evaluate_baseline(name, images, masks).dice, dice, atol=5e-4, err_msg=name)


def _disk_scene(side: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A cell (class 1) with a nucleus (class 2) in the middle of a square, as a mask."""
    yy, xx = np.mgrid[:side, :side]
    radius = np.hypot(yy - side / 2, xx - side / 2)
    return np.where(radius < 8, 2, np.where(radius < 20, 1, 0))


@pytest.mark.parametrize("channels", [1, 2, 4])
def test_darkfield_nuclei_are_the_densest_class(channels):
    """Bright nuclei on a dark background are nucleus, not background, whatever the channel count."""
    mask = _disk_scene()
    noise = np.random.default_rng(0).normal(0, 0.002, (channels, *mask.shape))
    image = (np.choose(mask, [0.02, 0.05, 0.12])[None] + noise).astype(np.float32)
    assert is_darkfield(image)
    for name, method in BASELINES.items():
        labels = method(image)
        assert labels[32, 32] == 2 and labels[32, 20] == 1 and labels[2, 2] == 0, name


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_a_blank_field_is_all_background(channels):
    """A flat image has one grey level, too few for Otsu's three classes: background, not a crash."""
    image = np.full((channels, 64, 64), 0.5, np.float32)
    for name, method in BASELINES.items():
        labels = method(image)
        assert labels.dtype == np.int64 and labels.shape == (64, 64) and not labels.any(), name


@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("background,cell", [(0.9, 0.2), (0.1, 0.8)], ids=["brightfield", "darkfield"])
def test_a_two_level_image_splits_in_two(channels, background, cell):
    """A binary image has two grey levels: the cell is told from the background, not a crash."""
    mask = (_disk_scene() == 2).astype(np.int64)
    image = np.repeat(np.choose(mask, [background, cell])[None], channels, 0).astype(np.float32)
    for name, method in BASELINES.items():
        labels = method(image)
        assert labels.dtype == np.int64 and set(np.unique(labels)) == {0, 1}, name
        np.testing.assert_array_equal(labels > 0, mask > 0, err_msg=name)


def test_baselines_refuse_a_dataset_with_other_classes(grey16_dataset, tmp_path, capsys):
    """Three density levels cannot score a two-class dataset; the message says why instead of a traceback."""
    import shutil

    data = shutil.copytree(grey16_dataset, tmp_path / "binary")
    (data / "dataset.toml").write_text('class_names = ["background", "cell"]\n')
    for path in data.glob("*/masks/*.png"):
        Image.fromarray((np.asarray(Image.open(path)) > 0).astype(np.uint8)).save(path)
    assert main(["baseline", "--data", str(data)]) == 2
    assert "the classical baselines label 3 classes" in capsys.readouterr().err
    from reference.cli import _baselines_beside_training  # after training: a note, and exit 0

    assert _baselines_beside_training(data) == {}
    assert "note: " in capsys.readouterr().out


@pytest.mark.parametrize("shape", [(1, 64, 64), (2, 64, 64), (3, 64, 64), (4, 64, 64), (64, 64), (64, 64, 3)])
def test_display_and_overlay_take_any_channel_count(shape):
    image = np.random.default_rng(1).random(shape).astype(np.float32)
    rgb = display_rgb(image)
    assert rgb.shape == (64, 64, 3)
    mask = np.zeros((64, 64), np.int64)
    mask[10:20, 10:20] = 2
    out = overlay(image, mask)
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[mask == 0], np.rint(rgb * 255)[mask == 0])
    if shape[0] in (3, 4):  # channels-first colour: the first three channels as they are
        np.testing.assert_array_equal(rgb, np.moveaxis(image[:3], 0, -1))
    if shape[0] == 1:
        np.testing.assert_array_equal(rgb, np.repeat(np.moveaxis(image, 0, -1), 3, -1))


def test_for_display_stretches_dim_images_only():
    bright = np.random.default_rng(2).random((3, 32, 32)).astype(np.float32)
    assert for_display(bright) is bright
    dim = bright[:1] * 0.06  # 12-bit data read from a 16-bit file
    stretched = for_display(dim)
    assert stretched.max() == pytest.approx(1.0) and stretched.min() == 0.0


@pytest.mark.parametrize("shape", [(1, 150, 130), (4, 150, 130), (150, 130)])
def test_tiles_round_trip_for_any_channel_count(shape):
    image = np.random.default_rng(3).random(shape).astype(np.float32)
    grid = TileGrid(150, 130, tile=64, overlap=16)
    np.testing.assert_allclose(merge_tiles(split_tiles(image, grid), grid), image, atol=1e-6)


def test_sixteen_bit_colour_png_is_refused_not_truncated():
    """Pillow keeps only the high byte of 16-bit colour PNG (12-bit data would keep 4 bits): say so, and how to fix."""
    from reference.data import DatasetError, read_image

    fixture = Path(__file__).parent / "fixtures" / "rgb16.png"  # 5 x 4, 16-bit RGB
    assert fixture.read_bytes()[24:26] == bytes([16, 2])
    with pytest.raises(DatasetError, match="16-bit colour PNG cannot be read at full depth.*16-bit TIFF"):
        read_image(fixture)


def test_sixteen_bit_grey_png_keeps_its_depth(grey16_dataset):
    _, images, _ = load_samples(grey16_dataset, "train")
    levels = np.unique(np.round(images[0] * 65535))
    assert images[0].shape[0] == 1 and images[0].max() > 0.5 and np.any(levels % 257 != 0)
