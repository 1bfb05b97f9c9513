"""Inference networks behind one interface: APoE (paper Eq. 2 and 5, reference §3.4) and the C-GQN baseline
(reference §3.2).

Both take the per-modality representations stacked as r, t: (M, B, r_channels, h, w) (context and target; a
modality without points has r_m = rho_m) and presence masks in_context, in_target: (M, B) bool, and return
`Latents` (convdraw.py).
"""

from functools import partial

import torch
import torch.nn as nn

from .convdraw import ConvDraw, Latents
from .experts import gaussian_product
from .presets import Preset

EXPERTS = ("present", "all")


class APoE(nn.Module):
    """Amortized product of experts: ONE shared posterior cell and ONE shared prior cell (reference §3.4).

    Expert m of a scene gets the input [t_m, r_m, e_m] (posterior) and [r_m, e_m] (prior), where e_m is the
    one-hot modality id broadcast as M constant channels. All (expert, scene) pairs run as rows of one batch
    through the shared cells (equivalent to the authors' Conv3d with (1, k, k) kernels) and the Gaussians of a
    scene are multiplied at every step (experts.gaussian_product).

    experts="present" (paper Eq. 2 and 5, as MVAE): the prior multiplies the experts of the modalities with
    context and a N(0, I) expert, so an empty context gives N(0, I); the posterior multiplies the experts of the
    modalities with context or target and a N(0, I) expert. A target-only modality's posterior expert reads the
    prior state of its own (context-free, input rho_m) prior cell, which is run but left out of the prior product.
    experts="all" (authors' code, reference §3.3): all M experts in both products, no N(0, I) expert.
    Raises ValueError for an unknown `experts`.
    """

    def __init__(self, num_modalities: int, preset: Preset, experts: str = "present"):
        super().__init__()
        if experts not in EXPERTS:
            raise ValueError(f"experts must be one of {EXPERTS}, got {experts!r}")
        self.num_modalities, self.experts = num_modalities, experts
        r, m = preset.r_channels, num_modalities
        self.draw = ConvDraw(2 * r + m, r + m, preset.hidden, preset.z_channels, preset.steps, preset.kernel)

    def expert_inputs(self, parts, expert, scene):
        """Rows [parts[0][m, b], ..., e_m] for the pairs (m, b) = (expert[i], scene[i]).
        parts: list of (M, B, C, h, w); expert, scene: (P,) int64. Returns (P, sum C + M, h, w)."""
        onehot = torch.eye(self.num_modalities, device=expert.device, dtype=parts[0].dtype)[expert]
        onehot = onehot[:, :, None, None].expand(-1, -1, *parts[0].shape[-2:])
        return torch.cat([p[expert, scene] for p in parts] + [onehot], 1)

    def posterior(self, r, t, in_context, in_target) -> Latents:
        """z ~ Q(z | C, O) (paper Eq. 5), with the KL to P(z | C) (paper Eq. 2)."""
        present = in_context | in_target if self.experts == "present" else torch.ones_like(in_context)
        expert, scene = present.nonzero(as_tuple=True)
        xq, xp = self.expert_inputs([t, r], expert, scene), self.expert_inputs([r], expert, scene)
        prior_mask = in_context[expert, scene] if self.experts == "present" else None
        return self.draw.posterior(xq, xp, scene, self._combine(scene, r.shape[1]),
                                   self._combine(scene, r.shape[1], prior_mask))

    def prior(self, r, in_context) -> Latents:
        """z ~ P(z | C) (paper Eq. 2)."""
        present = in_context if self.experts == "present" else torch.ones_like(in_context)
        expert, scene = present.nonzero(as_tuple=True)
        xp = self.expert_inputs([r], expert, scene)
        return self.draw.prior(xp, scene, self._combine(scene, r.shape[1]))

    def _combine(self, scene, num_scenes, mask=None):
        return partial(gaussian_product, scene=scene, num_scenes=num_scenes, mask=mask,
                       unit=self.experts == "present")


class Baseline(nn.Module):
    """C-GQN baseline: one ConvDRAW on the sums over modalities (reference §3.2).
    Posterior input [sum_m t_m, sum_m r_m], prior input sum_m r_m; every modality counts (rho_m when empty)."""

    def __init__(self, num_modalities: int, preset: Preset):
        super().__init__()
        r = preset.r_channels
        self.draw = ConvDraw(2 * r, r, preset.hidden, preset.z_channels, preset.steps, preset.kernel)

    def posterior(self, r, t, in_context, in_target) -> Latents:
        r, t = r.sum(0), t.sum(0)
        scene = torch.arange(r.shape[0], device=r.device)
        return self.draw.posterior(torch.cat([t, r], 1), r, scene, _identity, _identity)

    def prior(self, r, in_context) -> Latents:
        r = r.sum(0)
        return self.draw.prior(r, torch.arange(r.shape[0], device=r.device), _identity)


def _identity(mu, logvar):
    return mu, logvar
