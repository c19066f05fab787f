"""Cutting large images into overlapping square tiles and putting tiles (or their predictions) back.

Overlaps are blended with a weight that falls towards each tile's edge, so predictions merged from
neighbouring tiles meet without seams; merging unchanged tiles gives the original image back exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _starts(length: int, tile: int, stride: int) -> list[int]:
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile + 1, stride))
    if starts[-1] != length - tile:
        starts.append(length - tile)
    return starts


@dataclass(frozen=True)
class TileGrid:
    """Where the tiles of an `height` x `width` image lie; tiles are `tile` pixels, `overlap` shared."""

    height: int
    width: int
    tile: int = 256
    overlap: int = 32

    def __post_init__(self) -> None:
        if not 0 <= self.overlap < self.tile:
            raise ValueError(f"overlap must lie in [0, tile), got overlap={self.overlap}, tile={self.tile}")

    @property
    def tile_shape(self) -> tuple[int, int]:
        return min(self.tile, self.height), min(self.tile, self.width)

    @property
    def positions(self) -> list[tuple[int, int]]:
        stride = self.tile - self.overlap
        return [(y, x) for y in _starts(self.height, self.tile, stride)
                for x in _starts(self.width, self.tile, stride)]

    def weights(self) -> np.ndarray:
        """Per-pixel blending weight of one tile: 1 in the middle, falling linearly across the overlap."""
        th, tw = self.tile_shape
        ramp_y = np.minimum(np.arange(th) + 1, np.arange(th)[::-1] + 1) / max(self.overlap, 1)
        ramp_x = np.minimum(np.arange(tw) + 1, np.arange(tw)[::-1] + 1) / max(self.overlap, 1)
        return np.clip(np.minimum.outer(ramp_y, ramp_x), 1e-3, 1.0)


def split_tiles(array: np.ndarray, grid: TileGrid) -> np.ndarray:
    """`(..., H, W)` -> `(T, ..., tile, tile)` in `grid.positions` order."""
    th, tw = grid.tile_shape
    return np.stack([array[..., y:y + th, x:x + tw] for y, x in grid.positions])


def merge_tiles(tiles: np.ndarray, grid: TileGrid) -> np.ndarray:
    """`(T, ..., tile, tile)` -> `(..., H, W)`, a weighted mean where tiles overlap."""
    th, tw = grid.tile_shape
    out = np.zeros(tiles.shape[1:-2] + (grid.height, grid.width), np.float64)
    total = np.zeros((grid.height, grid.width), np.float64)
    weight = grid.weights()
    for tile, (y, x) in zip(tiles, grid.positions):
        out[..., y:y + th, x:x + tw] += tile * weight
        total[y:y + th, x:x + tw] += weight
    return (out / total).astype(tiles.dtype if np.issubdtype(tiles.dtype, np.floating) else np.float64)
