"""The Generative Multisensory Network (paper §2, Eq. 1-5; reference §1-4): encoders, inference, renderers,
the negative ELBO, the IWAE log-likelihood and generation. It knows families only through their interface
(gmn_plugins.core.family.Family): each builds its modalities' encoders and renderers, asks for a latent grid and scores
its targets."""

import math
from typing import Any

import attrs
import torch
import torch.nn as nn

from ..core.points import Points  # noqa: F401  (the model's input; re-exported)
from .convdraw import Latents, sample_gaussian
from .convlstm import ConvLSTM
from ..core.families import BUILTIN
from ..core.family import Family
from .encoders import QUERY_DIM, Encoder, RepresentationGaussian, encode_query
from .experts import gaussian_kl, gaussian_log_density
from .inference import AMORTIZERS, APoE, Baseline, PoE
from ..core.options import AGGREGATES, EXPERTS, INFERENCES, INITS, RENDERER_CONTEXTS, TARGET_ENCODERS
from .presets import Preset


def _family(value) -> Family:
    if isinstance(value, Family):
        return value
    if value not in BUILTIN:
        raise ValueError(f"unknown family {value!r}: pass a gmn_plugins.core.family.Family (a plugin's comes from the "
                         f"registry); built-in families: {tuple(BUILTIN)}")  # fmt: skip
    return BUILTIN[value]


@attrs.frozen
class ModalityInfo:
    """A modality as the model sees it: its name, its family (a ``gmn_plugins.core.family.Family``, or the name of a
    built-in one: "image", "vector"), its sense shape, e.g. (C, H, W) or (D,), and its query kind (a
    ``gmn_plugins.core.query.QueryKind``; None: a pose (x, y, z, pitch, yaw) encoded 5 -> 7 as camera and wrist are).
    Raises ValueError for an unknown family name or a shape the family refuses (``Family.check_shape``)."""

    name: str
    family: Family = attrs.field(converter=_family)
    shape: tuple[int, ...] = attrs.field(converter=tuple)
    query: Any = attrs.field(default=None, eq=False)

    @property
    def query_dim(self) -> int:
        """Raw query dimension (``QueryKind.dim``; 5 for a pose)."""
        return 5 if self.query is None else self.query.dim

    @property
    def encoded_query_dim(self) -> int:
        """Encoded query dimension, the encoder's and renderer's input (``QueryKind.encoded_dim``; 7 for a pose)."""
        return QUERY_DIM if self.query is None else self.query.encoded_dim

    def encode(self, queries: torch.Tensor) -> torch.Tensor:
        """(N, query_dim) raw -> (N, encoded_query_dim) model input (``QueryKind.encode_queries``)."""
        return encode_query(queries) if self.query is None else self.query.encode_queries(queries)

    def __attrs_post_init__(self):
        try:
            self.family.check_shape(self.shape)
        except ValueError as exc:
            raise ValueError(f"modality {self.name!r}: {exc}") from None


def latent_grid_for(modalities, latent_grid=None) -> tuple[int, int]:
    """(h, w): ``latent_grid`` when given; else the largest (by area) grid a modality's family asks for
    (``Family.latent_grid``: H/4 x W/4 for images, reference §1.1), else (16, 16) (reference §9.1). Encoders and
    renderers of other sizes adapt to it (encoders.ImageEncoder, renderers.ImageRenderer)."""
    if latent_grid is not None:
        return tuple(int(g) for g in latent_grid)
    asked = [g for g in (m.family.latent_grid(m.shape) for m in modalities) if g is not None]
    if not asked:
        return (16, 16)
    return tuple(max(asked, key=lambda g: (g[0] * g[1], g)))


class GMN(nn.Module):
    """Generative Multisensory Network.

    modalities: the ordered modalities; modality id = position, the APoE one-hot has len(modalities) channels.
    preset: sizes (presets.py).
    inference: "apoe" (paper model, reference §3.4), "poe" (one cell pair per modality, §3.3) or "baseline"
    (C-GQN, §3.2).
    experts: "present" or "all", see inference._Product (ignored by the baseline).
    latent_grid: (h, w); default: the largest grid a family asks for (the largest image / 4), else (16, 16).
    sigma: the fixed standard deviation of the Gaussian likelihood of every target element (reference §4.3: 1 in
    the paper's runs; GQN anneals it from 2 to 0.7). Smaller values weigh reconstruction more against the KL.
    first_step_prior: "bias" (authors' code: h_p^0 = 0, the step-1 prior is the head bias) or "context"
    (h_p^0 = LSTM_p([0, x_p]), so the step-1 prior depends on the context); no parameters (convdraw.ConvDraw).
    stochastic_representation: False (paper's experiments: r_m = f(C_m) deterministic) or True (paper Eq. 3:
    r_m ~ q(r_m | C_m u O_m) when training, ~ p(r_m | C_m) when generating, both from one 1x1-conv Gaussian head
    per modality on the aggregate, KL(q || p) added to the KL and to the IWAE weights); +(2r + 2) r parameters
    per modality (131,584 at v4).
    vector_projection: the vector family's option: "dense" (authors' 512 -> r*h*w layer) or "light" (spatial
    broadcast, encoders.VectorEncoder; -33,357,312 parameters per vector modality at v4 on the 16x16 grid).
    family_options: {option: value} for the families' own options (``Family.options``; vector_projection joins
    them); each family takes the ones it declares.
    hoisted: True (default) runs every constant ConvLSTM input convolution once per sequence (and the renderers'
    z part once per scene), each renderer's decoder once over its T hidden states, each encoder once over context
    and target together, and each residual pair as one fused layer; False is the straightforward form with the
    same parameters, frozen as at commit 109f683 (reference for tests and benchmarks; tests/test_reference_flops.py).
    Every submodule with a ``hoisted`` attribute gets the value.
    amortizer: "batched" (default) or "loop", how APoE runs its shared cells over the experts (same numbers).
    init: "default" (torch's initialisation, as the authors' code; each ConvLSTM drawn as its one gate convolution,
    convlstm.py) or "kaiming": ``init_relu_layers`` on every encoder, the shallow target encoders included (the
    ConvLSTMs keep the default), for CPU-sized runs (docs/reproducing-the-paper.md, "Does the quickstart visibly
    learn?"; docs/fast-recipe.md); not on the renderers, whose ReLU decoder, so initialised, died in 1 of 2 probe
    runs.
    aggregate: "sum" (paper, reference §2.3) or "mean": how each encoder pools a scene's points into r_m (and t_m);
    "mean" keeps r in range whatever the number of views (beyond the paper; issue 28).
    target_encoder: "shared" (paper: the posterior reads the targets through each modality's encoder) or
    "shallow" (each family's ``target_encoder``, a short path from the target's values; beyond the paper, issue 28;
    not with stochastic_representation). A modality whose family has no ``target_encoder`` reads its targets through
    its own encoder under "shallow" too (an ``nn.Identity`` placeholder stands in ``target_encoders``).
    renderer_context: "none" (paper Eq. 1: each renderer reads z and the query) or "mean": each renderer also reads
    the scene's context representation, the mean over modalities of r_m (rho_m for a modality without context),
    through a 1 x 1 convolution r -> T * ceil(r / T) channels appended to z, as GQN's generator reads r: a
    deterministic path from what the context shows to what is rendered (beyond the paper, issue 28;
    ``render_input``). The renderers are built for T * (z + ceil(r / T)) input channels.
    likelihood_options: {option: value} for the families' likelihoods (``Family.likelihood_options``, e.g. the image
    family's ``chroma_weight``); each family's ``nll`` takes the ones it declares, its defaults for the others.
    Raises ValueError for an unknown inference, experts, first_step_prior, family option value, init, aggregate,
    renderer_context or amortizer,
    amortizer="loop" without inference="apoe", an empty modality list or sigma <= 0.
    """

    def __init__(self, modalities: list[ModalityInfo], preset: Preset, inference: str = "apoe",
                 experts: str = "present", latent_grid: tuple[int, int] | None = None, sigma: float = 1.0,
                 first_step_prior: str = "bias", stochastic_representation: bool = False,
                 vector_projection: str = "dense", hoisted: bool = True, amortizer: str = "batched",
                 family_options: dict | None = None, init: str = "default", aggregate: str = "sum",
                 target_encoder: str = "shared", renderer_context: str = "none",
                 likelihood_options: dict | None = None):
        super().__init__()
        if renderer_context not in RENDERER_CONTEXTS:
            raise ValueError(f"renderer_context must be one of {RENDERER_CONTEXTS}, got {renderer_context!r}")
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        if aggregate not in AGGREGATES:
            raise ValueError(f"aggregate must be one of {AGGREGATES}, got {aggregate!r}")
        if target_encoder not in TARGET_ENCODERS or (target_encoder == "shallow" and stochastic_representation):
            raise ValueError(f"target_encoder must be one of {TARGET_ENCODERS} ('shallow' not with "
                             f"stochastic_representation), got {target_encoder!r}")
        if not sigma > 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        self.sigma = float(sigma)
        self.likelihood_options = dict(likelihood_options or {})
        if not modalities:
            raise ValueError("a GMN needs at least one modality")
        if inference not in INFERENCES:
            raise ValueError(f"inference must be one of {INFERENCES}, got {inference!r}")
        if experts not in EXPERTS:
            raise ValueError(f"experts must be one of {EXPERTS}, got {experts!r}")
        if amortizer not in AMORTIZERS or (amortizer == "loop" and inference != "apoe"):
            raise ValueError(f"amortizer must be one of {AMORTIZERS} ('loop' only with inference='apoe'), got "
                             f"{amortizer!r} with inference={inference!r}")
        options = {"vector_projection": vector_projection, **(family_options or {})}
        self.modalities, self.preset = list(modalities), preset
        self.grid = latent_grid_for(modalities, latent_grid)
        self.encoders = nn.ModuleList(m.family.build_encoder(m.shape, preset, self.grid, options, m.encoded_query_dim)
                                      for m in modalities)  # fmt: skip
        self.target_encoders = None  # "shared": the posterior reads the targets through self.encoders
        if target_encoder == "shallow":
            self.target_encoders = nn.ModuleList(
                nn.Identity() if m.family.target_encoder is None  # this family: its encoder, as "shared"
                else m.family.build_target_encoder(m.shape, preset, self.grid, options, m.encoded_query_dim)
                for m in modalities)  # fmt: skip
        self.context_projection, render_preset = None, preset  # renderer_context "none": renderers read z alone
        if renderer_context == "mean":
            per_step = -(-preset.r_channels // preset.steps)
            self.context_projection = nn.Conv2d(preset.r_channels, preset.steps * per_step, 1)
            render_preset = attrs.evolve(preset, z_channels=preset.z_channels + per_step)
        self.renderers = nn.ModuleList(
            m.family.build_renderer(m.shape, render_preset, self.grid, options, m.encoded_query_dim)
            for m in modalities)  # fmt: skip
        m = len(modalities)
        if inference == "apoe":
            self.inference = APoE(m, preset, experts, first_step_prior, amortizer)
        elif inference == "poe":
            self.inference = PoE(m, preset, experts, first_step_prior)
        else:
            self.inference = Baseline(m, preset, first_step_prior)
        self.representation_heads = (nn.ModuleList(RepresentationGaussian(preset.r_channels) for _ in modalities)
                                     if stochastic_representation else None)
        if init == "kaiming":
            for module in [*self.encoders, *(self.target_encoders or [])]:
                init_relu_layers(module)
        for module in self.modules():
            if isinstance(module, Encoder):
                module.aggregate_mode = aggregate
        self.hoisted = bool(hoisted)
        for module in self.modules():
            if hasattr(module, "hoisted"):  # ConvLSTM, encoders._Residual, a plugin's module
                module.hoisted = self.hoisted

    def forward(self, context: list[Points], target: list[Points], num_scenes: int, beta: float = 1.0,
                prior_nll_weight: float = 0.0):
        """Negative ELBO (paper Eq. 4) with one z ~ Q(z | C, O) per scene.

        Returns a dict of scalars: "loss" = (nll + beta * kl) / num_scenes; "nll" = summed Gaussian NLL (fixed sigma,
        log sigma + 0.5 log 2 pi per element included) over all target elements, in nats; "kl" = summed KL over steps and
        scenes, in nats; "nll_per_dim" = nll / number of target elements (nats per dimension); "kl_per_scene"; and per
        scene, for paired statistics: "nll_scenes", "kl_scenes" (B,) in nats and "elements" (B,) target dimensions.
        ``prior_nll_weight`` w > 0 (beyond the paper, issue 28; ``train.prior_nll_weight``): the targets are also
        rendered from one z ~ P(z | C) per scene, and "loss" gains w * that NLL / num_scenes ("nll_prior", nats), the
        hybrid objective of Sohn et al. 2015 (CVAE + GSNN), which trains the prior and the renderers on what is
        rendered at test time; 0 (default) computes nothing more. Raises ValueError for malformed points or an
        empty target.
        """
        context = self._on_device(context, num_scenes, "context")
        target = self._on_device(target, num_scenes, "target")
        r, t, in_context, in_target = self._represent(context, target, num_scenes)
        per_scene = _elements(target, num_scenes)
        elements = per_scene.sum()
        if elements == 0:
            raise ValueError("the target set is empty: the ELBO needs at least one target element")
        latents = self._posterior(r, t, in_context, in_target)
        z = self.render_input(latents.z, r)
        nll_scenes, kl_scenes = self._nll(z, target, num_scenes), latents.kl
        nll, kl = nll_scenes.sum(), kl_scenes.sum()
        out = {"loss": (nll + beta * kl) / num_scenes, "nll": nll, "kl": kl,
               "nll_per_dim": nll / elements, "kl_per_scene": kl / num_scenes,
               "nll_scenes": nll_scenes, "kl_scenes": kl_scenes, "elements": per_scene}
        if prior_nll_weight > 0:
            nll_prior = self._nll(self._prior_input(r, in_context), target, num_scenes).sum()
            out |= {"loss": out["loss"] + prior_nll_weight * nll_prior / num_scenes, "nll_prior": nll_prior}
        return out

    @torch.no_grad()
    def log_likelihood(self, context: list[Points], target: list[Points], num_scenes: int, samples: int = 5,
                       transforms: list | None = None):  # fmt: skip
        """IWAE estimate of log p(X_target | V, C) per scene, (B,), in nats per target dimension (reference §6.1):
        proposal Q(z | C, O), w_s = log p(X | V, z_s) + log p(z_s | C) - log q(z_s | C, O),
        estimate = (logsumexp_s w_s - log S) / (number of target elements of the scene).
        ``transforms``: None or one callable (or None) per modality, applied to both the target senses and the rendered
        means before the likelihood, e.g. the GRAY evaluation's max over RGB (reference §6.1); the elements counted
        are the transformed ones. Raises ValueError if some scene has no target element, or for malformed points."""
        transforms = transforms or [None] * len(self.modalities)
        context = self._on_device(context, num_scenes, "context")
        target = self._on_device(target, num_scenes, "target")
        r, t, in_context, in_target = self._represent(context, target, num_scenes)
        elements = _elements(target, num_scenes, transforms)
        if (elements == 0).any():
            raise ValueError("log_likelihood needs at least one target element in every scene")
        weights = []
        for _ in range(samples):
            latents = self._posterior(r, t, in_context, in_target)
            z = self.render_input(latents.z, r)
            weights.append(latents.log_ratio - self._nll(z, target, num_scenes, transforms))
        return (torch.logsumexp(torch.stack(weights), 0) - math.log(samples)) / elements

    @torch.no_grad()
    def generate(self, context: list[Points], queries: list, scene: list, num_scenes: int) -> list:
        """Means rendered from z ~ P(z | C) (paper Eq. 2): for each modality m, queries[m] (N_m, query_dim) raw and
        scene[m] (N_m,) int64 give (N_m, *shape_m); None in queries[m] gives None.
        Raises ValueError for malformed context points or list lengths."""
        if len(queries) != len(self.modalities) or len(scene) != len(self.modalities):
            raise ValueError(f"queries and scene need one entry per modality ({len(self.modalities)})")
        return self.generate_from(*self.represent(context, num_scenes), queries, scene)

    @torch.no_grad()
    def represent(self, context: list[Points], num_scenes: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The context's representations r_m (paper Eq. 3, deterministic part; reference §2.3): (M, B, r, h, w)
        stacked per modality, and their (M, B) bool presence. What ``generate_from`` needs, so a caller that renders
        a scene several times encodes its context once (``gmn_plugins.api.Scene``). Raises ValueError for
        malformed points."""
        context = self._on_device(context, num_scenes, "context")
        return self._aggregate(context, num_scenes, "context")

    @torch.no_grad()
    def generate_from(self, r: torch.Tensor, in_context: torch.Tensor, queries: list, scene: list) -> list:
        """``generate`` from the context's ``represent``: means rendered from z ~ P(z | C) (paper Eq. 2), for each
        modality m, queries[m] (N_m, query_dim) raw and scene[m] (N_m,) int64 give (N_m, *shape_m); None in
        queries[m] gives None. One z per scene, drawn from torch's generator. Raises ValueError for list lengths
        other than the number of modalities."""
        if len(queries) != len(self.modalities) or len(scene) != len(self.modalities):
            raise ValueError(f"queries and scene need one entry per modality ({len(self.modalities)})")
        device = self.device
        queries = [None if q is None else q.to(device) for q in queries]
        scene = [None if s is None else s.to(device) for s in scene]
        z = self._prior_input(r, in_context)
        return [None if q is None else renderer(z, info.encode(q), s)
                for info, renderer, q, s in zip(self.modalities, self.renderers, queries, scene)]

    @torch.no_grad()
    def reconstruct(self, context: list[Points], target: list[Points], num_scenes: int) -> list:
        """Means rendered at the target queries from z ~ Q(z | C, O), the posterior that also saw the targets (paper
        Eq. 4's proposal): for each modality m, (N_m, *shape_m), or None when it has no target. A diagnostic beside
        ``generate``: renders far better than the prior's say that the renderer can draw the scene and the prior
        has not caught up with the posterior. Raises ValueError for malformed points."""
        context = self._on_device(context, num_scenes, "context")
        target = self._on_device(target, num_scenes, "target")
        r, t, in_context, in_target = self._represent(context, target, num_scenes)
        z = self.render_input(self._posterior(r, t, in_context, in_target).z, r)
        return [renderer(z, info.encode(p.queries), p.scene) if p.senses.shape[0] else None
                for info, renderer, p in zip(self.modalities, self.renderers, target)]

    def render_input(self, z: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """What the renderers read: z (B, T*z, h, w), with renderer_context "mean" followed by the projected mean over
        modalities of the context representations r (M, B, r, h, w) -> (B, T*(z + ceil(r/T)), h, w)."""
        if self.context_projection is None:
            return z
        return torch.cat([z, self.context_projection(r.mean(0)).to(z.dtype)], 1)

    @property
    def device(self) -> torch.device:
        """Where the parameters live; inputs on another device are moved there by every entry point."""
        return next(self.parameters()).device

    def _on_device(self, points: list[Points], num_scenes: int, what: str) -> list[Points]:
        """Check every modality's points (before any transfer, so a GPU is never synchronised for it) and move
        them to the parameters' device."""
        if len(points) != len(self.modalities):
            raise ValueError(f"{what}: expected {len(self.modalities)} Points (one per modality, N = 0 when "
                             f"absent), got {len(points)}")
        for info, p in zip(self.modalities, points):
            _check(info, p, num_scenes, what)
        device = self.device
        return [p.to(device) for p in points]

    def _prior_input(self, r, in_context) -> torch.Tensor:
        """``render_input`` of z ~ P(z | C) (paper Eq. 2); with stochastic_representation, of r_m ~ p(r_m | C_m)
        drawn first."""
        if self.representation_heads is not None:
            r = torch.stack([sample_gaussian(*head(r_m)) for head, r_m in zip(self.representation_heads, r)])
        return self.render_input(self.inference.prior(r, in_context).z, r)

    def _posterior(self, r, t, in_context, in_target) -> Latents:
        """z ~ Q(z | C, O); with stochastic_representation, first r_m ~ q(r_m | C_m u O_m) (aggregate
        r_m + t_m - rho_m) against p(r_m | C_m) (aggregate r_m), its KL and log-ratio added (paper Eq. 3-4)."""
        if self.representation_heads is None:
            return self.inference.posterior(r, t, in_context, in_target)
        samples, kl, log_ratio = [], 0.0, 0.0
        for head, encoder, r_m, t_m in zip(self.representation_heads, self.encoders, r, t):
            mu_p, logvar_p = head(r_m)
            mu_q, logvar_q = head(r_m + t_m - encoder.rho)
            sample = sample_gaussian(mu_q, logvar_q)
            kl = kl + gaussian_kl(mu_q, logvar_q, mu_p, logvar_p).flatten(1).sum(1)
            log_ratio = log_ratio + (gaussian_log_density(sample, mu_p, logvar_p)
                                     - gaussian_log_density(sample, mu_q, logvar_q)).flatten(1).sum(1)
            samples.append(sample)
        latents = self.inference.posterior(torch.stack(samples), t, in_context, in_target)
        return Latents(latents.z, latents.kl + kl, latents.log_ratio + log_ratio)

    def _represent(self, context, target, num_scenes):
        """r and t (M, B, r, h, w) of the context and the target, with their (M, B) presence. Hoisted: each
        encoder runs once over its context and target points together (Encoder.aggregate_sets)."""
        if not self.hoisted or self.target_encoders is not None:
            r, in_context = self._aggregate(context, num_scenes, "context")
            own = self.target_encoders or self.encoders
            encoders = [e if isinstance(t, nn.Identity) else t for t, e in zip(own, self.encoders)]
            t, in_target = self._aggregate(target, num_scenes, "target", encoders)
            return r, t, in_context, in_target
        r, t = zip(*(encoder.aggregate_sets([(c.senses, info.encode(c.queries), c.scene),
                                             (o.senses, info.encode(o.queries), o.scene)], num_scenes)
                     for info, encoder, c, o in zip(self.modalities, self.encoders, context, target)))
        return torch.stack(r), torch.stack(t), _presence(context, num_scenes), _presence(target, num_scenes)

    def _aggregate(self, points, num_scenes, what, encoders=None):
        """(M, B, r, h, w) stacked r_m (reference §2.3) and (M, B) bool presence; ``points`` checked by
        ``_on_device``; ``encoders``: None = the modalities' encoders."""
        reps = [encoder.aggregate(p.senses, info.encode(p.queries), p.scene, num_scenes)
                for info, encoder, p in zip(self.modalities, encoders or self.encoders, points)]
        return torch.stack(reps), _presence(points, num_scenes)

    def _nll(self, z, target, num_scenes, transforms=None):
        """(B,) summed NLL of each scene's targets in nats, each modality's by its family's likelihood
        (``Family.nll``; the default Gaussian with fixed sigma counts log sigma + 0.5 log 2 pi per element);
        ``transforms`` as in ``log_likelihood``."""
        nll = torch.zeros(num_scenes, device=z.device)  # float32, also when z is bf16 under autocast
        for info, renderer, p, transform in zip(self.modalities, self.renderers, target,
                                                transforms or [None] * len(target)):  # fmt: skip
            if p.senses.shape[0]:
                mean, senses = renderer(z, info.encode(p.queries), p.scene), p.senses
                if transform is not None:
                    mean, senses = transform(mean), transform(senses)
                error = info.family.nll(mean.float(), senses, self.sigma,  # float32 under bf16 autocast too
                                        **info.family.likelihood_values(self.likelihood_options))
                nll = nll.index_add(0, p.scene, error.flatten(1).sum(1))
        return nll


def init_relu_layers(module: nn.Module) -> None:
    """Re-initialise, in place, every Conv2d, ConvTranspose2d and Linear of ``module`` outside its ConvLSTMs (whose
    gates are sigmoid and tanh): weights He normal (fan-in, ReLU gain sqrt 2), biases zero.

    Why: torch's default (uniform, bound 1/sqrt(fan_in)) shrinks a ReLU layer's signal about 2.4x, so at
    initialisation two random images change the 6-layer image encoder's output by about 6 %; the rest is its
    biases'. On a probe where only an image's colour varies (benchmarks/colour_probe.py), an image encoder with a
    linear head learns to regress the colour to a loss of 0.012 / 0.03 in 600 steps with this, 0.70 / 0.69 with
    the default (2 seeds; chance 2.0)."""
    for layer in module.modules():
        if isinstance(layer, ConvLSTM):
            continue
        for child in layer.children():
            if isinstance(child, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                nn.init.kaiming_normal_(child.weight, nonlinearity="relu")
                if child.bias is not None:
                    nn.init.zeros_(child.bias)


def _presence(points, num_scenes):
    """(M, B) bool: whether modality m has a point in scene b."""
    return torch.stack([torch.bincount(p.scene, minlength=num_scenes) > 0 for p in points])


def _elements(target, num_scenes, transforms=None):
    """(B,) float number of target elements (dimensions, after ``transforms``) per scene."""
    elements = torch.zeros(num_scenes, device=target[0].scene.device)
    for p, transform in zip(target, transforms or [None] * len(target)):
        shape = p.senses.shape[1:] if transform is None else transform(p.senses[:1]).shape[1:]
        elements += torch.bincount(p.scene, minlength=num_scenes) * math.prod(shape)
    return elements


def _check(info, points, num_scenes, what):
    n = points.senses.shape[0]
    if tuple(points.senses.shape[1:]) != info.shape:
        raise ValueError(f"{what} {info.name!r}: senses must be (N, *{info.shape}), got {tuple(points.senses.shape)}")
    if points.scene.dtype != torch.int64:
        raise ValueError(f"{what} {info.name!r}: scene must be int64, got {points.scene.dtype}")
    if points.queries.shape != (n, info.query_dim) or points.scene.shape != (n,):
        raise ValueError(f"{what} {info.name!r}: queries must be ({n}, {info.query_dim}) and scene ({n},), got "
                         f"{tuple(points.queries.shape)} and {tuple(points.scene.shape)}")
    if n and (points.scene.min() < 0 or points.scene.max() >= num_scenes):
        raise ValueError(f"{what} {info.name!r}: scene indices must lie in [0, {num_scenes})")
