"""The authors' function as a golden file: their baseline and conv-APoE, against ours (issue 27).

    python benchmarks/authors_golden.py --authors PATH [--out tests/fixtures/authors_golden.json]

PATH is a checkout of lim0606/pytorch-generative-multisensory-network (the reference's @646404d). Its code is
imported from there at run time, never copied here; its third-party imports that it needs only for plotting and
data (torchvision, seaborn, pandas, sklearn, ...) are replaced, while importing, by inert stub modules when they are
not installed. The script

1. builds their ``models.multimodal_cgqn.CGQN_v4`` (the baseline) and ``models.conv_amortized_poe_multimodal_cgqn.
   CGQN_v4`` (conv-APoE; reference §3.2, §3.4) with dims = [(3, 16, 16, 7, 'image'), (6, 1, 1, 7, 'haptic')] at
   ``SIZES`` (the small size their classes build at: 256 representation channels and the 512-wide haptic MLPs and
   the kernel 5 are hard-coded in their classes; the 16 x 16 image gives a 4 x 4 latent grid);
2. fills EVERY parameter by ``fill_values``: one ``torch.Generator`` seeded ``FILL_SEED``, the parameters in their
   ``named_parameters()`` order, each drawn with ``torch.rand`` as U(-b, b), b = 1 / sqrt(prod(shape[1:])) for
   tensors of 2 or more dimensions (torch's default bound for conv and linear weights; for a ConvTranspose its
   weight.size(1) * k * k, as torch) and b = 0.1 for 1-D tensors (biases), drawn in float32;
3. draws the inputs (``make_inputs``: images U(0, 1), haptic vectors U(-1, 1), query position U(-1, 1)^3 and
   angles U(-pi, pi)^2 from a generator seeded ``INPUT_SEED``; ``EPISODES`` says how many context and target points
   each modality has in each scene, one scene with no haptic context) and the noise (``make_noise``: eps (T, B, z,
   h, w) ~ N(0, 1) from a generator seeded ``NOISE_SEED``; step t's posterior sample is mu + exp(logvar / 2) * eps[t]
   in both codes: theirs through ``models.reparam.NormalDistribution.sample_gaussian``, ours through
   ``gmn_plugins.models.convdraw.sample_gaussian``, both replaced for the run by ``feed``);
4. runs their forward in float64 (the float32 draws cast) and records ``QUANTITIES``; maps the same weights into
   our ``GMN(inference=..., experts="all")`` (``load_authors``), runs ours in float32 and float64 and checks that
   ours reproduces every recorded number (``compare``; the float64 differences are the in-model ones, see below);
5. writes the golden: the recipe (seeds, sizes, the authors' parameter names and shapes in order with each filled
   tensor's sum as a check), the reference quantities (small ones whole, large ones as ``summarise`` gives them) and
   the differences it measured. ``tests/test_authors_golden.py`` rebuilds all of it from the recipe without their
   code.

Weight mapping (theirs -> ours; ``load_authors``), for model.experts = "all":
  ConvLSTM: theirs is ONE conv ``gates`` over cat[input, h] (weight (4H, in + H, k, k), one bias; gate order i, f,
    o, g; reference §3.1); ours (``models/convlstm.py``) the same gate order, stored as conv_x (the constant input x,
    with the bias) and conv_h (cat[v, h], no bias). The column blocks of their weight go as:
      posterior cell ``rnn_q.rnns.0.rnn``, input cat[t, r(, e)], h_p, h_q -> conv_x = [t, r(, e)], conv_h = [h_p, h_q]
      prior cell ``rnn_p.rnns.0.rnn_p``, input cat[z, r(, e)], h_p      -> conv_x = [r(, e)],    conv_h = [z, h_p]
      renderer ``renderers.m.rnn_p``, input cat[z_1..T, query], h        -> conv_x = [z, query],  conv_h = [h]
    (the prior's z comes first in theirs and is moved to conv_h; everything else keeps its order).
  conv-APoE: their Conv3d kernels (out, in, 1, 5, 5) are our Conv2d (out, in, 5, 5) (dimension 2 dropped): their
    (B, C, M, h, w) stack over the expert axis is our batched APoE's expert-major rows (m, b) (``inference.py``).
  Gaussian heads ``reparam(_p).{mean_fn, logvar_fn}`` -> ``q_head``/``p_head`` ``.mean``/``.logvar``.
  Image tower ``repnets.0.repnet.img_enc.{0, 2.main, 2.skip, 4}`` -> ``encoders.0.{conv1, res1.main, res1.skip,
    conv2}``; ``enc.{0.main, 0.skip, 2, 4}`` -> ``{res2.main, res2.skip, conv3, conv4}`` (reference §2.1).
  Haptic MLP (1 x 1 convs) ``repnets.1.repnet.ppc_enc.{0, 2.main, 2.skip, 4}`` -> ``encoders.1.{fc1, res1.main,
    res1.skip, fc2}``; ``enc.{0.main, 0.skip, 2, 4}`` -> ``{res2.main, res2.skip, fc3, out}``, (out, in, 1, 1) ->
    (out, in) (reference §2.2).
  ``repnets.m.init_representation`` (1, 256, h, w) or (1, 256 h w, 1, 1) -> ``encoders.m.rho`` (256, h, w);
    ``repnets.m.init_query`` is unused by their forward and has no counterpart (it is filled, for the draw order).
  Image decoder ``decoder.{decode, convt, convt2}`` -> ``renderers.0.decoder.{0, 2, 4}``; haptic decoder
    ``decoder.{fc1, fc2, fc3}`` -> ``renderers.1.decoder.{1, 3, 5}`` (reference §4.1-4.2).

Known differences, by which the comparison allows for them (reference §3.3, §4.3):
  * their product of experts adds eps = 1e-8 to each variance twice and once more before the log; ours once
    (``experts.EPS``): a relative difference of about 1e-8 in APoE's combined Gaussians, below float32 rounding.
  * their NLL is 0.5 sum (x - mu)^2 / sigma^2 + 0.5 log 2 pi once per modality (log sigma omitted); ours counts
    log sigma + 0.5 log 2 pi per element. Both are compared as the quadratic part 0.5 sum (x - mu)^2 / sigma^2
    (``nll_quadratic``), and the loss as nll_quadratic + KL summed over the batch (``loss_quadratic``; ours averages
    over the scenes, so it is multiplied back by B).
"""

import argparse
import contextlib
import importlib.abc
import importlib.machinery
import json
import math
import subprocess
import sys
import types
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from gmn_plugins.models import convdraw  # noqa: E402
from gmn_plugins.models.gmn import GMN, ModalityInfo, Points  # noqa: E402
from gmn_plugins.models.presets import Preset  # noqa: E402

# Their constructor arguments (nc_enc = decoder width, nc_lstm = hidden, nz = z channels, num_steps = T); the
# representation (256), haptic MLP width (512) and kernel (5) are fixed in their classes.
SIZES = {"image": (3, 16, 16), "haptic": 6, "nc_enc": 4, "nc_lstm": 8, "nc_context": 256, "nz": 2, "num_steps": 3}
GRID = (SIZES["image"][1] // 4, SIZES["image"][2] // 4)
# Per scene: (image context, haptic context, image targets, haptic targets) points.
EPISODES = [(2, 1, 2, 1), (1, 0, 1, 2)]
SIGMA = 0.7  # the likelihood's fixed standard deviation (their std, our sigma)
FILL_SEED, INPUT_SEED, NOISE_SEED, SUMMARY_SEED = 27, 2019, 4, 5
WHOLE = 512  # quantities with at most this many elements are stored whole, larger ones summarised
INFERENCES = ("baseline", "apoe")
AUTHORS_CLASS = {"baseline": "models.multimodal_cgqn", "apoe": "models.conv_amortized_poe_multimodal_cgqn"}
# Recorded per model: r, t (M, B, 256, h, w) context and target representations (reference §2.3); per DRAW step
# (T, B, z, h, w) the combined posterior and prior mean and log-variance; for APoE also each expert's, (T, M * B, z,
# h, w) in expert-major rows; the render means at the targets (N_m, *shape_m); the loss terms (scalars, nats).
STEP = ("posterior_mean", "posterior_logvar", "prior_mean", "prior_logvar")
EXPERT = tuple(f"expert_{name}" for name in STEP)
QUANTITIES = ("r", "t", *STEP, *EXPERT, "render_image", "render_haptic", "nll_quadratic", "kl", "loss_quadratic")


# ----------------------------------------------------------------------------------------------- the recipe


def fill_values(shapes, seed=FILL_SEED):
    """The filled tensors (float32), in the order of ``shapes`` (their named_parameters order): U(-b, b) from one
    generator, b = 1 / sqrt(prod(shape[1:])) for tensors of 2 or more dimensions, 0.1 for 1-D ones."""
    generator = torch.Generator().manual_seed(seed)
    values = []
    for shape in shapes:
        bound = 1 / math.sqrt(math.prod(shape[1:])) if len(shape) >= 2 else 0.1
        values.append((torch.rand(shape, generator=generator) * 2 - 1) * bound)
    return values


def make_inputs(seed=INPUT_SEED):
    """Per scene, per modality ("image", "haptic"): (context senses, context queries, target senses, target
    queries), float32; senses (n, 3, 16, 16) ~ U(0, 1) or (n, 6) ~ U(-1, 1), queries (n, 5) raw (x, y, z ~ U(-1, 1),
    two angles ~ U(-pi, pi)); n from ``EPISODES`` (may be 0). Drawn in this order from one generator."""
    generator = torch.Generator().manual_seed(seed)

    def senses(n, name):
        if name == "image":
            return torch.rand((n, *SIZES["image"]), generator=generator)
        return torch.rand((n, SIZES["haptic"]), generator=generator) * 2 - 1

    def queries(n):
        u = torch.rand((n, 5), generator=generator)
        return torch.cat([u[:, :3] * 2 - 1, (u[:, 3:] * 2 - 1) * math.pi], 1)

    scenes = []
    for image_c, haptic_c, image_t, haptic_t in EPISODES:
        scene = {}
        for name, n_c, n_t in (("image", image_c, image_t), ("haptic", haptic_c, haptic_t)):
            scene[name] = (senses(n_c, name), queries(n_c), senses(n_t, name), queries(n_t))
        scenes.append(scene)
    return scenes


def make_noise(seed=NOISE_SEED):
    """eps (T, B, z, h, w) ~ N(0, 1), float32: step t's sample is mu + exp(logvar / 2) * eps[t]."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn((SIZES["num_steps"], len(EPISODES), SIZES["nz"], *GRID), generator=generator)


@contextlib.contextmanager
def feed(owner, name, noise):
    """Replace ``owner.name`` (a sample function (mu, logvar) -> z, or a method (self, mu, logvar) -> z) by one that
    returns mu + exp(logvar / 2) * noise[t] at its t-th call; raises if it is called more than T times."""
    original, calls = getattr(owner, name), []

    def sample(*args):
        mu, logvar = args[-2:]
        if len(calls) >= noise.shape[0]:
            raise RuntimeError(f"more than {noise.shape[0]} noise draws")
        calls.append(None)
        return mu + (0.5 * logvar).exp() * noise[len(calls) - 1].to(mu.dtype)

    setattr(owner, name, sample)
    try:
        yield calls
    finally:
        setattr(owner, name, original)


def summarise(x, seed=SUMMARY_SEED):
    """A tensor as the golden stores it: {"shape", "rms"} and "values" (flattened, whole) for at most ``WHOLE``
    elements, else their "mean", 16 "sample" elements at "index" (a seeded permutation's first 16) and 4 "projection"s
    x . v_k / sqrt(n) on v_k ~ N(0, 1) (seeded). Scalars: {"shape": [], "rms", "values": [x]}."""
    shape, x = list(x.shape), x.detach().double().flatten()
    out = {"shape": shape, "rms": x.pow(2).mean().sqrt().item()}
    if x.numel() <= WHOLE:
        return {**out, "values": x.tolist()}
    generator = torch.Generator().manual_seed(seed)
    index = torch.randperm(x.numel(), generator=generator)[:16]
    vectors = torch.randn((4, x.numel()), generator=generator, dtype=torch.float64)
    return {**out, "mean": x.mean().item(), "index": index.tolist(), "sample": x[index].tolist(),
            "projection": (vectors @ x / math.sqrt(x.numel())).tolist()}


def summary_vector(summary):
    """The numbers of a ``summarise`` result that are compared, as one float64 tensor (rms scale)."""
    if "values" in summary:
        return torch.tensor(summary["values"], dtype=torch.float64)
    return torch.tensor([summary["mean"], *summary["sample"],
                         *summary["projection"]], dtype=torch.float64)


def compare(ours, reference):
    """Max |ours - reference| over a quantity's stored numbers, relative to the reference's rms (for a scalar,
    its magnitude). ours, reference: ``summarise`` results of the same quantity (ours summarised at the reference's
    sample indices, i.e. with the same seed)."""
    a, b = summary_vector(ours), summary_vector(reference)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    scale = max(reference["rms"], 1e-30)
    return ((a - b).abs().max() / scale).item()


# ----------------------------------------------------------------------------------------------- our model


def our_modalities():
    """The two modalities at ``SIZES``: an image (3, 16, 16) and a haptic vector (6,), poses as queries."""
    return [ModalityInfo("image", "image", SIZES["image"]), ModalityInfo("haptic", "vector", (SIZES["haptic"],))]


def our_preset():
    """``SIZES`` as our Preset: r 256, hidden nc_lstm, z nz, T num_steps, kernel 5, decoder nc_enc, vector 512."""
    return Preset(SIZES["nc_context"], SIZES["nc_lstm"], SIZES["nz"], SIZES["num_steps"], 5, SIZES["nc_enc"], 512)


def our_model(inference, hoisted=True):
    """Our GMN for their model ``inference`` ("baseline" or "apoe"), experts "all", sigma SIGMA."""
    return GMN(our_modalities(), our_preset(), inference=inference, experts="all", sigma=SIGMA, hoisted=hoisted)


def _split_lstm(weight, x_columns):
    """Their gate conv weight (4H, in + H, k, k) -> (conv_x weight, conv_h weight); x_columns: the slice of their
    input columns that is our constant x (the rest, in their order, is conv_h's [v, h])."""
    keep = torch.ones(weight.shape[1], dtype=torch.bool)
    keep[x_columns] = False
    return weight[:, x_columns], weight[:, keep]


def load_authors(model, inference, named):
    """Copy their parameters (``named``: [(their name, tensor)] in any order) into our ``model`` by the module
    docstring's mapping; checks that every parameter of ours gets exactly one value of the right shape."""
    r, z, steps, m = SIZES["nc_context"], SIZES["nz"], SIZES["num_steps"], 2
    e = m if inference == "apoe" else 0  # the one-hot modality channels of APoE's inputs
    named = {k: (v.squeeze(2) if v.dim() == 5 else v) for k, v in named.items()}  # Conv3d (1, k, k) -> Conv2d
    ours = {}

    def lstm(theirs, mine, x_columns):
        ours[f"{mine}.conv_x.weight"], ours[f"{mine}.conv_h.weight"] = _split_lstm(named[f"{theirs}.weight"], x_columns)
        ours[f"{mine}.conv_x.bias"] = named[f"{theirs}.bias"]

    def copy(theirs, mine, linear=False):  # linear: their 1 x 1 conv (out, in, 1, 1) -> our Linear (out, in)
        weight = named[f"{theirs}.weight"]
        ours[f"{mine}.weight"] = weight.flatten(1) if linear else weight
        ours[f"{mine}.bias"] = named[f"{theirs}.bias"]

    cell = "inference.draw.cells.0"
    lstm("convdraw.rnn_q.rnns.0.rnn.gates", f"{cell}.q_lstm", slice(0, 2 * r + e))
    lstm("convdraw.rnn_p.rnns.0.rnn_p.gates", f"{cell}.p_lstm", slice(z, z + r + e))
    for side, theirs in (("q", "convdraw.rnn_q.rnns.0.reparam"), ("p", "convdraw.rnn_p.rnns.0.reparam_p")):
        copy(f"{theirs}.mean_fn", f"{cell}.{side}_head.mean")
        copy(f"{theirs}.logvar_fn", f"{cell}.{side}_head.logvar")
    for i in range(m):
        lstm(f"convdraw.renderers.{i}.rnn_p.gates", f"renderers.{i}.lstm", slice(0, steps * z + 7))
        ours[f"encoders.{i}.rho"] = named[f"repnets.{i}.init_representation"].reshape(r, *GRID)
    for theirs, mine in (("decode", "0"), ("convt", "2"), ("convt2", "4")):
        copy(f"convdraw.renderers.0.decoder.{theirs}", f"renderers.0.decoder.{mine}")
    for theirs, mine in (("fc1", "1"), ("fc2", "3"), ("fc3", "5")):
        copy(f"convdraw.renderers.1.decoder.{theirs}", f"renderers.1.decoder.{mine}")
    tower = {"img_enc.0": "conv1", "img_enc.2.main": "res1.main", "img_enc.2.skip": "res1.skip", "img_enc.4": "conv2",
             "enc.0.main": "res2.main", "enc.0.skip": "res2.skip", "enc.2": "conv3", "enc.4": "conv4"}
    for theirs, mine in tower.items():
        copy(f"repnets.0.repnet.{theirs}", f"encoders.0.{mine}")
    mlp = {"ppc_enc.0": "fc1", "ppc_enc.2.main": "res1.main", "ppc_enc.2.skip": "res1.skip", "ppc_enc.4": "fc2",
           "enc.0.main": "res2.main", "enc.0.skip": "res2.skip", "enc.2": "fc3", "enc.4": "out"}
    for theirs, mine in mlp.items():
        copy(f"repnets.1.repnet.{theirs}", f"encoders.1.{mine}", linear=True)

    params = dict(model.named_parameters())
    if set(ours) != set(params):
        raise ValueError(f"mapping mismatch: unmapped {sorted(set(params) - set(ours))}, unknown "
                         f"{sorted(set(ours) - set(params))}")
    with torch.no_grad():
        for name, value in ours.items():
            if params[name].shape != value.shape:
                raise ValueError(f"{name}: ours {tuple(params[name].shape)}, theirs {tuple(value.shape)}")
            params[name].copy_(value)


def our_points(scenes, dtype):
    """``make_inputs``' scenes as our (context, target) lists of Points, scene-major (their target order)."""
    context, target = [], []
    for name in ("image", "haptic"):
        for side, out in ((0, context), (2, target)):
            senses = torch.cat([s[name][side] for s in scenes]).to(dtype)
            queries = torch.cat([s[name][side + 1] for s in scenes]).to(dtype)
            scene = torch.cat([torch.full((s[name][side].shape[0],), b, dtype=torch.int64)
                               for b, s in enumerate(scenes)])
            out.append(Points(senses, queries, scene))
    return context, target


def _per_step(record: dict, inference: str) -> dict:
    """The recorded DRAW steps stacked over t: ``STEP``'s combined Gaussians, and for APoE ``EXPERT``'s per-expert
    ones (posterior "q", prior "p"; mean, log-variance)."""
    result = {name: torch.stack([step[i] for step in record["steps"]]) for i, name in enumerate(STEP)}
    if inference == "apoe":
        for i, name in enumerate(EXPERT):
            side, part = ("q", "p")[i // 2], i % 2
            result[name] = torch.stack([heads[part] for heads in record["experts"][side]])
    return result


def run_ours(model, inference, scenes, noise):
    """Our forward on ``scenes`` with ``noise`` fed; returns {quantity: tensor} (see ``QUANTITIES``)."""
    dtype = next(model.parameters()).dtype
    record = {"steps": [], "experts": {"q": [], "p": []}, "renders": {}}
    inner = model.inference.posterior

    def posterior(r, t, in_context, in_target):
        record["r"], record["t"] = r, t
        return inner(r, t, in_context, in_target)

    kl_inner = convdraw.balanced_kl

    def balanced_kl(mu_q, logvar_q, mu_p, logvar_p, balance=0.5):
        record["steps"].append((mu_q, logvar_q, mu_p, logvar_p))
        return kl_inner(mu_q, logvar_q, mu_p, logvar_p, balance)

    cell = model.inference.draw.cells[0]
    hooks = [cell.q_head.register_forward_hook(lambda mod, args, out: record["experts"]["q"].append(out)),
             cell.p_head.register_forward_hook(lambda mod, args, out: record["experts"]["p"].append(out))]
    for name, renderer in zip(("image", "haptic"), model.renderers):
        hooks.append(renderer.register_forward_hook(
            lambda mod, args, out, name=name: record["renders"].__setitem__(name, out)))
    model.inference.posterior = posterior
    convdraw.balanced_kl = balanced_kl
    context, target = our_points(scenes, dtype)
    try:
        with feed(convdraw, "sample_gaussian", noise), torch.no_grad():
            out = model(context, target, len(scenes))
    finally:
        del model.inference.posterior
        convdraw.balanced_kl = kl_inner
        for hook in hooks:
            hook.remove()
    elements = out["elements"].sum()
    constant = elements * (math.log(SIGMA) + 0.5 * math.log(2 * math.pi))
    result = {"r": record["r"], "t": record["t"],
              "render_image": record["renders"]["image"], "render_haptic": record["renders"]["haptic"],
              "nll_quadratic": out["nll"] - constant, "kl": out["kl"],
              "loss_quadratic": out["loss"] * len(scenes) - constant}
    return result | _per_step(record, inference)


# ----------------------------------------------------------------------------------------------- their model


class _Stub(types.ModuleType):
    """An inert module: every attribute, call, item and sum is another stub (their plotting/data imports)."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Stub(name)

    def __call__(self, *args, **kwargs):
        return _Stub("call")

    def __getitem__(self, key):
        return _Stub("item")

    def __add__(self, other):
        return _Stub("sum")

    __radd__ = __add__

    def __iter__(self):
        return iter(())


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Last on sys.meta_path while their code is imported: any module nothing else finds becomes a ``_Stub``."""

    def __init__(self):
        self.stubbed = []

    def find_spec(self, name, path, target=None):
        self.stubbed.append(name)
        return importlib.machinery.ModuleSpec(name, self, is_package=True)

    def create_module(self, spec):
        return _Stub(spec.name)

    def exec_module(self, module):
        module.__path__ = []


def import_authors(path):
    """Their two CGQN_v4 classes {"baseline", "apoe"}, their reparam module, the modules that hold their loss
    functions, and the list of stubbed module names, imported from the checkout ``path``."""
    finder = _StubFinder()
    sys.path.insert(0, str(path))
    sys.meta_path.append(finder)
    try:
        modules = {k: importlib.import_module(v) for k, v in AUTHORS_CLASS.items()}
        reparam = importlib.import_module("models.reparam")
    finally:
        sys.meta_path.remove(finder)
        sys.path.remove(str(path))
    return modules, reparam, sorted({n.split(".")[0] for n in finder.stubbed})


def their_model(module):
    """Their CGQN_v4 at ``SIZES``."""
    dims = [(*SIZES["image"], 7, "image"), (SIZES["haptic"], 1, 1, 7, "haptic")]
    return module.CGQN_v4(dims, nc_enc=SIZES["nc_enc"], nc_lstm=SIZES["nc_lstm"], nc_context=SIZES["nc_context"],
                          nz=SIZES["nz"], num_steps=SIZES["num_steps"])


def run_theirs(model, module, reparam, inference, scenes, noise):
    """Their forward on ``scenes`` with ``noise`` fed; returns {quantity: tensor} (see ``QUANTITIES``)."""
    dtype = next(model.parameters()).dtype
    record = {"reps": {0: [], 1: []}, "steps": [], "experts": {"q": [], "p": []}}
    kl_inner = module.loss_kld_gaussian_vs_gaussian

    def kl(mu_q, logvar_q, mu_p, logvar_p, do_sum=True):
        record["steps"].append((mu_q, logvar_q, mu_p, logvar_p))
        return kl_inner(mu_q, logvar_q, mu_p, logvar_p, do_sum=do_sum)

    def sums(out):  # their repnet output: per scene (1 + n, ...) with rho first -> (B, 256, h, w)
        return torch.stack([rep.sum(0) for rep in out[0]]).reshape(-1, SIZES["nc_context"], *GRID)

    hooks = [model.repnets[i].register_forward_hook(
        lambda mod, args, out, i=i: record["reps"][i].append(sums(out))) for i in range(2)]
    if inference == "apoe":  # their heads give (B, z, M, h, w); ours (M * B, z, h, w), expert-major
        def rows(out):
            return tuple(x.permute(2, 0, 1, 3, 4).reshape(-1, *x.shape[1:2], *x.shape[3:]) for x in out)

        hooks += [model.convdraw.rnn_q.rnns[0].reparam.register_forward_hook(
                      lambda mod, args, out: record["experts"]["q"].append(rows(out))),
                  model.convdraw.rnn_p.rnns[0].reparam_p.register_forward_hook(
                      lambda mod, args, out: record["experts"]["p"].append(rows(out)))]
    contexts = [tuple(x.to(dtype) if x.shape[0] else None for name in ("image", "haptic") for x in s[name][:2])
                for s in scenes]
    targets = [tuple(x.to(dtype) if x.shape[0] else None for name in ("image", "haptic") for x in s[name][2:])
               for s in scenes]
    module.loss_kld_gaussian_vs_gaussian = kl
    try:
        with feed(reparam.NormalDistribution, "sample_gaussian", noise), torch.no_grad():
            means, _, loss, info = model(contexts, targets, std=SIGMA)
    finally:
        module.loss_kld_gaussian_vs_gaussian = kl_inner
        for hook in hooks:
            hook.remove()
    with_targets = sum(any(s[name][2].shape[0] for s in scenes) for name in ("image", "haptic"))
    constant = with_targets * 0.5 * math.log(2 * math.pi)
    result = {"r": torch.stack([record["reps"][i][0] for i in range(2)]),
              "t": torch.stack([record["reps"][i][1] for i in range(2)]),
              "render_image": means[0], "render_haptic": means[1],
              "nll_quadratic": info["likelihood"] - constant, "kl": info["kl"], "loss_quadratic": loss - constant}
    return result | _per_step(record, inference)


# ----------------------------------------------------------------------------------------------- main


def _rounded(value):
    """Floats to 10 significant digits (float64 to about 1e-10 relative, 1e5 times finer than the tolerance)."""
    if isinstance(value, float):
        return float(f"{value:.10g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(v) for v in value]
    return value



def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--authors", type=Path, required=True,
                        help="a checkout of lim0606/pytorch-generative-multisensory-network")
    parser.add_argument("--out", type=Path, default=REPO / "tests" / "fixtures" / "authors_golden.json")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="max difference / rms of ours in float32")
    args = parser.parse_args(argv)

    modules, reparam, stubbed = import_authors(args.authors.resolve())
    commit = subprocess.run(["git", "-C", str(args.authors), "rev-parse", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or None  # fmt: skip
    scenes, noise = make_inputs(), make_noise()
    golden = {
        "about": "benchmarks/authors_golden.py: the authors' baseline and conv-APoE at SIZES, every parameter "
                 "filled by fill_values(seed) in the order of 'parameters', inputs make_inputs(input_seed), noise "
                 "make_noise(noise_seed); reference = their forward in float64. tests/test_authors_golden.py.",
        "authors_commit": commit, "torch": torch.__version__, "stubbed_imports": stubbed,
        "sizes": SIZES, "episodes": EPISODES, "sigma": SIGMA, "fill_seed": FILL_SEED, "input_seed": INPUT_SEED,
        "noise_seed": NOISE_SEED, "summary_seed": SUMMARY_SEED, "tolerance": args.tolerance,
        "parameters": {}, "reference": {}, "measured": {},
    }
    for inference in INFERENCES:
        theirs = their_model(modules[inference])
        names, params = zip(*theirs.named_parameters())
        values = fill_values([tuple(p.shape) for p in params])
        with torch.no_grad():
            for p, v in zip(params, values):
                p.copy_(v)
        golden["parameters"][inference] = [[n, list(v.shape), v.double().sum().item()] for n, v in zip(names, values)]
        reference = run_theirs(theirs.double(), modules[inference], reparam, inference, scenes, noise)
        golden["reference"][inference] = ref = {k: summarise(v) for k, v in reference.items()}
        golden["measured"][inference] = measured = {}
        # ours in float64 for the baseline only: our product of experts and KL compute in float32 by design
        for dtype in (torch.float32, torch.float64) if inference == "baseline" else (torch.float32,):
            default = torch.get_default_dtype()
            torch.set_default_dtype(dtype)  # our loss sums start from the default dtype's zeros
            try:
                ours = our_model(inference).to(dtype)
                load_authors(ours, inference, {n: v.to(dtype) for n, v in zip(names, values)})
                result = run_ours(ours, inference, scenes, noise)
            finally:
                torch.set_default_dtype(default)
            diffs = {k: compare(summarise(result[k]), ref[k]) for k in ref}
            measured[str(dtype).removeprefix("torch.")] = diffs
            worst = max(diffs, key=diffs.get)
            print(f"{inference:8s} ours {dtype}: max |ours - theirs| / rms = {diffs[worst]:.2e} ({worst})")
            for k, d in diffs.items():
                print(f"    {k:24s} {d:.2e}")
            if dtype == torch.float32 and diffs[worst] > args.tolerance:
                raise SystemExit(f"ours differs from theirs beyond {args.tolerance}: {worst} {diffs[worst]:.2e}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(_rounded(golden), separators=(",", ":")) + "\n")
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes); stubbed imports: {', '.join(stubbed)}")


if __name__ == "__main__":
    main()
