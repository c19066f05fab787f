"""Deterministic synthetic urothelial cytology: Papanicolaou-like brightfield images with 3-class masks.

Images are rendered in optical density (Beer-Lambert): every stain layer adds absorbance, so
overlapping cells darken where they overlap, as they do under a microscope. The scene is built to
defeat colour thresholds: stain strength varies between images, debris and inflammatory cells carry
nuclear stain but are background, faint mucus carries cytoplasmic stain, out-of-focus cells are
blurred, and illumination is uneven.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage
from skimage import draw

BACKGROUND, CYTOPLASM, NUCLEUS = 0, 1, 2

# Optical density per unit stain for R, G, B. Hematoxylin gives blue-purple nuclei; light green
# (cyanophilic) and eosin (eosinophilic) give the cyan-to-pink range of Pap-stained cytoplasm.
HEMATOXYLIN = np.array([0.65, 0.70, 0.29])
LIGHT_GREEN = np.array([0.60, 0.18, 0.28])
EOSIN = np.array([0.07, 0.55, 0.22])


@dataclass(frozen=True)
class SyntheticSpec:
    """Sizes of the embedded dataset; the defaults are what `python -m reference data` writes."""

    size: int = 256
    n_train: int = 48
    n_val: int = 8
    n_test: int = 16

    def split_sizes(self) -> dict[str, int]:
        return {"train": self.n_train, "val": self.n_val, "test": self.n_test}


@dataclass(frozen=True)
class _Cell:
    cy: float
    cx: float
    radius: float


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Zero-mean, unit-std Gaussian random field with correlation length `sigma` pixels."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return (field - field.mean()) / (field.std() + 1e-8)


def _blob(rng: np.random.Generator, cy: float, cx: float, radius: float, shape: tuple[int, int],
          vertices: int, jitter: float) -> np.ndarray:
    """A filled round-to-polygonal shape: few vertices and jitter make it angular, many make it round."""
    angles = np.sort(rng.uniform(0, 2 * np.pi, vertices)) if vertices < 12 else \
        np.linspace(0, 2 * np.pi, vertices, endpoint=False)
    elongation = rng.uniform(0.75, 1.0)
    tilt = rng.uniform(0, np.pi)
    radii = radius * (1 + jitter * rng.uniform(-1, 1, vertices))
    local = np.stack([radii * np.cos(angles), radii * np.sin(angles) * elongation])
    rot = np.array([[np.cos(tilt), -np.sin(tilt)], [np.sin(tilt), np.cos(tilt)]])
    ys, xs = rot @ local
    rr, cc = draw.polygon(cy + ys, cx + xs, shape)
    out = np.zeros(shape, bool)
    out[rr, cc] = True
    return out


def _nucleus(rng: np.random.Generator, cell: _Cell, cell_mask: np.ndarray, ratio: float) -> np.ndarray:
    """An ellipse of about `ratio` times the cell's area, placed inside the cell and clipped to it."""
    area = max(cell_mask.sum() * ratio, 6.0)
    aspect = rng.uniform(0.7, 1.0)
    r_major = np.sqrt(area / (np.pi * aspect))
    slack = max(cell.radius - r_major, 0.0) * 0.5
    cy = cell.cy + rng.uniform(-slack, slack)
    cx = cell.cx + rng.uniform(-slack, slack)
    rr, cc = draw.ellipse(cy, cx, r_major, r_major * aspect, cell_mask.shape, rotation=rng.uniform(0, np.pi))
    out = np.zeros(cell_mask.shape, bool)
    out[rr, cc] = True
    return out & ndimage.binary_erosion(cell_mask, iterations=1)


def _place_cells(rng: np.random.Generator, shape: tuple[int, int]) -> list[_Cell]:
    """Cells scattered singly and in clusters whose members touch or overlap."""
    cells: list[_Cell] = []
    size = min(shape)  # cell sizes follow the shorter side
    for _ in range(rng.integers(1, 5)):  # clusters
        cy, cx = rng.uniform(0.15, 0.85, 2) * shape
        for _ in range(rng.integers(2, 6)):
            radius = rng.uniform(0.055, 0.13) * size
            if cells and rng.random() < 0.8:
                anchor = cells[-1]
                angle = rng.uniform(0, 2 * np.pi)
                dist = (anchor.radius + radius) * rng.uniform(0.65, 1.0)
                cy, cx = anchor.cy + dist * np.sin(angle), anchor.cx + dist * np.cos(angle)
            cells.append(_Cell(cy, cx, radius))
    for _ in range(rng.integers(3, 9)):  # singles
        cells.append(_Cell(*rng.uniform(0.0, 1.0, 2) * shape, rng.uniform(0.05, 0.12) * size))
    return cells


def _confounders(rng: np.random.Generator, shape: tuple[int, int], od: np.ndarray, h_strength: float) -> None:
    """Debris, inflammatory cells and mucus: stained like cells, labelled background."""
    size = min(shape)
    for _ in range(rng.integers(3, 12)):  # debris: small, irregular, nuclear-stained or brown
        blob = _blob(rng, *rng.uniform(0, 1, 2) * shape, rng.uniform(0.008, 0.03) * size, shape, 6, 0.6)
        stain = HEMATOXYLIN if rng.random() < 0.6 else np.array([0.25, 0.45, 0.7])
        od += blob[..., None] * stain * h_strength * rng.uniform(0.6, 1.8)
    for _ in range(rng.integers(2, 9)):  # neutrophils (lobed) and lymphocytes (round), little cytoplasm
        cy, cx = rng.uniform(0, 1, 2) * shape
        r = rng.uniform(0.012, 0.02) * size
        lobes = rng.integers(1, 4)
        nucleus = np.zeros(shape, bool)
        for k in range(lobes):
            oy, ox = (rng.uniform(-r, r, 2) if lobes > 1 else (0, 0))
            rr, cc = draw.disk((cy + oy, cx + ox), r * (0.75 if lobes > 1 else 1.1), shape=shape)
            nucleus[rr, cc] = True
        rim = ndimage.binary_dilation(nucleus, iterations=2) & ~nucleus
        od += nucleus[..., None] * HEMATOXYLIN * h_strength * rng.uniform(1.4, 2.2)
        od += rim[..., None] * EOSIN * rng.uniform(0.1, 0.3)
    mucus = _smooth_noise(rng, shape, size * 0.05)
    strands = np.clip(mucus - rng.uniform(0.8, 1.6), 0, None)
    od += strands[..., None] * (EOSIN * 0.5 + LIGHT_GREEN * 0.5) * rng.uniform(0.1, 0.35)


def _render_cell(rng: np.random.Generator, cell: _Cell, shape: tuple[int, int], stains: tuple[float, float]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One cell's optical density, cytoplasm area and nucleus area."""
    c_strength, h_strength = stains
    vertices = int(rng.choice([5, 6, 7, 8, 24]))
    body = _blob(rng, cell.cy, cell.cx, cell.radius, shape, vertices, rng.uniform(0.05, 0.25))
    nucleus = _nucleus(rng, cell, body, rng.uniform(0.1, 0.7))
    hue = rng.uniform(0, 1)  # 0 cyanophilic, 1 eosinophilic
    cyto_stain = (1 - hue) * LIGHT_GREEN + hue * EOSIN
    membrane = body & ~ndimage.binary_erosion(body, iterations=2)
    texture = 1 + 0.25 * _smooth_noise(rng, shape, 3)
    density = body * c_strength * rng.uniform(0.6, 1.4) * texture + membrane * 0.12
    chromatin = 1 + 0.35 * _smooth_noise(rng, shape, 1.5)
    nuc_density = nucleus * h_strength * rng.uniform(0.8, 1.8) * chromatin
    od = density[..., None] * cyto_stain + nuc_density[..., None] * HEMATOXYLIN
    return od, body, nucleus


def generate_image(rng: np.random.Generator, size: int | tuple[int, int] = 256) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic field of view: `uint8 (H, W, 3)` RGB and `uint8 (H, W)` class mask; `size` is
    a side or a `(height, width)`."""
    shape = (size, size) if isinstance(size, int) else tuple(size)
    height, width = shape
    c_strength = rng.uniform(0.18, 0.55)  # stain strength varies between slides
    h_strength = rng.uniform(0.7, 1.3)
    od = np.zeros((*shape, 3))
    mask = np.zeros(shape, np.uint8)
    _confounders(rng, shape, od, h_strength)
    for cell in _place_cells(rng, shape):
        cell_od, body, nucleus = _render_cell(rng, cell, shape, (c_strength, h_strength))
        if rng.random() < 0.15:  # out of focus: the cell is there, its edges are not sharp
            cell_od = ndimage.gaussian_filter(cell_od, (rng.uniform(1.5, 3.0),) * 2 + (0,))
        od += cell_od
        mask[body & (mask != NUCLEUS)] = CYTOPLASM
        mask[nucleus] = NUCLEUS  # nuclei stay visible through overlying cytoplasm
    yy, xx = np.mgrid[0:height, 0:width] / np.array([height, width])[:, None, None]
    gy, gx = rng.uniform(-0.15, 0.15, 2)
    vignette = rng.uniform(0.0, 0.35) * ((yy - 0.5) ** 2 + (xx - 0.5) ** 2)
    illumination = np.clip(0.95 + gy * (yy - 0.5) + gx * (xx - 0.5) - vignette, 0.55, 1.0)
    tint = 1 + rng.uniform(-0.04, 0.04, 3)
    rgb = illumination[..., None] * tint * np.exp(-od)
    rgb = ndimage.gaussian_filter(rgb, (rng.uniform(0.4, 1.1),) * 2 + (0,))
    rgb += rng.normal(0, rng.uniform(0.01, 0.035), rgb.shape)
    return (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8), mask


def write_dataset(out: Path, seed: int = 0, spec: SyntheticSpec = SyntheticSpec()) -> dict[str, int]:
    """Write `SPLIT/images/NAME.png` and `SPLIT/masks/NAME.png`; the same seed gives the same bytes."""
    root = Path(out)
    counts = {}
    for split_index, (split, count) in enumerate(spec.split_sizes().items()):
        (root / split / "images").mkdir(parents=True, exist_ok=True)
        (root / split / "masks").mkdir(parents=True, exist_ok=True)
        for i in range(count):
            rng = np.random.default_rng([seed, split_index, i])
            image, mask = generate_image(rng, spec.size)
            name = f"{split}_{i:04d}.png"
            Image.fromarray(image).save(root / split / "images" / name, optimize=False)
            Image.fromarray(mask).save(root / split / "masks" / name, optimize=False)
        counts[split] = count
    return counts
