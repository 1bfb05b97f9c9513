"""Robustness to missing modalities (paper §4 "Missing-modality Problem", Fig. 5, appendix E; reference §6.5).

A run trained with ``train.missing_sizes = [A, B]`` saw only combinations of A..B modalities per scene. Its
validation scenes are scored twice with the negative ELBO in nats per target dimension (β = 1, one z sample):
``val_missing``, every scene with a fixed combination drawn by the training rule, and ``val_full``, every scene
with any of the 2^M - 1 combinations (size uniform, then the subset), reported per number of shown modalities as
well, so that combinations never seen in training are visible. Context sizes and view orders are sampled as in
training, from ``seed``; the run's ``missing_mode`` (``paper`` or ``code``) decides what a hidden modality means.

It is the training loop's validation (``trainer``) and ``gmn-eval missing``'s experiment alike; it lives in the
training layer, which the loop needs, below ``evaluation``, which reads it (formerly ``evaluation/missing.py``).
"""

from __future__ import annotations

import numpy as np
import torch

from ..data.episodes import SceneSet
from ..data.masks import fixed_masks, full_mask
from ..models.gmn import GMN
from ..runtime.threads import paced

FULL_STREAM = 12  # seed stream of the val_full masks


def neg_elbo_scenes(model: GMN, scenes: SceneSet, ids: np.ndarray, masks: np.ndarray, mode: str = "paper",
                    max_targets: int = 15, seed: int = 0, batch: int = 12,
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Per scene of ``ids``, three (N,) arrays: the negative ELBO (summed nll + kl, β = 1, one z sample) in nats, the
    number of target dimensions, and the KL part of the negative ELBO in nats, with ``masks`` (N, M) bool the
    modalities each scene shows. Context sizes and view orders are drawn per chunk of ``batch`` scenes from
    ``seed``; call under ``torch.no_grad()`` and a fixed torch seed."""
    nats, dims, kl = np.zeros(len(ids)), np.zeros(len(ids)), np.zeros(len(ids))
    for start in paced(range(0, len(ids), batch)):
        chunk = ids[start : start + batch]
        rng = np.random.default_rng([seed, int(chunk[0]), len(chunk)])
        context, target = scenes.episodes(chunk, rng, max_targets, masks=masks[start : start + batch],
                                          missing_mode=mode)  # fmt: skip
        out = model(context, target, len(chunk), beta=1.0)
        nats[start : start + len(chunk)] = (out["nll_scenes"] + out["kl_scenes"]).cpu().numpy()
        dims[start : start + len(chunk)] = out["elements"].cpu().numpy()
        kl[start : start + len(chunk)] = out["kl_scenes"].cpu().numpy()
    return nats, dims, kl


def _neg_elbo(model, scenes, ids, masks, mode, max_targets, seed, batch) -> tuple[float, float]:
    """(summed nll + kl in nats, summed target dimensions) over scenes ``ids`` with the given masks."""
    nats, dims, _ = neg_elbo_scenes(model, scenes, ids, masks, mode, max_targets, seed, batch)
    return float(nats.sum()), float(dims.sum())


@torch.no_grad()
def missing_modality(model: GMN, scenes: SceneSet, sizes, mode: str = "paper", num_scenes: int = 96,
                     max_targets: int = 15, seed: int = 0, batch: int = 12) -> dict:  # fmt: skip
    """Negative ELBO per target dimension on scenes 0..num_scenes-1 of ``scenes`` (their split's fixed masks for
    ``val_missing``): ``{"val_missing", "val_full", "val_full_by_size": {size: value}, "scenes", "sizes"}``.
    ``sizes`` = [A, B] of the training rule (empty: every modality, so val_missing = all modalities shown)."""
    M = len(scenes.modalities)
    ids = np.arange(min(num_scenes, scenes.num_scenes))
    torch.manual_seed(seed)
    shown = fixed_masks(seed, scenes.split, ids, M, sizes)
    shown = np.ones((len(ids), M), bool) if shown is None else shown
    missing = _neg_elbo(model, scenes, ids, shown, mode, max_targets, seed, batch)
    full = np.stack([full_mask(np.random.default_rng([seed, FULL_STREAM, int(s)]), M) for s in ids])
    by_size, totals = {}, [0.0, 0.0]
    for size in sorted(set(full.sum(1).tolist())):  # one size per batch, so that each is reported apart
        rows = np.flatnonzero(full.sum(1) == size)
        torch.manual_seed(seed + size)
        t, d = _neg_elbo(model, scenes, ids[rows], full[rows], mode, max_targets, seed, batch)
        by_size[int(size)] = t / d
        totals[0] += t
        totals[1] += d
    return {"val_missing": missing[0] / missing[1], "val_full": totals[0] / totals[1],
            "val_full_by_size": by_size, "scenes": len(ids), "sizes": list(sizes), "mode": mode}  # fmt: skip
