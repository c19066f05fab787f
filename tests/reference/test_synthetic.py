import hashlib

import numpy as np
from PIL import Image

from reference.synthetic import NUCLEUS, SyntheticSpec, generate_image, write_dataset

SMALL = SyntheticSpec(size=64, n_train=2, n_val=1, n_test=1)


def _digest(root):
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.png")):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def test_same_seed_gives_same_bytes(tmp_path):
    write_dataset(tmp_path / "a", seed=7, spec=SMALL)
    write_dataset(tmp_path / "b", seed=7, spec=SMALL)
    write_dataset(tmp_path / "c", seed=8, spec=SMALL)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_layout_matches_the_contract(tmp_path):
    counts = write_dataset(tmp_path, seed=0, spec=SMALL)
    assert counts == {"train": 2, "val": 1, "test": 1}
    for split, n in counts.items():
        images = sorted((tmp_path / split / "images").glob("*.png"))
        masks = sorted((tmp_path / split / "masks").glob("*.png"))
        assert [p.name for p in images] == [p.name for p in masks] and len(images) == n
        with Image.open(images[0]) as im, Image.open(masks[0]) as m:
            assert im.mode == "RGB" and m.mode == "L"
            assert set(np.unique(np.asarray(m))) <= {0, 1, 2}


def _scenes(n=12, size=192):
    return [generate_image(np.random.default_rng([5, i]), size) for i in range(n)]


def test_every_class_occurs_and_nuclei_sit_inside_cells():
    for image, mask in _scenes(6):
        assert image.dtype == np.uint8 and image.shape == mask.shape + (3,)
        assert set(np.unique(mask)) == {0, 1, 2}
        nucleus_fraction = (mask == NUCLEUS).sum() / (mask > 0).sum()
        assert 0.05 < nucleus_fraction < 0.8


def test_papanicolaou_colours_nuclei_dark_blue_purple_cytoplasm_pale():
    for image, mask in _scenes(6):
        rgb = image.astype(float)
        background, cytoplasm, nucleus = (rgb[mask == k].mean(0) for k in range(3))
        assert nucleus.sum() < cytoplasm.sum() < background.sum()
        assert nucleus[2] > nucleus[1]  # blue over green: hematoxylin's blue-purple


def test_stain_strength_varies_between_images():
    contrasts = []
    for image, mask in _scenes(10):
        grey = image.astype(float).mean(-1)
        contrasts.append(grey[mask == 0].mean() - grey[mask == 1].mean())
    assert max(contrasts) > 2 * min(contrasts)


def test_colour_alone_cannot_separate_the_classes():
    """Background holds pixels as dark as nuclei (debris, inflammatory cells) and cytoplasm is
    often lighter than some background (mucus, vignetting): no colour threshold is exact."""
    dark_background, light_cytoplasm = 0, 0
    for image, mask in _scenes(8):
        grey = image.astype(float).mean(-1)
        nucleus_median = np.median(grey[mask == 2])
        dark_background += int((grey[mask == 0] < nucleus_median).sum())
        light_cytoplasm += int((grey[mask == 1] > np.percentile(grey[mask == 0], 5)).sum())
    assert dark_background > 200
    assert light_cytoplasm > 200
