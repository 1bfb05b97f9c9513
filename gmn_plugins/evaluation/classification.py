"""Scene classification without training (paper §4 "Classification", Fig. 4, appendix C, Eq. 6; gmn_model_reference.md
§6.3), after Lake et al. (2015).

Groups of K scenes (held-out objects: 4- and 6-block sets the model never saw). For scenes k and i of a group, the
score L[k, i] = IWAE log p(X_i | V_i, C_k) per dimension: the observations O_i = the last ``TARGET_VIEWS`` views of
every modality of scene i, the context C_k = the first c views of the chosen context modalities of scene k.
Eq. 6 predicts, for each observation set i, k̂ = argmax_k L[k, i]; accuracy = mean over i of [k̂ = i].

Option ``orientation``: ``"paper"`` (Eq. 6, the default) or ``"code"``, the authors' script, which takes the
transpose, argmax_i L[k, i] for each context k (reference §6.3, §8.2 #8); ``"both"`` reports both.

Cost (benchmarks/classification_speed.py, small preset, one CPU thread): a matrix is K² x S posterior passes and
renderer passes over the observation views, the estimator itself and 99.8% of the time; ``score_matrix`` shares the
rest (each scene encoded once) and runs the transposed convolutions in oneDNN's layout, 1.07-1.09x faster than
``score_matrix_reference`` with the same numbers. The paper's protocol (S = 50, contexts 0-5 x 3 masks = 18
matrices per group of 10) then takes ~6 min per matrix, ~1.8 h per group, ~15 days for 1000 objects x 2 sets.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch
import torch.nn as nn

from ..api import Run
from ..data.episodes import SceneSet
from ..models.gmn import GMN, _elements
from ..core.points import Points
from ..runtime.threads import paced
from .density import TARGET_VIEWS

ORIENTATIONS = ("paper", "code")


def score_matrix(model: GMN, scenes: SceneSet, group: np.ndarray, context_modalities: list[int], c: int,
                 samples: int = 50, batch: int = 25, channels_last: bool | None = None) -> np.ndarray:  # fmt: skip
    """(K, K) L[k, i] for the K scenes ``group`` of ``scenes``: context = the first ``c`` views of the modalities
    ``context_modalities`` of scene k, observations = the last ``TARGET_VIEWS`` views of every modality of scene i;
    ``samples`` importance samples (paper: 50), ``batch`` (k, i) pairs per forward pass. Nats per dimension, float64.

    Equals ``score_matrix_reference`` with the same ``batch`` under the same torch seed (to rounding: <= 1e-6 nats
    per dimension measured): the noise is drawn in the same order, one posterior pass per sample for each ``batch``
    pairs, so ``batch`` is part of the result. What is shared: every scene's context and observations are assembled
    and encoded once (K scenes, not K² pairs). ``channels_last`` (None: when the model is on a CPU): every
    ``nn.ConvTranspose2d`` of the model (the image renderers' decoder) gets its input in channels-last layout, which
    runs it through oneDNN instead of ATen's fallback, the same values 1.4-5x faster on a CPU. The K² x ``samples``
    posterior and renderer passes, ~99% of the time, are the estimator itself and stay (module docstring).
    Raises ``ValueError`` when ``c`` leaves fewer than ``TARGET_VIEWS`` views for the observations."""
    last = _observation_views(scenes, c)
    views = [np.arange(c if m in context_modalities else 0) for m in range(len(scenes.modalities))]
    contexts = [scenes.observations(s, views) for s in np.asarray(group)]
    observations = [scenes.observations(s, [last] * len(scenes.modalities)) for s in np.asarray(group)]
    run = Run(model, scenes.modalities, scenes.stats)
    return run.classify(contexts, observations, samples, batch=batch, channels_last=channels_last).scores


def score_pairs(model: GMN, context: list[Points], targets: list[Points], num_contexts: int, num_observations: int,
                samples: int = 50, batch: int = 25, channels_last: bool | None = None) -> np.ndarray:  # fmt: skip
    """(K, J) L[k, i] = IWAE log p(O_i | C_k) per dimension (paper Eq. 6's scores), float64 nats, for the K =
    ``num_contexts`` contexts ``context`` (scene slots 0..K-1) and the J = ``num_observations`` observation sets
    ``targets`` (slots 0..J-1): one ``Points`` per modality each, as the model takes them. Each context and each
    observation set is encoded once; then ``batch`` (k, i) pairs per posterior pass, k-major, ``samples`` passes
    each, drawn from torch's generator in ``score_matrix_reference``'s order. ``channels_last``: as
    ``score_matrix``. ``gmn_plugins.api.Run.classify`` scores here; ``score_matrix`` through it."""
    size = max(num_contexts, num_observations)
    context, targets = model._on_device(context, size, "context"), model._on_device(targets, size, "target")
    device = model.device
    pairs = torch.cartesian_prod(torch.arange(num_contexts), torch.arange(num_observations)).to(device)  # (k, i)
    scores = torch.zeros(len(pairs), device=device)
    fast_transposed = device.type == "cpu" if channels_last is None else channels_last
    with torch.no_grad(), _transposed_channels_last(model, fast_transposed):
        r, t, in_context, in_target = model._represent(context, targets, size)  # (M, size, r, h, w), (M, size)
        elements = _elements(targets, size)  # (size,) target dimensions of each observation set
        rows = [[torch.nonzero(p.scene == i).flatten() for i in range(num_observations)] for p in targets]
        for start in paced(range(0, len(pairs), batch)):
            k, i = pairs[start : start + batch].T
            chunk = [_observations(p, rows_m, i.tolist()) for p, rows_m in zip(targets, rows)]
            r_k, t_i, c_k, o_i = r[:, k], t[:, i], in_context[:, k], in_target[:, i]
            weights = []
            for _ in range(samples):  # the order of score_matrix_reference's noise
                latents = model._posterior(r_k, t_i, c_k, o_i)
                z = model.render_input(latents.z, r_k)
                weights.append(latents.log_ratio - model._nll(z, chunk, len(k)))
            iwae = torch.logsumexp(torch.stack(weights), 0) - math.log(samples)
            scores[start : start + len(k)] = iwae / elements[i]
    return scores.cpu().double().numpy().reshape(num_contexts, num_observations)


def score_matrix_reference(model: GMN, scenes: SceneSet, group: np.ndarray, context_modalities: list[int], c: int,
                           samples: int = 50, batch: int = 25) -> np.ndarray:  # fmt: skip
    """``score_matrix`` in its straightforward form: every (k, i) pair assembled and encoded anew and scored by
    ``GMN.log_likelihood``, ``batch`` pairs per call; (K, K), nats per dimension. Kept as the reference the fast form
    is tested against (tests/test_classification_speed.py) and timed against (benchmarks/classification_speed.py)."""
    last = _observation_views(scenes, c)
    pairs = [(k, i) for k in range(len(group)) for i in range(len(group))]
    scores = np.zeros(len(pairs))
    for start in range(0, len(pairs), batch):
        chunk = pairs[start : start + batch]
        plan = [[((group[k], np.arange(c if m in context_modalities else 0)), (group[i], last))
                 for m in range(len(scenes.modalities))] for k, i in chunk]  # fmt: skip
        context, targets = scenes.assemble(plan)
        scores[start : start + len(chunk)] = model.log_likelihood(context, targets, len(chunk), samples).cpu().numpy()
    return scores.reshape(len(group), len(group))


def _observation_views(scenes: SceneSet, c: int) -> np.ndarray:
    """The last ``TARGET_VIEWS`` view indices; ``ValueError`` when the first ``c`` views would overlap them."""
    if c > scenes.views - TARGET_VIEWS:
        raise ValueError(f"context size must be <= {scenes.views - TARGET_VIEWS}, got {c}")
    return np.arange(scenes.views - TARGET_VIEWS, scenes.views)


def _observations(points: Points, rows: list[torch.Tensor], observed: list[int]) -> Points:
    """The points of observation sets ``observed`` (slots of ``points``), in that order, as scenes 0..len-1;
    ``rows[i]``: the indices of slot i's points."""
    index = torch.cat([rows[i] for i in observed])
    counts = torch.tensor([len(rows[i]) for i in observed], device=index.device)
    scene = torch.repeat_interleave(torch.arange(len(observed), device=index.device), counts)
    return Points(points.senses[index], points.queries[index], scene)


@contextlib.contextmanager
def _transposed_channels_last(model: GMN, enabled: bool):
    """While active (and ``enabled``), every ``nn.ConvTranspose2d`` of ``model`` converts its (N, C, H, W) input to
    channels-last memory layout first (a forward pre-hook, removed on exit). The values are the same; on a CPU the
    transposed convolution then runs through oneDNN instead of ATen's slower fallback (``score_matrix``)."""
    handles = [m.register_forward_pre_hook(_channels_last_input) for m in model.modules()
               if isinstance(m, nn.ConvTranspose2d)] if enabled else []  # fmt: skip
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _channels_last_input(module, args):
    x = args[0]
    return (x.contiguous(memory_format=torch.channels_last), *args[1:]) if x.dim() == 4 else None


def hits(scores: np.ndarray, orientation: str = "paper", top: int = 1) -> np.ndarray:
    """(K,) bool: is each classified item among the ``top`` best candidates of a (K, K) score matrix L[k, i] (context
    k, observations i). ``"paper"``: Eq. 6, item i = observation set i, is i among the best k of column i;
    ``"code"``: item k = context k, is k among the best i of row k. Ties go to the lower index."""
    if orientation not in ORIENTATIONS:
        raise ValueError(f"orientation must be one of {ORIENTATIONS}, got {orientation!r}")
    s = scores if orientation == "code" else scores.T  # rows: the item being classified, columns: candidates
    best = np.argsort(-s, axis=1, kind="stable")[:, :top]
    return np.array([row in best[row] for row in range(len(s))], dtype=bool)


def accuracy(scores: np.ndarray, orientation: str = "paper", top: int = 1) -> float:
    """Top-``top`` accuracy of a (K, K) score matrix L[k, i] (context k, observations i): the mean of ``hits``.
    ``"paper"``: Eq. 6, for each i is i among the ``top`` best k of column i; ``"code"``: for each k is k among the
    best i of row k."""
    return float(np.mean(hits(scores, orientation, top)))


def default_masks(names: list[str]) -> list[list[int]]:
    """Each modality alone, then all together (for |M| = 2, the paper's I, H and H + I)."""
    singles = [[i] for i in range(len(names))]
    return singles + ([list(range(len(names)))] if len(names) > 1 else [])


def classify(model: GMN, scenes: SceneSet, k: int = 10, groups: int = 10, contexts=range(6), masks=None,
             samples: int = 50, seed: int = 0, orientation: str = "paper", progress=None,
             first: int = 0) -> list[dict]:  # fmt: skip
    """Accuracy of Eq. 6 for every context mask (default ``default_masks``) and context size in ``contexts``, over
    ``groups`` consecutive groups of ``k`` scenes (scenes first..first+groups·k-1). Returns records ``{"mask", "c",
    "orientation", "top1", "top5", "correct", "groups", "k"}``, one per orientation (``orientation = "both"``: one
    each); ``"correct"``: groups·k ints 0/1, the top-1 hit of every classified item (observation set under
    ``"paper"``, context under ``"code"``) in the order g·k + i, so that mean(correct) = top1 and a caller can
    bootstrap over objects. Raises ``ValueError`` when the split holds fewer than ``k`` scenes from ``first``."""
    names = [m.name for m in scenes.modalities]
    masks = default_masks(names) if masks is None else masks
    groups = min(groups, (scenes.num_scenes - first) // k)
    if groups < 1:
        raise ValueError(f"classification needs at least k = {k} scenes from scene {first}, "
                         f"the split has {scenes.num_scenes}")  # fmt: skip
    chosen = ORIENTATIONS if orientation == "both" else (orientation,)
    records = []
    for mask in masks:
        for c in contexts:
            torch.manual_seed(seed)
            matrices = []
            for g in range(groups):
                group = np.arange(first + g * k, first + (g + 1) * k)
                matrices.append(score_matrix(model, scenes, group, mask, c, samples))
                if progress is not None:
                    progress.update(1)
            for o in chosen:
                records.append({"mask": "+".join(names[i] for i in mask), "c": c, "orientation": o,
                                "top1": float(np.mean([accuracy(m, o, 1) for m in matrices])),
                                "top5": float(np.mean([accuracy(m, o, min(5, k)) for m in matrices])),
                                "correct": [int(h) for m in matrices for h in hits(m, o, 1)],
                                "groups": groups, "k": k})  # fmt: skip
    return records
