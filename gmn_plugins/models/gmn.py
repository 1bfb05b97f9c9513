"""The Generative Multisensory Network (paper §2, Eq. 1-5; reference §1-4): encoders, inference, renderers,
the negative ELBO, the IWAE log-likelihood and generation. Knows only the families "image" and "vector"."""

import math

import attrs
import torch
import torch.nn as nn

from .encoders import ImageEncoder, VectorEncoder, encode_query
from .inference import EXPERTS, APoE, Baseline
from .presets import Preset
from .renderers import ImageRenderer, VectorRenderer

FAMILIES = {"image": (ImageEncoder, ImageRenderer), "vector": (VectorEncoder, VectorRenderer)}
SHAPE_DIMS = {"image": 3, "vector": 1}  # (C, H, W) and (D,)
INFERENCE = ("apoe", "baseline")
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


@attrs.frozen
class ModalityInfo:
    """A modality as the model sees it: family "image" with shape (C, H, W) or "vector" with shape (D,).
    Raises ValueError for an unknown family or a shape of the wrong length."""

    name: str
    family: str = attrs.field(validator=attrs.validators.in_(tuple(FAMILIES)))
    shape: tuple[int, ...] = attrs.field(converter=tuple)

    def __attrs_post_init__(self):
        if len(self.shape) != SHAPE_DIMS[self.family]:
            raise ValueError(f"modality {self.name!r}: a {self.family} shape has {SHAPE_DIMS[self.family]} "
                             f"dimensions, got {self.shape}")


@attrs.frozen(eq=False)
class Points:
    """The observations of ONE modality, packed over all scenes of a batch (N may be 0).
    senses (N, *shape) float32 (images in [0, 1], vectors roughly in [-1, 1]); queries (N, 5) raw
    (x, y, z, pitch, yaw) in metres and radians; scene (N,) int64 index of the scene in [0, B)."""

    senses: torch.Tensor
    queries: torch.Tensor
    scene: torch.Tensor


def latent_grid_for(modalities, latent_grid=None) -> tuple[int, int]:
    """(h, w): H/4 x W/4 of the image modalities, else latent_grid, else (16, 16) (reference §1.1, §9.1).
    Raises ValueError if the image modalities disagree on (H, W) (naming them), if H or W is not a multiple of 4,
    or if latent_grid contradicts the images."""
    sizes = {m.name: tuple(m.shape[1:]) for m in modalities if m.family == "image"}
    if not sizes:
        return tuple(latent_grid) if latent_grid is not None else (16, 16)
    if len(set(sizes.values())) > 1:
        raise ValueError(f"image modalities must share (H, W), got {sizes}")
    height, width = next(iter(sizes.values()))
    if height % 4 or width % 4:
        raise ValueError(f"image size {(height, width)} of {list(sizes)} must be a multiple of 4")
    grid = (height // 4, width // 4)
    if latent_grid is not None and tuple(latent_grid) != grid:
        raise ValueError(f"latent_grid {tuple(latent_grid)} contradicts the images {list(sizes)}: "
                         f"{(height, width)} needs {grid}")
    return grid


class GMN(nn.Module):
    """Generative Multisensory Network.

    modalities: the ordered modalities; modality id = position, the APoE one-hot has len(modalities) channels.
    preset: sizes (presets.py). inference: "apoe" (paper model, reference §3.4) or "baseline" (C-GQN, §3.2).
    experts: "present" or "all", see inference.APoE (ignored by the baseline).
    latent_grid: (h, w); default H/4 x W/4 of the image modalities, (16, 16) without images.
    sigma: the fixed standard deviation of the Gaussian likelihood of every target element (reference §4.3: 1 in
    the paper's runs; GQN anneals it from 2 to 0.7). Smaller values weigh reconstruction more against the KL.
    Raises ValueError for an unknown inference or experts, an empty modality list, a bad grid or sigma <= 0.
    """

    def __init__(self, modalities: list[ModalityInfo], preset: Preset, inference: str = "apoe",
                 experts: str = "present", latent_grid: tuple[int, int] | None = None, sigma: float = 1.0):
        super().__init__()
        if not sigma > 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        self.sigma = float(sigma)
        if not modalities:
            raise ValueError("a GMN needs at least one modality")
        if inference not in INFERENCE:
            raise ValueError(f"inference must be one of {INFERENCE}, got {inference!r}")
        if experts not in EXPERTS:
            raise ValueError(f"experts must be one of {EXPERTS}, got {experts!r}")
        self.modalities, self.preset = list(modalities), preset
        self.grid = latent_grid_for(modalities, latent_grid)
        self.encoders = nn.ModuleList(FAMILIES[m.family][0](m.shape, preset, self.grid) for m in modalities)
        self.renderers = nn.ModuleList(FAMILIES[m.family][1](m.shape, preset, self.grid) for m in modalities)
        m = len(modalities)
        self.inference = APoE(m, preset, experts) if inference == "apoe" else Baseline(m, preset)

    def forward(self, context: list[Points], target: list[Points], num_scenes: int, beta: float = 1.0):
        """Negative ELBO (paper Eq. 4) with one z ~ Q(z | C, O) per scene.

        Returns a dict of scalars: "loss" = (nll + beta * kl) / num_scenes; "nll" = summed Gaussian NLL (fixed sigma,
        log sigma + 0.5 log 2 pi per element included) over all target elements, in nats; "kl" = summed KL over steps and
        scenes, in nats; "nll_per_dim" = nll / number of target elements (nats per dimension); "kl_per_scene".
        Raises ValueError for malformed points or an empty target.
        """
        r, t, in_context, in_target = self._represent(context, target, num_scenes)
        elements = _elements(target, num_scenes).sum()
        if elements == 0:
            raise ValueError("the target set is empty: the ELBO needs at least one target element")
        latents = self.inference.posterior(r, t, in_context, in_target)
        nll, kl = self._nll(latents.z, target, num_scenes).sum(), latents.kl.sum()
        return {"loss": (nll + beta * kl) / num_scenes, "nll": nll, "kl": kl,
                "nll_per_dim": nll / elements, "kl_per_scene": kl / num_scenes}

    @torch.no_grad()
    def log_likelihood(self, context: list[Points], target: list[Points], num_scenes: int, samples: int = 5):
        """IWAE estimate of log p(X_target | V, C) per scene, (B,), in nats per target dimension (reference §6.1):
        proposal Q(z | C, O), w_s = log p(X | V, z_s) + log p(z_s | C) - log q(z_s | C, O),
        estimate = (logsumexp_s w_s - log S) / (number of target elements of the scene).
        Raises ValueError if some scene has no target element, or for malformed points."""
        r, t, in_context, in_target = self._represent(context, target, num_scenes)
        elements = _elements(target, num_scenes)
        if (elements == 0).any():
            raise ValueError("log_likelihood needs at least one target element in every scene")
        weights = []
        for _ in range(samples):
            latents = self.inference.posterior(r, t, in_context, in_target)
            weights.append(latents.log_ratio - self._nll(latents.z, target, num_scenes))
        return (torch.logsumexp(torch.stack(weights), 0) - math.log(samples)) / elements

    @torch.no_grad()
    def generate(self, context: list[Points], queries: list, scene: list, num_scenes: int) -> list:
        """Means rendered from z ~ P(z | C) (paper Eq. 2): for each modality m, queries[m] (N_m, 5) raw and
        scene[m] (N_m,) int64 give (N_m, *shape_m); None in queries[m] gives None.
        Raises ValueError for malformed context points or list lengths."""
        if len(queries) != len(self.modalities) or len(scene) != len(self.modalities):
            raise ValueError(f"queries and scene need one entry per modality ({len(self.modalities)})")
        r, in_context = self._aggregate(context, num_scenes, "context")
        z = self.inference.prior(r, in_context).z
        return [None if q is None else renderer(z, encode_query(q), s)
                for renderer, q, s in zip(self.renderers, queries, scene)]

    def _represent(self, context, target, num_scenes):
        r, in_context = self._aggregate(context, num_scenes, "context")
        t, in_target = self._aggregate(target, num_scenes, "target")
        return r, t, in_context, in_target

    def _aggregate(self, points, num_scenes, what):
        """(M, B, r, h, w) stacked r_m (reference §2.3) and (M, B) bool presence."""
        if len(points) != len(self.modalities):
            raise ValueError(f"{what}: expected {len(self.modalities)} Points (one per modality, N = 0 when "
                             f"absent), got {len(points)}")
        reps, present = [], []
        for info, encoder, p in zip(self.modalities, self.encoders, points):
            _check(info, p, num_scenes, what)
            reps.append(encoder.aggregate(p.senses, encode_query(p.queries), p.scene, num_scenes))
            present.append(torch.bincount(p.scene, minlength=num_scenes) > 0)
        return torch.stack(reps), torch.stack(present)

    def _nll(self, z, target, num_scenes):
        """(B,) summed Gaussian NLL (fixed sigma, log sigma + 0.5 log 2 pi per element) of each scene's targets, in nats."""
        nll = z.new_zeros(num_scenes)
        constant = math.log(self.sigma) + HALF_LOG_2PI
        for renderer, p in zip(self.renderers, target):
            if p.senses.shape[0]:
                mean = renderer(z, encode_query(p.queries), p.scene)
                error = 0.5 * ((p.senses - mean) / self.sigma) ** 2 + constant
                nll = nll.index_add(0, p.scene, error.flatten(1).sum(1))
        return nll


def _elements(target, num_scenes):
    """(B,) float number of target elements (dimensions) per scene."""
    elements = torch.zeros(num_scenes, device=target[0].scene.device)
    for p in target:
        elements += torch.bincount(p.scene, minlength=num_scenes) * math.prod(p.senses.shape[1:])
    return elements


def _check(info, points, num_scenes, what):
    n = points.senses.shape[0]
    if tuple(points.senses.shape[1:]) != info.shape:
        raise ValueError(f"{what} {info.name!r}: senses must be (N, *{info.shape}), got {tuple(points.senses.shape)}")
    if points.scene.dtype != torch.int64:
        raise ValueError(f"{what} {info.name!r}: scene must be int64, got {points.scene.dtype}")
    if points.queries.shape != (n, 5) or points.scene.shape != (n,):
        raise ValueError(f"{what} {info.name!r}: queries must be ({n}, 5) and scene ({n},), got "
                         f"{tuple(points.queries.shape)} and {tuple(points.scene.shape)}")
    if n and (points.scene.min() < 0 or points.scene.max() >= num_scenes):
        raise ValueError(f"{what} {info.name!r}: scene indices must lie in [0, {num_scenes})")
