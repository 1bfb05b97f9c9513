"""Does a trained GMN carry colour from what it observes to what it renders? (issues 11 and 28; issue 29's
"power shown": how much a model uses its context.)

For each of the first ``num_scenes`` scenes of a split: ``context_views`` views of the image modality as context
(no other modality), its other views as targets, rendered from the posterior Q(z | C, O) (``GMN.reconstruct``,
which saw the targets) and from the prior P(z | C) (``GMN.generate``). A render's colour is its mean over the
truth's object pixels (any channel > ``OBJECT_THRESHOLD``), its chroma that colour minus its grey level (the mean
of its channels). Reported: the correlation of the renders' chroma with the truth's over all scenes and channels,
the same after swapping the channels of every observed image (R, G, B -> B, R, G; for the prior: of the context
views) against the swapped truth, and the mean |chroma| of truth and renders. A model that reads colour from its
input follows the swap (both correlations high); one that memorised its training scenes' colours does not (the
second low); one that renders grey has |chroma| near 0.

How large a correlation means anything: n scenes give about 2n degrees of freedom (each scene's 3 chroma values sum
to 0), so a model unrelated to the truth gives correlations of standard deviation about 1/sqrt(2n - 1): 0.18 for 16
scenes, so |r| below about 0.35 is not distinguishable from none (docs/fast-recipe.md).

Where colour is lost: the image encoder's representation r of each context view moves by ``encoder_swap`` (mean L2
norm) when its channels are swapped and by ``encoder_gray`` when it is made grey, against ``encoder_other_scene``
between two scenes' views; a small ratio says the encoder hardly tells colours apart.
"""

from __future__ import annotations

import numpy as np
import torch

from ..core.points import Points
from ..data.episodes import SceneSet
from ..models.convdraw import sampling_temperature
from ..models.gmn import GMN

OBJECT_THRESHOLD = 0.1  # a truth pixel belongs to the object when any channel exceeds it (MESE's black background)
SWAP = [2, 0, 1]  # R, G, B -> B, R, G


def object_colour(images: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """Mean colour over the masked pixels of all images: images (N, C, H, W), mask (N, 1, H, W) of 0/1 -> (C,)."""
    images, mask = images.float().cpu(), mask.float().cpu()
    return ((images * mask).sum((0, 2, 3)) / mask.sum((0, 2, 3)).clamp(min=1)).numpy()


def chroma(colours: np.ndarray) -> np.ndarray:
    """(S, C) colours -> (S, C) chroma: each colour minus the mean of its channels (its grey level)."""
    colours = np.asarray(colours, dtype=np.float64)
    return colours - colours.mean(1, keepdims=True)


def chroma_correlation(truth: np.ndarray, renders: np.ndarray) -> float:
    """Pearson correlation of two (S, C) chroma arrays over all entries; nan when either is constant (e.g. renders
    exactly grey)."""
    a, b = np.ravel(truth), np.ravel(renders)
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def colour_modalities(scenes: SceneSet) -> list[str]:
    """The names of the modalities ``colour_transfer`` measures: images of 3 channels, (3, H, W)."""
    return [m.name for m in scenes.modalities if len(m.shape) == 3 and m.shape[0] == 3]


@torch.no_grad()
def colour_transfer(model: GMN, scenes: SceneSet, num_scenes: int = 16, context_views: int = 5,
                    modality: str = "rgb", temperature: float = 1.0) -> dict:  # fmt: skip
    """The colour measures of ``model`` on scenes 0..num_scenes-1 of ``scenes`` (a run's split, e.g.
    ``evaluation.runs.load_run(...).scenes("test")``): ``chroma_corr_{posterior,posterior_swapped,prior,
    prior_swapped}`` (nan when the renders are exactly grey), ``mean_abs_chroma`` {truth, posterior, ...},
    ``encoder_{swap,gray,other_scene}``, ``scenes``, ``temperature``. Draws from torch's generator (seed it for
    repeatable numbers). ``temperature``: that of the prior's draws (``models.convdraw.sampling_temperature``; 1 a
    sample, 0 the prior's means); the posterior's are samples. Raises ``ValueError`` when there is no modality
    ``modality`` of shape (3, H, W), ``context_views`` leaves no target view, or temperature < 0."""
    names = [m.name for m in scenes.modalities]
    if modality not in colour_modalities(scenes):
        raise ValueError(f"colour_transfer needs an image modality {modality!r} of shape (3, H, W); the modalities "
                         f"are {names}")  # fmt: skip
    index = names.index(modality)
    if not 0 < context_views < scenes.views:
        raise ValueError(f"context_views must lie in [1, {scenes.views - 1}] (the scenes have {scenes.views} views), "
                         f"got {context_views}")  # fmt: skip
    if not temperature >= 0:
        raise ValueError(f"the sampling temperature must be >= 0, got {temperature}")
    n = min(num_scenes, scenes.num_scenes)

    def swapped(points):
        return [Points(p.senses[:, SWAP], p.queries, p.scene) if i == index else p for i, p in enumerate(points)]

    colours = {"truth": [], "posterior": [], "posterior_swapped": [], "prior": [], "prior_swapped": []}
    for s in range(n):
        plan = [[((s, np.arange(context_views if i == index else 0)), (s, np.arange(context_views, scenes.views)))
                 for i in range(len(names))]]  # fmt: skip
        context, target = scenes.assemble(plan)
        truth = target[index].senses
        mask = (truth.max(1, keepdim=True).values > OBJECT_THRESHOLD).float()
        queries, scene = [p.queries for p in target], [p.scene for p in target]
        colours["truth"].append(object_colour(truth, mask))
        colours["posterior"].append(object_colour(model.reconstruct(context, target, 1)[index], mask))
        colours["posterior_swapped"].append(
            object_colour(model.reconstruct(swapped(context), swapped(target), 1)[index], mask))
        with sampling_temperature(temperature):
            prior = model.generate(context, queries, scene, 1)[index]
            prior_swapped = model.generate(swapped(context), queries, scene, 1)[index]
        colours["prior"].append(object_colour(prior, mask))
        colours["prior_swapped"].append(object_colour(prior_swapped, mask))
    c = {k: chroma(np.array(v)) for k, v in colours.items()}
    truth_swapped = c["truth"][:, SWAP]
    out = {"scenes": n, "context_views": context_views, "temperature": temperature,
           "chroma_corr_posterior": chroma_correlation(c["truth"], c["posterior"]),
           "chroma_corr_posterior_swapped": chroma_correlation(truth_swapped, c["posterior_swapped"]),
           "chroma_corr_prior": chroma_correlation(c["truth"], c["prior"]),
           "chroma_corr_prior_swapped": chroma_correlation(truth_swapped, c["prior_swapped"]),
           "mean_abs_chroma": {k: float(np.abs(v).mean()) for k, v in c.items()}}  # fmt: skip
    return {**out, **_encoder_distances(model, scenes, index, n, context_views)}


def _encoder_distances(model, scenes, index, n, context_views) -> dict[str, float]:
    """How far the image encoder's r of each context view moves under a channel swap, a grey image, and another
    scene's view (mean L2 norm over the views)."""
    m, info, encoder = scenes.modalities[index], model.modalities[index], model.encoders[index]
    ids, views = np.repeat(np.arange(n), context_views), np.tile(np.arange(context_views), n)
    device = model.device
    images = torch.as_tensor(scenes.senses(m, ids, views)).to(device)
    raw = torch.as_tensor(scenes.queries[m.sensor.query][ids, views].astype(np.float32)).to(device)
    queries = info.encode(raw)
    r = encoder(images, queries)
    moved = {"encoder_swap": encoder(images[:, SWAP], queries),
             "encoder_gray": encoder(images.mean(1, keepdim=True).expand_as(images), queries),
             "encoder_other_scene": r.roll(context_views, 0)}  # fmt: skip
    return {k: float((r - v).flatten(1).norm(dim=1).mean()) for k, v in moved.items()}
