"""Cross-modal density estimation (paper §4 "Cross-Modal Density Estimation", Fig. 3; gmn_model_reference.md §6.2).

For a target modality t and a source modality s, the IWAE estimate of log p(X_t | V_t, C) in nats per dimension,
averaged over scenes, on a grid of context sizes: rows = number of source views in the context, columns = number of
the target modality's own views in the context (column 0 is the fully cross-modal setting, the paper's dotted lines).
Context = the first k views of a modality; targets = the last ``TARGET_VIEWS`` views of t only, as the authors'
evaluation does; every other modality is absent. ``gray=True`` scores the HSV value max(R, G, B) of image targets
and means (the paper's HAPTIC -> GRAY panel; reference §6.1). With σ = 1 the per-dimension upper bound is
-½ log 2π ≈ -0.919 nats.

Fixed (the authors' code differs, reference §6.2 / §9.5): the number reported is the mean per-dimension
log-likelihood, normalised once (their print divides a second time by 5·D).
"""

from __future__ import annotations

import numpy as np
import torch

from ..api import Run
from ..data.episodes import SceneSet
from ..models.gmn import GMN
from ..runtime.threads import paced

DEFAULT_COUNTS = (0, 1, 5, 10)  # reference §6.2: {0, 1, 5, 10} per modality
TARGET_VIEWS = 5  # the last five views of each scene are the targets (views 10-14 of 15)


def gray(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) -> (N, 1, H, W): the HSV value channel max(R, G, B) (the authors' GRAY, reference §6.1)."""
    return x.amax(dim=1, keepdim=True)


def density_scenes(model: GMN, scenes: SceneSet, target: int, source: int | None, counts=DEFAULT_COUNTS,
                   num_scenes: int = 96, samples: int = 5, batch: int = 12, seed: int = 0,
                   gray_target: bool = False, progress=None, source_counts=None) -> np.ndarray:  # fmt: skip
    """(len(source_counts), len(counts), N) IWAE log-likelihood of modality ``target``'s last ``TARGET_VIEWS`` views
    of each of the N = min(num_scenes, split size) scenes, in nats per dimension: entry [a, b, n] has
    ``source_counts[a]`` (default ``counts``) views of modality ``source`` and ``counts[b]`` views of ``target``
    as context (``source=None``: one row, own context only). ``samples`` importance samples (paper: 5).
    Deterministic for a given ``seed``. Raises ``ValueError`` for a count that leaves fewer than ``TARGET_VIEWS``
    views, an image-less ``gray_target`` or ``source == target``.
    """
    if source == target:
        raise ValueError("source and target must be different modalities")
    rows = (0,) if source is None else tuple(counts if source_counts is None else source_counts)
    if max([*counts, *rows]) > scenes.views - TARGET_VIEWS:
        raise ValueError(f"context counts must be <= {scenes.views - TARGET_VIEWS} (views {scenes.views} minus "
                         f"{TARGET_VIEWS} target views), got {max([*counts, *rows])}")  # fmt: skip
    if gray_target and scenes.modalities[target].shape[:1] != (3,):
        raise ValueError(f"gray: modality {scenes.modalities[target].name!r} is not a 3-channel image")
    transforms = {scenes.modalities[target].name: gray} if gray_target else None
    run = Run(model, scenes.modalities, scenes.stats)
    ids = np.arange(min(num_scenes, scenes.num_scenes))
    last = np.arange(scenes.views - TARGET_VIEWS, scenes.views)
    values = np.zeros((len(rows), len(counts), len(ids)))
    for a, k_source in enumerate(rows):
        for b, k_target in enumerate(counts):
            torch.manual_seed(seed)
            for start in paced(range(0, len(ids), batch)):
                chunk = ids[start : start + batch]
                context = [np.arange(k_target if i == target else (k_source if i == source else 0))
                           for i in range(len(scenes.modalities))]  # fmt: skip
                observed = [last if i == target else last[:0] for i in range(len(scenes.modalities))]
                scene = run.observe([scenes.observations(s, context) for s in chunk])
                values[a, b, start : start + len(chunk)] = scene.log_likelihood(
                    [scenes.observations(s, observed) for s in chunk], samples=samples, transforms=transforms)
                if progress is not None:
                    progress.update(len(chunk))
    return values


def density_grid(model: GMN, scenes: SceneSet, target: int, source: int | None, counts=DEFAULT_COUNTS,
                 num_scenes: int = 96, samples: int = 5, batch: int = 12, seed: int = 0,
                 gray_target: bool = False, progress=None) -> np.ndarray:  # fmt: skip
    """(len(counts), len(counts)) mean over scenes of ``density_scenes`` (same arguments): entry [a, b] has
    ``counts[a]`` source views and ``counts[b]`` target views as context, in nats per dimension."""
    return density_scenes(model, scenes, target, source, counts, num_scenes, samples, batch, seed, gray_target,
                          progress).mean(-1)  # fmt: skip


def evaluate_density(model: GMN, scenes: SceneSet, targets: list[int] | None = None, sources: list[int] | None = None,
                     counts=DEFAULT_COUNTS, gray_targets: bool = False, progress=None, **kwargs) -> list[dict]:  # fmt: skip
    """One ``density_grid`` per (target, source) pair of different modalities (all pairs by default; with a single
    modality, its own-context row). Returns records ``{"target", "source", "gray", "counts", "grid"}`` (grid as
    nested lists, rows = source counts); ``kwargs`` go to ``density_grid``."""
    names = [m.name for m in scenes.modalities]
    targets = range(len(names)) if targets is None else targets
    records = []
    for t in targets:
        pool = [s for s in (range(len(names)) if sources is None else sources) if s != t] or [None]
        for s in pool:
            for use_gray in ([False, True] if gray_targets and scenes.modalities[t].shape[:1] == (3,) else [False]):
                grid = density_grid(model, scenes, t, s, counts, gray_target=use_gray, progress=progress, **kwargs)
                records.append({"target": names[t], "source": None if s is None else names[s], "gray": use_gray,
                                "counts": list(counts), "grid": grid.round(6).tolist()})  # fmt: skip
    return records
