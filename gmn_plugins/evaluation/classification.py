"""Scene classification without training (paper §4 "Classification", Fig. 4, appendix C, Eq. 6; gmn_model_reference.md
§6.3), after Lake et al. (2015).

Groups of K scenes (held-out objects: 4- and 6-block sets the model never saw). For scenes k and i of a group, the
score L[k, i] = IWAE log p(X_i | V_i, C_k) per dimension: the observations O_i = the last ``TARGET_VIEWS`` views of
every modality of scene i, the context C_k = the first c views of the chosen context modalities of scene k.
Eq. 6 predicts, for each observation set i, k̂ = argmax_k L[k, i]; accuracy = mean over i of [k̂ = i].

Option ``orientation``: ``"paper"`` (Eq. 6, the default) or ``"code"``, the authors' script, which takes the
transpose, argmax_i L[k, i] for each context k (reference §6.3, §8.2 #8); ``"both"`` reports both.
"""

from __future__ import annotations

import numpy as np
import torch

from ..data.episodes import SceneSet
from ..models.gmn import GMN
from .density import TARGET_VIEWS

ORIENTATIONS = ("paper", "code")


def score_matrix(model: GMN, scenes: SceneSet, group: np.ndarray, context_modalities: list[int], c: int,
                 samples: int = 50, batch: int = 25) -> np.ndarray:  # fmt: skip
    """(K, K) L[k, i] for the K scenes ``group`` of ``scenes``: context = the first ``c`` views of the modalities
    ``context_modalities`` of scene k, observations = the last ``TARGET_VIEWS`` views of every modality of scene i;
    ``samples`` importance samples (paper: 50), ``batch`` (k, i) pairs per forward pass. Nats per dimension.
    Raises ``ValueError`` when ``c`` leaves fewer than ``TARGET_VIEWS`` views for the observations."""
    if c > scenes.views - TARGET_VIEWS:
        raise ValueError(f"context size must be <= {scenes.views - TARGET_VIEWS}, got {c}")
    last = np.arange(scenes.views - TARGET_VIEWS, scenes.views)
    pairs = [(k, i) for k in range(len(group)) for i in range(len(group))]
    scores = np.zeros(len(pairs))
    for start in range(0, len(pairs), batch):
        chunk = pairs[start : start + batch]
        plan = [[((group[k], np.arange(c if m in context_modalities else 0)), (group[i], last))
                 for m in range(len(scenes.modalities))] for k, i in chunk]  # fmt: skip
        context, targets = scenes.assemble(plan)
        scores[start : start + len(chunk)] = model.log_likelihood(context, targets, len(chunk), samples).cpu().numpy()
    return scores.reshape(len(group), len(group))


def accuracy(scores: np.ndarray, orientation: str = "paper", top: int = 1) -> float:
    """Top-``top`` accuracy of a (K, K) score matrix L[k, i] (context k, observations i). ``"paper"``: Eq. 6, for
    each i is i among the ``top`` best k of column i; ``"code"``: for each k is k among the best i of row k."""
    if orientation not in ORIENTATIONS:
        raise ValueError(f"orientation must be one of {ORIENTATIONS}, got {orientation!r}")
    s = scores if orientation == "code" else scores.T  # rows: the item being classified, columns: candidates
    best = np.argsort(-s, axis=1, kind="stable")[:, :top]
    return float(np.mean([row in best[row] for row in range(len(s))]))


def default_masks(names: list[str]) -> list[list[int]]:
    """Each modality alone, then all together (for |M| = 2, the paper's I, H and H + I)."""
    singles = [[i] for i in range(len(names))]
    return singles + ([list(range(len(names)))] if len(names) > 1 else [])


def classify(model: GMN, scenes: SceneSet, k: int = 10, groups: int = 10, contexts=range(6), masks=None,
             samples: int = 50, seed: int = 0, orientation: str = "paper", progress=None) -> list[dict]:  # fmt: skip
    """Accuracy of Eq. 6 for every context mask (default ``default_masks``) and context size in ``contexts``, over
    ``groups`` consecutive groups of ``k`` scenes (scenes 0..groups·k-1). Returns records ``{"mask", "c",
    "top1", "top5", "groups", "k"}`` per orientation (``orientation = "both"``: one record each, with the key
    ``"orientation"``). Raises ``ValueError`` when the split holds fewer than ``k`` scenes."""
    names = [m.name for m in scenes.modalities]
    masks = default_masks(names) if masks is None else masks
    groups = min(groups, scenes.num_scenes // k)
    if groups < 1:
        raise ValueError(f"classification needs at least k = {k} scenes, the split has {scenes.num_scenes}")
    chosen = ORIENTATIONS if orientation == "both" else (orientation,)
    records = []
    for mask in masks:
        for c in contexts:
            torch.manual_seed(seed)
            matrices = []
            for g in range(groups):
                matrices.append(score_matrix(model, scenes, np.arange(g * k, (g + 1) * k), mask, c, samples))
                if progress is not None:
                    progress.update(1)
            for o in chosen:
                records.append({"mask": "+".join(names[i] for i in mask), "c": c, "orientation": o,
                                "top1": float(np.mean([accuracy(m, o, 1) for m in matrices])),
                                "top5": float(np.mean([accuracy(m, o, min(5, k)) for m in matrices])),
                                "groups": groups, "k": k})  # fmt: skip
    return records
