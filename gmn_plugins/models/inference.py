"""Inference networks behind one interface: APoE (paper Eq. 2 and 5, reference §3.4), PoE (paper §2.3,
reference §3.3) and the C-GQN baseline (reference §3.2).

All take the per-modality representations stacked as r, t: (M, B, r_channels, h, w) (context and target; a
modality without points has r_m = rho_m) and presence masks in_context, in_target: (M, B) bool, and return
`Latents` (convdraw.py) from `posterior(r, t, in_context, in_target)` and `prior(r, in_context)`.
"""

from functools import partial

import torch
import torch.nn as nn

from .convdraw import ConvDraw, Latents
from .experts import gaussian_product
from ..core.options import EXPERTS
from .presets import Preset

AMORTIZERS = ("batched", "loop")


class _Product(nn.Module):
    """Product of Gaussian experts at every DRAW step (paper §2.5, reference §3.3-3.4); base of APoE and PoE.

    experts="present" (paper Eq. 2 and 5, as MVAE): the prior multiplies the experts of the modalities with
    context and a N(0, I) expert, so an empty context gives N(0, I); the posterior multiplies the experts of the
    modalities with context or target and a N(0, I) expert. A target-only modality's posterior expert reads the
    prior state of its own (context-free, input rho_m) prior cell, which is run but left out of the prior product.
    experts="all" (authors' code, reference §3.3): all M experts in both products, no N(0, I) expert.
    Subclasses set `onehot` (append the modality id to the inputs) and `_groups` (which cell runs which rows).
    Raises ValueError for an unknown `experts`.
    """

    onehot = False

    def __init__(self, num_modalities: int, preset: Preset, experts: str, num_cells: int, first_step_prior: str):
        super().__init__()
        if experts not in EXPERTS:
            raise ValueError(f"experts must be one of {EXPERTS}, got {experts!r}")
        self.num_modalities, self.experts = num_modalities, experts
        extra, r = num_modalities if self.onehot else 0, preset.r_channels
        self.draw = ConvDraw(num_cells, 2 * r + extra, r + extra, preset, first_step_prior)

    def expert_inputs(self, parts, expert, scene):
        """Rows [parts[0][m, b], ..., (e_m)] for the pairs (m, b) = (expert[i], scene[i]), e_m the one-hot id
        broadcast as M constant channels when `onehot`. parts: list of (M, B, C, h, w); expert, scene: (P,) int64.
        Returns (P, sum C (+ M), h, w)."""
        rows = [p[expert, scene] for p in parts]
        if self.onehot:
            onehot = torch.eye(self.num_modalities, device=expert.device, dtype=parts[0].dtype)[expert]
            rows.append(onehot[:, :, None, None].expand(-1, -1, *parts[0].shape[-2:]))
        return torch.cat(rows, 1)

    def posterior(self, r, t, in_context, in_target) -> Latents:
        """z ~ Q(z | C, O) (paper Eq. 5), with the KL to P(z | C) (paper Eq. 2)."""
        present = in_context | in_target if self.experts == "present" else torch.ones_like(in_context)
        expert, scene = present.nonzero(as_tuple=True)  # expert-major: each expert's rows are consecutive
        xq, xp = self.expert_inputs([t, r], expert, scene), self.expert_inputs([r], expert, scene)
        prior_mask = in_context[expert, scene] if self.experts == "present" else None
        return self.draw.posterior(xq, xp, self._groups(expert), scene, self._combine(scene, r.shape[1]),
                                   self._combine(scene, r.shape[1], prior_mask))

    def prior(self, r, in_context) -> Latents:
        """z ~ P(z | C) (paper Eq. 2)."""
        present = in_context if self.experts == "present" else torch.ones_like(in_context)
        expert, scene = present.nonzero(as_tuple=True)
        xp = self.expert_inputs([r], expert, scene)
        return self.draw.prior(xp, self._groups(expert), scene, self._combine(scene, r.shape[1]))

    def _per_expert(self, expert, shared):
        """[(cell, rows of expert m)] for the experts with rows; [(0, 0)] when there are none."""
        counts = torch.bincount(expert, minlength=self.num_modalities).tolist()
        return [(0 if shared else m, n) for m, n in enumerate(counts) if n] or [(0, 0)]

    def _combine(self, scene, num_scenes, mask=None):
        return partial(gaussian_product, scene=scene, num_scenes=num_scenes, mask=mask,
                       unit=self.experts == "present")


class APoE(_Product):
    """Amortized product of experts: ONE shared posterior cell and ONE shared prior cell (reference §3.4).

    Expert m of a scene gets the input [t_m, r_m, e_m] (posterior) and [r_m, e_m] (prior), e_m the one-hot
    modality id. amortizer="batched": all (expert, scene) rows run as one batch through the shared cells
    (equivalent to the authors' Conv3d with (1, k, k) kernels); amortizer="loop": one call per expert (the
    authors' loop APoE, reference §3.5), same numbers. Raises ValueError for an unknown experts or amortizer.
    """

    onehot = True

    def __init__(self, num_modalities: int, preset: Preset, experts: str = "present", first_step_prior: str = "bias",
                 amortizer: str = "batched"):
        if amortizer not in AMORTIZERS:
            raise ValueError(f"amortizer must be one of {AMORTIZERS}, got {amortizer!r}")
        super().__init__(num_modalities, preset, experts, 1, first_step_prior)
        self.amortizer = amortizer

    def _groups(self, expert):
        return [(0, expert.shape[0])] if self.amortizer == "batched" else self._per_expert(expert, shared=True)


class PoE(_Product):
    """Product of experts with one posterior cell and one prior cell PER MODALITY (paper §2.3, reference §3.3):
    expert m gets [t_m, r_m] and r_m (no one-hot) and runs its own cells, so the inference parameters grow as
    M x 6.18M at v4. Raises ValueError for an unknown experts."""

    def __init__(self, num_modalities: int, preset: Preset, experts: str = "present", first_step_prior: str = "bias"):
        super().__init__(num_modalities, preset, experts, num_modalities, first_step_prior)

    def _groups(self, expert):
        return self._per_expert(expert, shared=False)


class Baseline(nn.Module):
    """C-GQN baseline: one ConvDRAW on the sums over modalities (reference §3.2).
    Posterior input [sum_m t_m, sum_m r_m], prior input sum_m r_m; every modality counts (rho_m when empty)."""

    def __init__(self, num_modalities: int, preset: Preset, first_step_prior: str = "bias"):
        super().__init__()
        r = preset.r_channels
        self.draw = ConvDraw(1, 2 * r, r, preset, first_step_prior)

    def posterior(self, r, t, in_context, in_target) -> Latents:
        r, t = r.sum(0), t.sum(0)
        scene = torch.arange(r.shape[0], device=r.device)
        return self.draw.posterior(torch.cat([t, r], 1), r, [(0, r.shape[0])], scene, _identity, _identity)

    def prior(self, r, in_context) -> Latents:
        r = r.sum(0)
        scene = torch.arange(r.shape[0], device=r.device)
        return self.draw.prior(r, [(0, r.shape[0])], scene, _identity)


def _identity(mu, logvar):
    return mu, logvar
