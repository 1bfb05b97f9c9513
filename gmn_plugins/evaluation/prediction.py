"""Does the model predict unseen views better than trivial predictors? Per-element mean squared error of rendered
targets against two baselines (issue 11's quickstart goal: the model must beat the mean of the scene's own views by
30 % or more).

For each scene: the context is the first ``context_views`` views of the modalities in ``context_modalities``; the
targets are the remaining views of every modality. The model's prediction of a target is the mean of ``samples``
renders from z ~ P(z | C) (paper Eq. 2). The baselines:

- ``own_mean``: the mean of all the scene's own views of that modality (an oracle that knows the scene's colours
  and place but not the viewpoint);
- ``dataset_mean``: the mean over the training split's first ``reference_scenes`` scenes and all their views.

And a diagnostic that is not a prediction: ``posterior``, the mean of ``samples`` renders from z ~ Q(z | C, O), the
posterior that also saw the targets (``GMN.reconstruct``). When it is far below ``model``, the renderer can draw the
scene and the prior P(z | C) has not yet caught up with the posterior; when it is no better than ``own_mean``, the
renderer has not learnt the scene either (docs/reproducing-the-paper.md, "Does the quickstart visibly learn?").

Errors are on the model's input scale (images in [0, 1]; ``minmax`` sensors in [-1, 1]), per element, averaged over
the targets of all scenes; ``gain`` = 1 - model / own_mean. Each modality's family scores its predictions
(``Family.prediction_error``): the squared error of element i against element i by default, another measure for
a family whose senses have no order (a set), so that slot i of a render is not scored against slot i of the data.
"""

from __future__ import annotations

import numpy as np
import torch

from ..api import Run
from ..data.episodes import SceneSet
from ..models.gmn import GMN


@torch.no_grad()
def prediction_mse(model: GMN, scenes: SceneSet, reference: SceneSet, context_views: int = 5,
                   context_modalities: list[int] | None = None, num_scenes: int = 16, samples: int = 4,
                   reference_scenes: int = 64, seed: int = 0,
                   temperature: float = 1.0) -> dict[str, dict[str, float]]:  # fmt: skip
    """``{modality: {"model", "own_mean", "dataset_mean", "gain", "posterior"}}`` over scenes 0..num_scenes-1 of
    ``scenes``; ``reference`` gives the dataset mean (the training split). ``temperature``: of the prior's draws
    (``models.convdraw.sampling_temperature``: 0 renders the prior's means). Raises ``ValueError`` when
    ``context_views`` leaves no target view, or for temperature < 0."""
    views = scenes.views
    if not 0 <= context_views < views:
        raise ValueError(f"context_views must be in [0, {views - 1}], got {context_views}")
    shown = set(range(len(scenes.modalities)) if context_modalities is None else context_modalities)
    targets = np.arange(context_views, views)
    ref_ids = np.arange(min(reference_scenes, reference.num_scenes))
    torch.manual_seed(seed)
    out = {}
    sums = {m.name: np.zeros(4) for m in scenes.modalities}
    counts = {m.name: 0 for m in scenes.modalities}
    dataset_means = {}
    for m in scenes.modalities:
        every = reference.senses(m, np.repeat(ref_ids, reference.views), np.tile(np.arange(reference.views), len(ref_ids)))
        dataset_means[m.name] = every.mean(0)
    run = Run(model, scenes.modalities, scenes.stats)
    for scene in range(min(num_scenes, scenes.num_scenes)):
        context = [np.arange(context_views if i in shown else 0) for i in range(len(scenes.modalities))]
        observed = run.observe(scenes.observations(scene, context))
        target = scenes.observations(scene, [targets] * len(scenes.modalities))
        renders = observed.render_all({name: queries for name, (_, queries) in target.items()}, samples,
                                      scale="model", temperature=temperature)  # fmt: skip
        reconstructions = observed.reconstruct(target, samples, scale="model")
        for m in scenes.modalities:
            truth = run.normalize(m.name, target[m.name][0])
            predicted = np.mean(renders[m.name], axis=0)
            reconstructed = np.mean(reconstructions[m.name], axis=0)
            own = scenes.senses(m, np.full(views, scene), np.arange(views)).mean(0)
            error = m.family.prediction_error  # element against element by default; a set family its own way
            sums[m.name] += [error(predicted, truth).sum(), error(np.broadcast_to(own, truth.shape), truth).sum(),
                             error(np.broadcast_to(dataset_means[m.name], truth.shape), truth).sum(),
                             error(reconstructed, truth).sum()]  # fmt: skip
            counts[m.name] += truth.size
    for name, (model_sse, own_sse, data_sse, posterior_sse) in sums.items():
        n = max(counts[name], 1)
        out[name] = {"model": model_sse / n, "own_mean": own_sse / n, "dataset_mean": data_sse / n,
                     "gain": 1.0 - model_sse / own_sse if own_sse else 0.0, "posterior": posterior_sse / n}  # fmt: skip
    return out
