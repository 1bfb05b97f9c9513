"""Scenes on disk -> training episodes: for every modality a context set and a target set of (sense, query) pairs.

Sampling follows the paper (appendix; gmn_model_reference.md §5.3): per scene and per modality, a fresh view
permutation and a context size k ~ U{0..V}; the context is the first k views, the targets the remaining ones
(at most ``max_targets``). A scene with no target at all is re-drawn. Modalities are sampled independently.
"""

from __future__ import annotations

import numpy as np
import torch

from ..core.modality import Modality, normalize
from ..core.points import Points
from ..core.options import MISSING_MODES
from .format import LABEL, OBJECT_KEYS, open_split, query_key


class SceneSet:
    """One split of a dataset, read on demand from its packed, memory-mapped copy (``data.format.open_split``), so
    memory does not grow with the number of scenes; senses are normalised and sliced per batch (uint8 images stay
    uint8 on disk).

    ``modalities``: the experiment's ordered modalities. ``stats``: the manifest's statistics (for ``minmax``
    sensors). Pickles as its location, so a ``DataLoader`` worker (fork or spawn) opens its own maps. Raises
    ``DataError`` (from ``open_split``) for a missing or damaged dataset.
    """

    def __init__(self, root, split: str, modalities: list[Modality], stats: dict, progress: bool = False):
        self.root, self.split = root, split
        self.modalities = modalities
        self.stats = stats
        self._open(progress)

    def _open(self, progress: bool = False) -> None:
        arrays = open_split(self.root, self.split, progress)
        self.raw = {m.sensor.name: arrays[m.sensor.name] for m in self.modalities}
        self.queries = {kind: arrays[query_key(kind)] for kind in {m.sensor.query for m in self.modalities}}
        self.labels = np.array(arrays[LABEL])  # small: in memory
        self.objects = {key: np.array(arrays[key]) for key in OBJECT_KEYS}  # to render any view again
        self.num_scenes = len(self.labels)
        self.views = self.raw[self.modalities[0].sensor.name].shape[1]

    def __getstate__(self) -> dict:
        return {key: value for key, value in self.__dict__.items() if key in ("root", "split", "modalities", "stats")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._open()

    def senses(self, m: Modality, scenes: np.ndarray, views: np.ndarray) -> np.ndarray:
        """(len(scenes), *m.shape) float32 senses of modality ``m`` at (scene, view) pairs."""
        raw = self.raw[m.sensor.name][scenes, views]
        return np.ascontiguousarray(m.slice(normalize(raw, m.sensor, self.stats)))

    def observations(self, scene: int, views: list[np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """The recordings of scene ``scene`` as ``gmn_plugins.api`` takes them: ``{modality name: (values
        (len(views[i]), *sensor.shape) as the sensor recorded them, queries (len(views[i]), dim) float32)}`` for
        modality i at its views ``views[i]`` (int arrays, possibly empty), not normalised, not sliced."""
        return {m.name: (self.raw[m.sensor.name][scene, v], self.queries[m.sensor.query][scene, v])
                for m, v in zip(self.modalities, views)}  # fmt: skip

    def points(self, m: Modality, scenes: np.ndarray, views: np.ndarray, batch_index: np.ndarray) -> Points:
        """The ``Points`` of modality ``m`` for the given (scene, view) pairs, ``batch_index`` = scene slot in the batch."""
        return Points(
            senses=torch.from_numpy(self.senses(m, scenes, views)).reshape(len(scenes), *m.shape),
            queries=torch.from_numpy(self.queries[m.sensor.query][scenes, views].astype(np.float32)),
            scene=torch.from_numpy(batch_index.astype(np.int64)),
        )

    def episodes(
        self, scene_ids: np.ndarray, rng: np.random.Generator, max_targets: int = 15, context_sizes=None,
        masks: np.ndarray | None = None, missing_mode: str = "paper", opposite: bool = False,
        context_masks: np.ndarray | None = None,
    ) -> tuple[list[Points], list[Points]]:
        """Context and target ``Points`` per modality (experiment order) for the scenes ``scene_ids``.
        ``opposite``: also the swapped episodes, as ``add_opposite`` makes them (2B episodes), built without a copy.

        ``context_sizes``: None samples k ~ U{0..V} with a random view order; a list of ints (one per modality) uses
        views 0..k-1 as context and the next ``max_targets`` as targets, deterministically (evaluation).
        ``masks``: None, or (len(scene_ids), M) bool, the modalities each scene shows (``data.masks``); a modality
        outside the mask is absent (``missing_mode="paper"``) or gives no context and only targets (``"code"``:
        its first ``max_targets`` views of the order, reference §6.5).
        ``context_masks``: None, or (len(scene_ids), M) bool, the modalities that may have context
        (``data.masks.context_masks``, ``train.context_mask = "code"``); a shown modality outside it gives no context
        and its first ``max_targets`` views of the order as targets (reference §5.3 item 3).
        """
        plan = self.plan(scene_ids, rng, max_targets, context_sizes, masks, missing_mode, context_masks)
        return self.assemble(plan, opposite=opposite)

    def plan(self, scene_ids: np.ndarray, rng: np.random.Generator, max_targets: int = 15, context_sizes=None,
             masks: np.ndarray | None = None, missing_mode: str = "paper",
             context_masks: np.ndarray | None = None) -> list:
        """The plan of ``episodes`` (same arguments, same draws from ``rng``): per episode, per modality,
        ``((scene, context views), (scene, target views))``. A data-parallel rank draws the whole batch's plan and
        assembles only its own episodes."""
        if missing_mode not in MISSING_MODES:
            raise ValueError(f"missing_mode must be one of {MISSING_MODES}, got {missing_mode!r}")
        plan = []  # per scene: per modality (context views, target views)
        for b, _ in enumerate(scene_ids):
            while True:
                views = []
                for i in range(len(self.modalities)):
                    if context_sizes is None:
                        order = rng.permutation(self.views)
                        k = int(rng.integers(0, self.views + 1))
                    else:
                        order, k = np.arange(self.views), context_sizes[i]
                    if masks is not None and not masks[b, i]:
                        views.append((order[:0], order[:0] if missing_mode == "paper" else order[:max_targets]))
                        continue
                    if context_masks is not None and not context_masks[b, i]:
                        views.append((order[:0], order[:max_targets]))  # targets only (the same draws)
                        continue
                    views.append((order[:k], order[k : k + max_targets]))
                if context_sizes is not None or any(len(t) for _, t in views):
                    break  # a fixed plan is used as given; a sampled one is re-drawn until it has a target
            plan.append(views)
        return [[((s, c), (s, t)) for c, t in views] for s, views in zip(scene_ids, plan)]

    def assemble(self, plan: list, opposite: bool = False) -> tuple[list[Points], list[Points]]:
        """Context and target ``Points`` per modality from an explicit plan: ``plan[b][i]`` =
        ``((context scene, context views), (target scene, target views))`` for episode b and modality i (experiment
        order); views are int arrays, possibly empty. Context and target may come from different scenes (the
        classification of paper Eq. 6 scores scene k's context against scene i's observations). ``opposite``: as
        ``add_opposite(*assemble(plan), len(plan))``, gathering each point once for both sides."""
        context, target = [], []
        for i, m in enumerate(self.modalities):
            sides = []
            for which in (0, 1):
                parts = [p[i][which] for p in plan]
                slots = np.concatenate([np.full(len(views), b) for b, (_, views) in enumerate(parts)]).astype(np.int64)
                scenes = np.concatenate([np.full(len(views), scene) for scene, views in parts]).astype(np.int64)
                views = np.concatenate([np.asarray(views) for _, views in parts]).astype(np.int64)
                sides.append((scenes, views, slots))
            if not opposite:
                context.append(self.points(m, *sides[0]))
                target.append(self.points(m, *sides[1]))
                continue
            (cs, cv, cb), (ts, tv, tb) = sides
            shift = len(plan)
            both = self.points(m, np.concatenate([cs, ts]), np.concatenate([cv, tv]), np.concatenate([cb, tb + shift]))
            context.append(both)
            target.append(Points(both.senses, both.queries, torch.from_numpy(np.concatenate([cb + shift, tb]))))
        return context, target


def add_opposite(context: list[Points], target: list[Points], num_scenes: int) -> tuple[list[Points], list[Points]]:
    """The authors' ``--add-opposite`` (gmn_model_reference.md §5.2): append a copy of every episode with context and
    target swapped, as scenes ``num_scenes .. 2*num_scenes-1``. Returns the new (context, target) for 2B scenes.

    Both share one tensor of all points per modality (context points first): the swapped episodes differ only in
    their scene indices, since the model sums points per scene and never reads their order. One copy per modality
    instead of two."""
    out_context, out_target = [], []
    for c, t in zip(context, target):
        senses, queries = torch.cat([c.senses, t.senses]), torch.cat([c.queries, t.queries])
        out_context.append(Points(senses, queries, torch.cat([c.scene, t.scene + num_scenes])))
        out_target.append(Points(senses, queries, torch.cat([c.scene + num_scenes, t.scene])))
    return out_context, out_target
