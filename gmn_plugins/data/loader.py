"""Training batches as a pure function of (seed, step), prepared in ``torch.utils.data.DataLoader`` workers.

Batch k draws its scenes, masks, context sizes and views from ``step_seed(seed, 1, k)`` alone, so the same batch
comes out whether it is built on the training thread (``data.loader_workers = 0``) or in any worker, and a resumed
run continues with exactly the batches an uninterrupted run would have used.
"""

from __future__ import annotations

import numpy as np
import torch

from ..core.options import CONTEXT_MASKS
from .episodes import SceneSet
from .masks import context_masks, fixed_masks


def step_seed(seed: int, stream: int, step: int) -> int:
    """The 32-bit seed of random stream ``stream`` at training step ``step`` (1: batches, 2: the model's noise)."""
    return int(np.random.SeedSequence([seed, stream, step]).generate_state(1)[0])


class TrainingBatches(torch.utils.data.Dataset):
    """Map-style dataset of training batches, indexed by step: item k is ``(context, target, episodes, slots)``,
    the ``Points`` per modality (experiment order) of batch k, its number of episodes (scenes, doubled by
    ``add_opposite``) and ``slots = (global episodes, (episodes,) int64 global slot of each)`` for
    ``models.convdraw.noise_slots``. ``missing_sizes``/``missing_mode``: the training rule of paper §4
    (``data.masks``). ``context_mask``: ``"code"`` also draws which shown modalities may have context
    (``data.masks.context_masks``, from its own seed stream; ``"none"`` draws nothing more).

    ``rank``/``world``: a data-parallel process takes the fixed slice ``[B r / N, B (r + 1) / N)`` of the global
    batch's B scenes (and their swapped copies); every rank draws the same global batch, so the data do not depend
    on the number of processes. Raises ``ValueError`` when ``world`` exceeds the batch's scenes."""

    def __init__(self, scenes: SceneSet, seed: int, batch_scenes: int, max_targets: int, missing_sizes: list[int],
                 missing_mode: str, add_opposite: bool, rank: int = 0, world: int = 1,
                 context_mask: str = "none"):  # fmt: skip
        self.scenes, self.seed = scenes, seed
        self.batch_scenes, self.max_targets = min(batch_scenes, scenes.num_scenes), max_targets
        self.missing_sizes, self.missing_mode, self.add_opposite = list(missing_sizes), missing_mode, add_opposite
        if context_mask not in CONTEXT_MASKS:
            raise ValueError(f"context_mask must be one of {CONTEXT_MASKS}, got {context_mask!r}")
        self.context_mask = context_mask
        if not 0 <= rank < world or world > self.batch_scenes:
            raise ValueError(f"rank {rank} of {world}: the world size must be at most the batch's {self.batch_scenes} "
                             f"scenes")  # fmt: skip
        b = self.batch_scenes
        self.slice = (b * rank // world, b * (rank + 1) // world)

    def __len__(self) -> int:
        return 2**62  # any step; the sampler says which

    def __getitem__(self, step: int):
        rng = np.random.default_rng(step_seed(self.seed, 1, step))
        ids = rng.choice(self.scenes.num_scenes, size=self.batch_scenes, replace=False)
        masks = fixed_masks(self.seed, "train", ids, len(self.scenes.modalities), self.missing_sizes)
        allowed = None
        if self.context_mask == "code":
            allowed = context_masks(self.seed, step, masks, len(ids), len(self.scenes.modalities))
        plan = self.scenes.plan(ids, rng, self.max_targets, masks=masks, missing_mode=self.missing_mode,
                                context_masks=allowed)  # fmt: skip
        a, b = self.slice
        context, target = self.scenes.assemble(plan[a:b], opposite=self.add_opposite)
        slots = torch.arange(a, b)
        if self.add_opposite:
            slots = torch.cat([slots, slots + len(ids)])
        return context, target, len(slots), (len(ids) * (2 if self.add_opposite else 1), slots)


def _as_is(item):  # collate_fn: a batch is already made (batch_size=None); module level, so spawn can pickle it
    return item


def training_batches(batches: TrainingBatches, first: int, last: int, workers: int, pin_memory: bool = False):
    """An iterator over the batches of steps ``first .. last - 1`` in order: built here (``workers == 0``) or by a
    ``DataLoader`` with ``workers`` processes, each keeping 2 batches ready, pinned for CUDA when ``pin_memory``."""
    steps = range(first, last)
    if workers == 0:
        return (batches[k] for k in steps)
    loader = torch.utils.data.DataLoader(batches, batch_size=None, sampler=steps, num_workers=workers,
                                         collate_fn=_as_is, pin_memory=pin_memory, prefetch_factor=2,
                                         persistent_workers=False)  # fmt: skip
    return iter(loader)
