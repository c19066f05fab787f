import numpy as np
import pytest
import tifffile
from PIL import Image

from reference.data import DatasetConfig, DatasetError, load_samples, load_split, read_image, read_mask


def _write_pair(root, split, name, image, mask, image_suffix=".png", mask_suffix=".png"):
    for sub in ("images", "masks"):
        (root / split / sub).mkdir(parents=True, exist_ok=True)
    image_path = root / split / "images" / f"{name}{image_suffix}"
    mask_path = root / split / "masks" / f"{name}{mask_suffix}"
    for path, array in ((image_path, image), (mask_path, mask)):
        if path.suffix == ".tif":
            tifffile.imwrite(path, array)
        else:
            Image.fromarray(array).save(path)
    return image_path, mask_path


def test_load_split_follows_the_contract(tiny_dataset):
    images, masks = load_split(tiny_dataset, "train")
    assert images.dtype == np.float32 and images.shape == (6, 3, 96, 96)
    assert masks.dtype == np.int64 and masks.shape == (6, 96, 96)
    assert 0 <= images.min() and images.max() <= 1
    assert set(np.unique(masks)) <= {0, 1, 2}
    first = np.asarray(Image.open(sorted((tiny_dataset / "train" / "images").iterdir())[0]))
    np.testing.assert_allclose(images[0], np.moveaxis(first, -1, 0) / 255, atol=1e-6)


def test_eight_and_sixteen_bit_png_scale_by_their_depth(tmp_path):
    eight = np.array([[0, 255], [128, 64]], np.uint8)
    sixteen = eight.astype(np.uint16) * 257
    Image.fromarray(eight).save(tmp_path / "a.png")
    Image.fromarray(sixteen).save(tmp_path / "b.png")
    a, b = read_image(tmp_path / "a.png"), read_image(tmp_path / "b.png")
    assert a.shape == b.shape == (1, 2, 2)
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert a.max() == 1.0


def test_multichannel_fluorescence_tiff_keeps_its_channels(tmp_path):
    stack = np.random.default_rng(0).integers(0, 4096, (4, 80, 90), dtype=np.uint16)  # 12-bit data
    tifffile.imwrite(tmp_path / "f.tif", stack, photometric="minisblack")
    image = read_image(tmp_path / "f.tif", intensity="percentile")
    assert image.shape == (4, 80, 90) and image.dtype == np.float32
    assert image.min() == 0 and image.max() == 1
    channels_last = np.moveaxis(stack[:3], 0, -1).copy()
    tifffile.imwrite(tmp_path / "g.tif", channels_last, photometric="rgb")
    assert read_image(tmp_path / "g.tif").shape == (3, 80, 90)


def test_minmax_scales_each_channel_to_the_full_range():
    from reference.data import scale_intensity

    raw = np.stack([np.full((4, 4), 100.0), np.linspace(-5, 5, 16).reshape(4, 4)])
    raw[0, 0, 0] = 300
    out = scale_intensity(raw, "minmax")
    assert out[0].min() == 0 and out[0].max() == 1 and out[1].min() == 0 and out[1].max() == 1


def test_colour_coded_masks_map_through_dataset_toml(tmp_path):
    mask_rgb = np.zeros((8, 8, 3), np.uint8)
    mask_rgb[2:6, 2:6] = (0, 255, 0)
    mask_rgb[3:5, 3:5] = (255, 0, 255)
    _write_pair(tmp_path, "train", "x", np.zeros((8, 8, 3), np.uint8), mask_rgb)
    (tmp_path / "dataset.toml").write_text('[mask_colors]\n"0,0,0" = 0\n"0,255,0" = 1\n"255,0,255" = 2\n')
    _, _, masks = load_samples(tmp_path, "train")
    assert masks[0][0, 0] == 0 and masks[0][2, 2] == 1 and masks[0][4, 4] == 2


def test_unknown_mask_colour_names_the_colour(tmp_path):
    mask_rgb = np.zeros((4, 4, 3), np.uint8)
    mask_rgb[0, 0] = (9, 9, 200)
    Image.fromarray(mask_rgb).save(tmp_path / "m.png")
    with pytest.raises(DatasetError, match=r'"9,9,200" are not in \[mask_colors\]'):
        read_mask(tmp_path / "m.png", {(0, 0, 0): 0})
    with pytest.raises(DatasetError, match="colour-coded; add a \\[mask_colors\\]"):
        read_mask(tmp_path / "m.png")


def test_index_masks_from_tiff_and_png_agree(tmp_path):
    mask = np.random.default_rng(1).integers(0, 3, (16, 16)).astype(np.uint8)
    tifffile.imwrite(tmp_path / "m.tif", mask)
    Image.fromarray(mask).save(tmp_path / "m.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "m.tif"), read_mask(tmp_path / "m.png"))
    assert read_mask(tmp_path / "m.tif").dtype == np.int64


def test_unpaired_files_and_missing_folders_are_clear_errors(tmp_path):
    with pytest.raises(DatasetError, match="expected folders train/images and train/masks"):
        load_samples(tmp_path, "train")
    _write_pair(tmp_path, "train", "a", np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.uint8))
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "train" / "images" / "b.png")
    with pytest.raises(DatasetError, match=r"image or a mask but not both: \['b'\]"):
        load_samples(tmp_path, "train")


def test_out_of_range_labels_and_size_mismatch_are_reported(tmp_path):
    _write_pair(tmp_path, "train", "a", np.zeros((4, 4, 3), np.uint8), np.full((4, 4), 7, np.uint8))
    with pytest.raises(DatasetError, match="class indices must lie in 0..2"):
        load_samples(tmp_path, "train")
    _write_pair(tmp_path, "val", "a", np.zeros((4, 5, 3), np.uint8), np.zeros((4, 4), np.uint8))
    with pytest.raises(DatasetError, match=r"image is \(4, 5\) but its mask is \(4, 4\)"):
        load_samples(tmp_path, "val")


def test_bad_dataset_toml_names_the_key(tmp_path):
    (tmp_path / "dataset.toml").write_text('intensity = "gamma"\n')
    with pytest.raises(DatasetError, match="intensity = 'gamma'; use one of dtype, minmax, percentile"):
        DatasetConfig.from_folder(tmp_path)
    (tmp_path / "dataset.toml").write_text('colours = 1\n')
    with pytest.raises(DatasetError, match="unknown keys \\['colours'\\]"):
        DatasetConfig.from_folder(tmp_path)
