"""Shepard–Metzler objects: self-avoiding lattice walks of cubes (mese_environment_reference.md §1).

A shape is the sequence of its n-1 step directions; its class label is the walk's index in the canonical
(lexicographic) enumeration of all self-avoiding walks of that length (726 for 5 blocks), so labels agree however
the data was sharded.
"""

from __future__ import annotations

import colorsys
from functools import lru_cache

import numpy as np

BLOCK_HALF_SIZE = 0.0175  # metres; lattice pitch = edge = 0.035 m
DIRECTIONS = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=np.int64)


def sample_walk(rng: np.random.Generator, blocks: int) -> np.ndarray:
    """(blocks-1,) int64 direction ids of a self-avoiding walk grown from the last block, re-drawing occupied cells.

    Raises ``RuntimeError`` if the walk traps itself (impossible below 8 blocks on the cubic lattice).
    """
    cells = [(0, 0, 0)]
    steps = []
    while len(cells) < blocks:
        free = [d for d in range(6) if tuple(np.add(cells[-1], DIRECTIONS[d])) not in cells]
        if not free:
            raise RuntimeError("self-avoiding walk trapped itself")
        while True:  # the reference's sequential rejection sampler: draw uniformly, re-draw while occupied
            d = int(rng.integers(6))
            if d in free:
                break
        steps.append(d)
        cells.append(tuple(np.add(cells[-1], DIRECTIONS[d])))
    return np.array(steps, dtype=np.int64)


def block_centres(steps: np.ndarray) -> np.ndarray:
    """(n, 3) float64 block centres in metres, centroid at the origin, for a walk of n-1 direction ids."""
    cells = np.concatenate([np.zeros((1, 3), np.int64), np.cumsum(DIRECTIONS[steps], axis=0)])
    centres = cells * (2 * BLOCK_HALF_SIZE)
    return centres - centres.mean(axis=0)


@lru_cache(maxsize=None)
def walk_index(blocks: int) -> dict[tuple[int, ...], int]:
    """Canonical class labels: every self-avoiding walk of ``blocks-1`` steps -> its lexicographic index."""
    table: dict[tuple[int, ...], int] = {}

    def grow(path: list[int], cells: list[tuple[int, int, int]]) -> None:
        if len(cells) == blocks:
            table[tuple(path)] = len(table)
            return
        for d in range(6):
            nxt = tuple(np.add(cells[-1], DIRECTIONS[d]).tolist())
            if nxt not in cells:
                grow(path + [d], cells + [nxt])

    grow([], [(0, 0, 0)])
    return table


def class_label(steps: np.ndarray) -> int:
    """The walk's index in the canonical enumeration of walks of its length (726 classes for 5 blocks)."""
    return walk_index(len(steps) + 1)[tuple(int(s) for s in steps)]


def sample_colours(rng: np.random.Generator, blocks: int, saturation: tuple[float, float] = (0.75, 1.0)) -> np.ndarray:
    """(blocks, 3) float64 RGB in [0, 1]: HSV with hue ~ U(0, 1), saturation ~ U(saturation), value 1 (reference §1)."""
    hue = rng.uniform(0.0, 1.0, blocks)
    sat = rng.uniform(*saturation, blocks)
    return np.array([colorsys.hsv_to_rgb(h, s, 1.0) for h, s in zip(hue, sat)])
