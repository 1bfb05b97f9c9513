"""Which modalities a scene shows: the missing-modality masks of paper §4 / Fig. 5 (gmn_model_reference.md §6.5).

Training (and "val_missing"): each scene gets ONE fixed combination with A..B modalities, drawn with probability
∝ 1/size per combination as the authors' code does, so P(size s) ∝ C(M, s)/s (M = 8, sizes 7..8: 0.90 / 0.10).
It is a pure function of (seed, split, scene index), so any worker, machine or resumed run gets the same masks.
"val_full": every one of the 2^M - 1 combinations is possible; the size is drawn uniformly first, then the subset.

The context-modality mask (``train.context_mask = "code"``, reference §5.3 items 1-3, §8.2 row 7): per training
scene and step, which of the modalities the scene shows may have context; the others give all their views as targets.
"""

from __future__ import annotations

from math import comb

import numpy as np

from .format import SPLIT_CODES

MASK_STREAM = 11  # the seed stream of the masks (training/trainer.py uses 1 and 2 for batches and noise)
CONTEXT_MASK_STREAM = 12  # the seed stream of the context-modality masks


def size_probabilities(num_modalities: int, low: int, high: int) -> np.ndarray:
    """(high - low + 1,) P(size) of the fixed masks: ∝ C(M, s) / s for s = low..high."""
    weights = np.array([comb(num_modalities, s) / s for s in range(low, high + 1)])
    return weights / weights.sum()


def fixed_mask(seed: int, split: str, scene: int, num_modalities: int, low: int, high: int) -> np.ndarray:
    """(M,) bool: the modalities scene ``scene`` of ``split`` shows, one combination of ``low``..``high`` of them."""
    rng = np.random.default_rng([seed, MASK_STREAM, SPLIT_CODES[split], scene])
    size = low + rng.choice(high - low + 1, p=size_probabilities(num_modalities, low, high))
    mask = np.zeros(num_modalities, bool)
    mask[rng.choice(num_modalities, size=size, replace=False)] = True
    return mask


def fixed_masks(seed: int, split: str, scenes, num_modalities: int, sizes) -> np.ndarray | None:
    """(len(scenes), M) bool ``fixed_mask`` rows, or None when ``sizes`` is empty (every modality shown)."""
    if not sizes:
        return None
    return np.stack([fixed_mask(seed, split, int(s), num_modalities, *sizes) for s in scenes])


def full_mask(rng: np.random.Generator, num_modalities: int) -> np.ndarray:
    """(M,) bool, any non-empty combination: size ~ U{1..M}, then a uniform subset of that size ("val_full")."""
    mask = np.zeros(num_modalities, bool)
    mask[rng.choice(num_modalities, size=int(rng.integers(1, num_modalities + 1)), replace=False)] = True
    return mask


def context_masks(seed: int, step: int, shown: np.ndarray | None, num_scenes: int, num_modalities: int) -> np.ndarray:
    """(num_scenes, M) bool: the modalities that may have context in each scene of training batch ``step``, as the
    authors' code draws them (reference §5.3 item 1, ``get_mask_from_combinations``): n ~ U{1..S}, then a uniform
    combination of n of the S modalities the scene shows (``shown``, (num_scenes, M) bool from ``fixed_masks``; None
    = all M). At M = 2: half the scenes have one context modality. Drawn from its own seed stream, a pure function of
    (seed, step), so it leaves the batch's other draws alone."""
    rng = np.random.default_rng([seed, CONTEXT_MASK_STREAM, step])
    out = np.zeros((num_scenes, num_modalities), bool)
    for b in range(num_scenes):
        allowed = np.arange(num_modalities) if shown is None else np.flatnonzero(shown[b])
        out[b, allowed[full_mask(rng, len(allowed))]] = True
    return out
