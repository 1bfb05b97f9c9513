"""Experiment and modality specs: attrs classes read from TOML with a strict cattrs converter.

Every problem with a spec is reported as one line ``FILE: dotted.field: what is wrong`` (``SpecError``); the CLIs
print it and exit with code 2. Values are never coerced: TOML already types them, so ``"4"`` for an int or
``"false"`` for a bool is an error, not a silent conversion (the only widening allowed is int -> float). Floats must
be finite, lists must be lists (``modalities = "rgb"`` is refused, not read as its characters), and sizes have the
upper bounds ``MAX_*`` below, so an absurd spec is refused at load time instead of exhausting the machine later.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args, get_origin

import attrs
import cattrs
from cattrs.cols import list_structure_factory
from cattrs.errors import ForbiddenExtraKeysError
from cattrs.gen import make_dict_structure_fn, override

from . import options


class SpecError(Exception):
    """A spec problem; ``str(err)`` is one or more lines ``FILE: dotted.field: what is wrong``."""


# Upper bounds of a spec's sizes: far above a paper-sized run (1M training scenes, 15 views, batch 12, 4-6 blocks),
# far below what exhausts a machine. A value past one is refused by ``load_spec``.
SEED_LIMIT = 2**32  # seed in [0, 2**32): a range every seeded library takes (SeedSequence: >= 0, torch: < 2**64)
# The class labels enumerate every self-avoiding walk of blocks-1 steps in each generating process (shapes.walk_index),
# ~4.7x more per block: 8 blocks = 81,390 classes, 0.35 s and +13 MB per process; 9: 1.6 s, +80 MB; 10: 8 s,
# +345 MB; 12: minutes and GBs. The paper uses 4-6.
MAX_BLOCKS = 8
MAX_VIEWS = 1024  # views per scene, each rendered and grasped (paper: 15); also bounds train.max_targets
MAX_SCENES = 10_000_000  # scenes of a split, and validation scenes (paper: 1M train; generation lists all shards)
MAX_SHARD_SIZE = 10_000  # scenes per shard, held in memory while written (~2 GB at 15 views of 64x64 RGB + haptics)
MAX_BATCH_SCENES = 1024  # scenes per training step (paper: 12)
MAX_LR = 1.0  # Adam moves every parameter by about lr per step: past 1 a run diverges at once (specs: 1e-4, 1e-3)
MAX_PROCESSES = 1024  # data.workers, data.loader_workers and train.threads
MAX_LATENT_GRID = 256  # model.latent_grid h and w (images: H/4; v4 at 64x64: 16)
MAX_DECODER_WIDTH = 1024  # model.decoder_width (v4: 32; its middle layer has twice, at 32x32 for a 64x64 image)
MAX_STEPS = 100_000_000  # train.steps and every step count or period (paper: ~1M steps; 1e8 is years on a GPU)
MAX_CHROMA_WEIGHT = 1e4  # model.chroma_weight: the colour errors' std sigma / 100 at most
MAX_SIGMA = 100.0  # model.sigma, train.sigma_start: inputs lie in [-3, 3]; a std 30x wider learns nothing (paper: 1)
MAX_BETA = 1000.0  # train.beta, train.beta_start: the KL's weight (paper: 0.1 -> 1; beta-VAEs use up to ~250)
MAX_SENSE_VALUES = 1 << 22  # values of one sense of a modality (a 1024x1024 RGB image: 3,145,728; paper: 64x64x3)
DEVICES = re.compile(r"auto|cpu|mps|cuda(:[0-9]+)?")  # train.device and gmn-eval's --device
DEVICES_TEXT = "auto, cpu, cuda, cuda:N or mps"


# ----------------------------------------------------------------------------------------------------------------
# named options

# Each named option's allowed values are one tuple of ``gmn_plugins.core.options`` (torch- and mujoco-free, below
# every layer that implements an option). A spec class annotates the option with the name on the left, which this
# module defines as ``Literal[values]`` (in their defined order); the implementing code validates against the same
# tuple object (tests/test_options.py).
OPTIONS = {
    "Physics": options.PHYSICS,  # data.physics: mese/hand.py (mese.physics.PHYSICS_PRESETS's keys)
    "Saturation": options.SATURATIONS,  # data.saturation: mese/scene.py (SATURATION's keys)
    "Inference": options.INFERENCES,  # model.inference: models/gmn.py
    "PresetName": options.PRESET_NAMES,  # model.preset: models/presets.py (PRESETS's keys)
    "Experts": options.EXPERTS,  # model.experts: models/inference.py
    "FirstStepPrior": options.FIRST_STEP_PRIORS,  # model.first_step_prior: models/convdraw.py
    "VectorProjection": options.VECTOR_PROJECTIONS,  # model.vector_projection: the vector family
    "Init": options.INITS,  # model.init: models/gmn.py
    "Aggregate": options.AGGREGATES,  # model.aggregate: models/encoders.py
    "TargetEncoder": options.TARGET_ENCODERS,  # model.target_encoder: models/gmn.py
    "RendererContext": options.RENDERER_CONTEXTS,  # model.renderer_context: models/gmn.py
    "ClipMode": options.CLIP_MODES,  # train.clip_mode: training/trainer.py
    "MissingMode": options.MISSING_MODES,  # train.missing_mode: data/episodes.py
    "ContextMask": options.CONTEXT_MASKS,  # train.context_mask: data/loader.py
    "LossReduction": options.LOSS_REDUCTIONS,  # train.loss_reduction: training/trainer.py
    "Precision": options.PRECISIONS,  # train.precision: training/trainer.py (autocast)
    "MemoryFormat": options.MEMORY_FORMATS,  # train.memory_format: training/trainer.py
    "Compile": options.COMPILES,  # train.compile: training/trainer.py
    "Adam": options.ADAMS,  # train.adam: training/trainer.py
    "Malloc": options.MALLOCS,  # train.malloc: runtime/allocator.py
    "WristLock": options.WRIST_LOCKS,  # data.hand.wrist_lock: mese/hand.py (mpl_file_xml)
}
if TYPE_CHECKING:  # type checkers see str; at run time each is Literal[its values]
    Physics = Saturation = Inference = PresetName = Experts = FirstStepPrior = VectorProjection = ClipMode = str
    WristLock = Init = Aggregate = TargetEncoder = RendererContext = str
    MissingMode = Precision = MemoryFormat = Compile = Adam = Malloc = ContextMask = LossReduction = str
else:
    globals().update({name: Literal[values] for name, values in OPTIONS.items()})


# ----------------------------------------------------------------------------------------------------------------
# experiment specs (specs/*.toml)


@attrs.frozen
class HandFileSpec:
    """A hand read from an MJCF file (``hand = {mjcf = "PATH"}``), e.g. the real MPL ``mpl_right.xml``; PATH is
    relative to the working directory. Its sensordata must be the 132-value MPL layout (reference §3.4).
    ``hull_vertices``: 0 (default) collides with each mesh's full convex hull; N >= 4 caps the hulls at N vertices
    when the file is loaded (``mese.hand.mpl_file_xml``): faster; 128 passes the calibration against the full hulls
    (the measurements are in ``mese/physics.py``). ``wrist_lock``: ``contact`` (default; MuJoCo 1.50's lock, as
    the authors' data) or ``equality`` (the built-in hand's joint equality, MuJoCo's multiccd off: faster, and
    passes the calibration against ``contact``; ``mese/physics.py``)."""

    mjcf: str
    hull_vertices: int = 0
    wrist_lock: WristLock = "contact"


@attrs.frozen
class DataSpec:
    """MESE dataset of a run: generated into ``dir`` if missing (reference: mese_environment_reference.md).

    ``hand``: ``"builtin"`` (the project's own MPL-kinematics hand) or ``{mjcf = "PATH"}``. ``physics``: grasp
    simulation preset (``faithful`` = the authors' 0.002 s x 20, ``fast`` = 0.004 s x 10). ``saturation``: block
    colour saturation range, ``code`` = U(0.75, 1) as the authors' code (default), ``paper`` = U(0, 0.75) as the
    paper's text (reference §1, §5). Held-out 4/6-block sets are separate datasets with ``blocks = 4`` / ``6``.
    ``workers``: processes generating the data. ``loader_workers``: ``DataLoader`` processes preparing training
    batches ahead of the step (0: on the training thread); any value gives the same batches, since batch k is a
    pure function of (seed, k) (``data.loader``). Training reads the packed, memory-mapped copy of the data
    (``data.format.open_split``), so memory does not grow with ``train_scenes``.
    """

    dir: str = "data/default"
    train_scenes: int = 256
    val_scenes: int = 16
    test_scenes: int = 0  # a test split for reports (tune on val, report on test); 0 = none
    blocks: int = 5
    views: int = 15
    shard_size: int = 32
    hand: str | HandFileSpec = "builtin"
    physics: Physics = "fast"
    saturation: Saturation = "code"
    workers: int = 0  # 0 = one per CPU core
    loader_workers: int = 0  # DataLoader processes preparing training batches; 0 = on the training thread


@attrs.frozen
class ModelSpec:
    """Model choices (gmn_model_reference.md §3–4, §8.2), each a named option; paper by default where it speaks.

    ``inference``: ``apoe`` (paper), ``poe``, ``baseline`` (C-GQN). ``preset``: ``v4`` (the authors' sizes),
    ``small`` (CPU) or ``tiny`` (tests and smoke runs). ``experts``: ``present`` (paper Eq. 2/5 with a N(0, I)
    expert) or ``all`` (code).
    ``sigma``: fixed likelihood std (1 in the paper's runs). ``first_step_prior``: ``bias`` (code; the paper is
    silent) or ``context``. ``stochastic_representation``: r_m as a latent with its own KL (paper Eq. 3).
    ``vector_projection``: ``dense`` (v4's 512 -> r·h·w layer) or ``light`` (learned spatial broadcast).
    ``latent_grid``: [h, w] of z; unset: the largest grid a modality's family asks for (the largest image / 4),
    else [16, 16]. Images of other sizes adapt to it (their encoders and renderers resize).
    ``init``: ``default`` (torch's, as the authors' code draws it: each ConvLSTM's gate convolution as one
    ``nn.Conv2d``) or ``kaiming`` (He normal, zero biases, for the encoders' layers; ``models.gmn.init_relu_layers``;
    the ConvLSTMs keep the default). It sets the first step's weights only: a resumed run loads its
    checkpoint's. ``aggregate``: ``sum`` (the paper's r_m = rho_m + sum of f_m over the scene's points) or ``mean``
    (beyond the paper: rho_m + their mean, in range whatever the number of views; issue 28). ``target_encoder``:
    ``shared`` (the paper's: the posterior reads the targets through the same encoder as the context) or
    ``shallow`` (each family's shallow target encoder: a short path from target pixels to the posterior, as GQN's
    inference core; beyond the paper, issue 28). ``decoder_width``: the image decoder's width W (``Preset``'s
    ``decoder_width``; its middle layer has 2W); unset: the preset's (v4 32, as the authors' nc_enc; small 16;
    tiny 8). Beyond the paper (issue 28): on the colour probe a wider one broke the plateau where tiny's 8 renders
    colour along one chroma axis; on MESE it did not (docs/fast-recipe.md). ``chroma_weight``: w, the weight of
    the colour errors in the image family's likelihood (``ImageFamily.nll``): 1 is the paper's Gaussian; w != 1
    gives the two chroma coordinates of an orthonormal colour basis std sigma / sqrt w, luminance sigma (3-channel
    images only; beyond the paper, issue 28).
    """

    inference: Inference = "apoe"
    preset: PresetName = "small"
    experts: Experts = "present"
    sigma: float = 1.0
    first_step_prior: FirstStepPrior = "bias"
    stochastic_representation: bool = False
    vector_projection: VectorProjection = "dense"
    latent_grid: list[int] | None = None
    init: Init = "default"
    aggregate: Aggregate = "sum"
    target_encoder: TargetEncoder = "shared"
    renderer_context: RendererContext = "none"
    decoder_width: int | None = None
    chroma_weight: float = 1.0


@attrs.frozen
class TrainSpec:
    """Optimisation (paper appendix; code differences in gmn_model_reference.md §8.2).

    ``clip_mode``: ``value`` clips every gradient element to ±clip (paper), ``norm`` clips the global L2 norm (code).
    ``precision``: ``fp32`` (default) or ``bf16``: the forward pass under ``torch.autocast`` to bfloat16 (convolutions
    and matrix products), with float32 weights, optimizer, likelihood and KL; validation and evaluation stay fp32.
    ``memory_format``: ``contiguous`` (default) or ``channels_last``: the model's 4-d weights in
    ``torch.channels_last`` layout, so every convolution runs and returns channels-last. The same values either way;
    on this project's 2-core CPU channels-last was slower (issue 15: 3.16 vs 3.02 s per v4 step), on GPUs with bf16
    it is usually faster. ``compile``: ``off`` (default) or ``cells``: every ConvLSTM's gate update (the
    element-wise sigmoid/tanh arithmetic of reference §3.1) through ``torch.compile``, fused into one kernel; the
    first steps pay the compilation (about 30 s on this CPU, a C++ compiler needed). On this CPU it was slower (2.98
    vs 2.56 s per v4 step); ``torch.compile`` of the whole forward pass does not trace (the attrs ``Latents`` and one
    graph per scene grouping).
    ``adam``: torch.optim.Adam's implementation, ``fused`` (default: one kernel per parameter group, no
    temporaries), ``foreach`` or ``for-loop`` (torch's CPU default); the same update up to rounding, and by
    measurement the fastest here (issue 15: 3.70 -> 3.01 s per v4 |M| = 8 APoE step). ``malloc``: ``retain``
    (default) keeps the memory torch frees in glibc's heap for the next step instead of unmapping it
    (``gmn_plugins.runtime.allocator``; 3.70 -> 2.90 s, the same peak memory; at v4's training batch +10 % peak memory),
    ``default`` leaves the C library alone.
    β is annealed linearly from ``beta_start`` to ``beta`` over ``beta_anneal_steps`` steps (paper: 0.1 -> 1 over the
    first epoch; code: constant 1, i.e. beta_start = 1). ``add_opposite`` also trains on every episode with context and
    target swapped (the authors' code; the paper is silent), doubling the episodes per step.
    Schedules (issue 11's quickstart tuning; all step-indexed, so a run extended by a larger ``steps`` resumes on the
    same curve): the learning rate goes linearly from ``lr`` to ``lr_end`` over ``lr_anneal_steps`` steps (GQN
    anneals 5e-4 -> 5e-5; unset ``lr_end`` = constant ``lr``), after a linear warm-up over ``lr_warmup_steps``
    steps (0 = none, the paper; beyond the paper, issue 28); the likelihood std goes linearly from ``sigma_start``
    to ``model.sigma`` over ``sigma_anneal_steps`` steps (GQN anneals 2.0 -> 0.7; unset = constant ``model.sigma``).
    Validation and evaluation always use ``model.sigma``. ``kl_balance`` (KL balancing, DreamerV2): the KL keeps its
    value, but its gradient reaches the prior ``2 * kl_balance`` times and the posterior ``2 * (1 - kl_balance)``
    times as strongly; 0.5 (default) is the ELBO's gradient, 0.8 moves the prior towards the posterior faster (on
    the quickstart's data the prior's samples lag far behind the posterior's, docs/reproducing-the-paper.md).
    ``prior_nll_weight`` w (beyond the paper, issue 28; 0 = the paper's ELBO): each step also renders the targets
    from one z ~ P(z | C) per scene and adds w times their NLL to the loss (the hybrid CVAE + GSNN objective of Sohn
    et al. 2015): the prior and the renderers are trained on what generation renders, not only through the KL.
    One more prior pass and render per step; the logged ``nll_prior_per_dim`` is that NLL per target dimension.
    ``prior_nll_start``: the step from which the term is on (0 before it), e.g. once the posterior has learnt
    colour; step-indexed, so a run's first ``prior_nll_start`` steps are those of the same run without it.
    ``missing_sizes = [A, B]`` (paper §4 "Missing-modality Problem", Fig. 5; reference §6.5): every training scene
    gets one fixed combination of A..B modalities (P(combination) ∝ 1/size, as the authors' code draws it); empty =
    all modalities always. Every ``eval_every`` steps the negative ELBO of ``eval_scenes`` validation scenes is
    logged to ``val.jsonl``: ``val_missing`` (the training rule's combinations; all modalities without
    ``missing_sizes``) and ``val_full`` (any combination), the curves of the paper's Fig. 5. ``missing_mode``: ``paper`` removes the other modalities from the scene (context and
    target); ``code`` only keeps them out of the context, all their views becoming targets (the authors' code).
    ``context_mask``: ``none`` (default; the paper's "0-15 contexts each": every shown modality draws its context
    size) or ``code`` (the authors' code, reference §5.3 items 1-3, §8.2 row 7): per scene and step, n ~ U{1..S} of
    the S modalities the scene shows (all M, or its ``missing_sizes`` combination) may have context, a uniform
    combination; each other shown modality gives 0 context views and its views as targets (up to ``max_targets``).
    At M = 2 half the scenes then have single-modality context (cross-modal training). With ``add_opposite`` the
    swapped copy sees those targets as context, as in the authors' code. Drawn from its own seed stream, so runs
    with ``none`` keep their batches. ``loss_reduction``: ``mean`` (default) over the step's episodes (swapped
    copies included) or ``sum`` over them (the authors' code; the paper does not say): the gradient is B times the
    mean's, which element-wise clipping (``clip_mode = "value"``) does not undo. Logged losses are the mean either
    way.
    """

    out: str = "runs/default"
    steps: int = 1000
    batch_scenes: int = 8
    lr: float = 1e-3
    lr_end: float | None = None  # linear decay of lr to lr_end over lr_anneal_steps; unset = constant
    lr_anneal_steps: int = 0
    lr_warmup_steps: int = 0  # lr scaled by (step + 1) / W over the first W steps; 0 = none (paper)
    sigma_start: float | None = None  # likelihood std annealed linearly to model.sigma; unset = constant
    sigma_anneal_steps: int = 0
    clip: float = 0.25
    clip_mode: ClipMode = "value"
    beta: float = 1.0
    beta_start: float = 0.1
    beta_anneal_steps: int = 100
    kl_balance: float = 0.5  # share of the KL's gradient on the prior (x2); 0.5 = the ELBO's own (issue 11)
    prior_nll_weight: float = 0.0  # w: loss + w * NLL of the targets rendered from z ~ P(z | C); 0 = paper (issue 28)
    prior_nll_start: int = 0  # the step from which prior_nll_weight applies (0 before it)
    max_targets: int = 15
    add_opposite: bool = True
    checkpoint_every: int = 100
    keep_every: int = 0  # also keep RUN/checkpoints/step-N.pt every N steps (a multiple of checkpoint_every); 0 = none
    log_every: int = 10
    threads: int = 0  # torch's CPU threads; 0 = chosen by measurement as the load changes (gmn_plugins.runtime.threads)
    tensorboard: bool = False  # also log scalars and the sample grid to RUN/tensorboard (pip install "gmn-plugins[tensorboard]")
    device: str = "auto"  # "auto" (cuda when available, else cpu), "cpu", "cuda", "cuda:N", "mps"
    eval_every: int = 0  # steps between validations (val.jsonl, loss.png); 0 = never
    eval_scenes: int = 32  # validation scenes per validation
    missing_sizes: list[int] = attrs.Factory(list)
    missing_mode: MissingMode = "paper"
    context_mask: ContextMask = "none"  # "code": the authors' random context-modality mask (issue 27)
    loss_reduction: LossReduction = "mean"  # "sum": over the step's episodes, as the authors' code (issue 27)
    seed: int | None = None  # model initialisation and training draws; unset = the experiment's seed (issue 11)
    precision: Precision = "fp32"  # "bf16": autocast of the forward pass, fp32 master weights (issue 14)
    memory_format: MemoryFormat = "contiguous"  # "channels_last": the 4-d weights and activations (issue 15)
    compile: Compile = "off"  # "cells": torch.compile of every ConvLSTM's gate update (issue 15)
    adam: Adam = "fused"  # torch.optim.Adam's implementation: "fused", "foreach", "for-loop" (issue 15)
    malloc: Malloc = "retain"  # "retain": glibc keeps freed memory for the next step; "default" (issue 15)

    def seed_or(self, experiment_seed: int) -> int:
        """The training seed: ``seed`` if set, else the experiment's (dataset) ``seed``. Several training seeds can so
        share one dataset; validation, samples and evaluation keep the experiment's seed, so runs stay paired."""
        return experiment_seed if self.seed is None else self.seed


@attrs.frozen
class ExperimentSpec:
    """A whole experiment: ordered modality names (their order is the modality id), data, model, training."""

    name: str
    modalities: list[str]
    seed: int = 0
    data: DataSpec = attrs.Factory(DataSpec)
    model: ModelSpec = attrs.Factory(ModelSpec)
    train: TrainSpec = attrs.Factory(TrainSpec)


# ----------------------------------------------------------------------------------------------------------------
# strict converter


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _got(value: Any) -> str:
    return f"got {type(value).__name__} {_show(value)}"


def _strict(kind: type):
    def structure(value: Any, _type: type) -> Any:
        ok = type(value) is kind or (kind is float and type(value) is int)
        if not ok:
            raise TypeError(f"expected {kind.__name__}, {_got(value)}")
        if kind is not float:
            return value
        try:
            number = float(value)
        except OverflowError:  # an int past the float range
            number = math.inf
        if not math.isfinite(number):
            raise ValueError(f"expected a finite number, got {_show(value)}")
        return number

    return structure


converter = cattrs.Converter(forbid_extra_keys=True)
for _kind in (int, float, str, bool):
    converter.register_structure_hook(_kind, _strict(_kind))


def _literal(type_: Any):  # a named option: exactly one of the Literal's values, of the same type
    choices = get_args(type_)

    def structure(value: Any, _type: Any) -> Any:
        if not any(type(value) is type(c) and value == c for c in choices):
            raise ValueError(f"{_show(value)} is not one of {list(choices)}")
        return value

    return structure


def _list(type_: Any, what: str = ""):  # a TOML array, never a string or table iterated as one
    items = list_structure_factory(type_, converter)
    what = what or get_args(type_)[0].__name__

    def structure(value: Any, _type: Any) -> list:
        if type(value) is not list:
            raise TypeError(f"expected a list of {what}, {_got(value)}")
        return items(value, _type)

    return structure


def _table(cls: type):  # a spec class: a TOML table, with no unknown keys
    fields = {"modalities": override(struct_hook=_list(list[str], "modality names"))} if cls is ExperimentSpec else {}
    make = make_dict_structure_fn(cls, converter, **fields)

    def structure(value: Any, _type: Any) -> Any:
        if type(value) is not dict:
            raise TypeError(f"expected a table, {_got(value)}")
        return make(value, _type)

    return structure


converter.register_structure_hook_factory(lambda t: get_origin(t) is Literal, _literal)
converter.register_structure_hook_factory(lambda t: get_origin(t) is list, _list)
converter.register_structure_hook_factory(attrs.has, _table)


def _untable(cls: type):  # to_dict of a spec class: cattrs' own, once the named options' types are defined
    return converter.gen_unstructure_attrs_fromdict(cls)


converter.register_unstructure_hook_factory(attrs.has, _untable)


def _structure_hand(value: Any, _type: Any) -> str | HandFileSpec:  # DataSpec.hand: "builtin" or {mjcf = PATH}
    if type(value) is str and value == "builtin":
        return value
    if isinstance(value, dict):
        return converter.structure(value, HandFileSpec)
    raise ValueError(f"expected \"builtin\" or a table {{mjcf = \"PATH\"}}, got {_show(value)}")


converter.register_structure_hook(str | HandFileSpec, _structure_hand)


def _format(exc: BaseException, _type: Any) -> str:
    if isinstance(exc, ForbiddenExtraKeysError):  # "KEY \x01 CLOSEST \x01 what", one per unknown key, \x00-separated
        known = [a.name for a in attrs.fields(exc.cl)]
        hints = []
        for name in sorted(exc.extra_fields):
            close = difflib.get_close_matches(name, known, n=1)
            key = name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name)  # quoted as in TOML
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            hints.append(f"{key}\x01{''.join(close)}\x01unknown field{hint}")
        return "\x00".join(hints)
    if isinstance(exc, KeyError):
        return "required field missing"
    return " ".join(str(exc).splitlines())


def _lines(exc: Exception, file: str) -> list[str]:
    problems, meant = [], set()  # (dotted field, what is wrong); the fields that unknown keys look like
    for message in cattrs.transform_error(exc, path="$", format_exception=_format):
        text, _, where = message.rpartition(" @ ")
        field = where.removeprefix("$").lstrip(".")
        for problem in text.split("\x00"):
            if problem.count("\x01") == 2:  # an unknown key: name it in the dotted path
                name, close, what = problem.split("\x01")
                problems.append((".".join(filter(None, [field, name])), what))
                if close:
                    meant.add(".".join(filter(None, [field, close])))
            else:
                problems.append((field or "(top level)", problem))
    # a misspelt required field is one mistake: its "did you mean" line says it all
    return [f"{file}: {field}: {what}" for field, what in problems
            if not (what == "required field missing" and field in meant)]  # fmt: skip


def structure(data: dict, cls: type, file: str):
    """Structure ``data`` into ``cls`` strictly; raise ``SpecError`` with one line per problem."""
    try:
        return converter.structure(data, cls)
    except (cattrs.BaseValidationError, TypeError, ValueError) as exc:
        if isinstance(exc, cattrs.BaseValidationError):
            raise SpecError("\n".join(_lines(exc, file))) from None
        raise SpecError(f"{file}: {exc}") from None


def read_toml(path: str | os.PathLike) -> dict:
    """Read a TOML file with ``tomllib``.

    Raises ``SpecError`` naming the file: ``no such file``, ``is a directory``, ``permission denied``, ``not a TOML
    file (binary)`` (not UTF-8, or NUL bytes) or ``invalid TOML: ...`` (the decode error and its line and column).
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise SpecError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SpecError(f"{path}: is a directory") from None
    except PermissionError:
        raise SpecError(f"{path}: permission denied") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = "\0"
    if "\0" in text:
        raise SpecError(f"{path}: not a TOML file (binary)")
    try:
        return tomllib.loads(text)
    except ValueError as exc:  # tomllib.TOMLDecodeError, or an int past Python's 4300-digit conversion limit
        raise SpecError(f"{path}: invalid TOML: {' '.join(str(exc).splitlines())}") from None


# ----------------------------------------------------------------------------------------------------------------
# overrides and validation


def parse_override(text: str, file: str) -> tuple[list[str], Any]:
    """Parse ``a.b.c=VALUE``; VALUE is read as a TOML value, bare words as strings."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise SpecError(f"{file}: override {text!r}: expected dotted.field=value")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except ValueError:  # tomllib.TOMLDecodeError, or an int too long to convert
        value = raw.strip()
    return key.strip().split("."), value


def apply_overrides(data: dict, overrides: list[str], file: str) -> dict:
    """Return a copy of ``data`` with dotted overrides applied (validated later like the file itself)."""
    data = json.loads(json.dumps(data))
    for text in overrides:
        path, value = parse_override(text, file)
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise SpecError(f"{file}: {'.'.join(path)}: {part!r} is not a table")
            node = child
        node[path[-1]] = value
    return data


def _is_file(path: str) -> bool:
    try:
        return Path(path).is_file()
    except OSError:  # e.g. a name too long
        return False


def _check_ranges(spec: ExperimentSpec, file: str) -> None:
    problems = []

    def within(value: float, minimum: float, field: str, maximum: float | None = None, why: str = "") -> None:
        if value < minimum:
            problems.append(f"{file}: {field}: must be >= {minimum}, got {_show(value)}")
        elif maximum is not None and value > maximum:
            problems.append(f"{file}: {field}: must be <= {maximum}{why}, got {_show(value)}")

    within(len(spec.modalities), 1, "modalities")
    if len(set(spec.modalities)) != len(spec.modalities):
        problems.append(f"{file}: modalities: names repeat: {_show(spec.modalities)}")
    if not 0 <= spec.seed < SEED_LIMIT:
        problems.append(f"{file}: seed: must be in [0, 2**32), got {spec.seed}")
    if spec.train.seed is not None and not 0 <= spec.train.seed < SEED_LIMIT:
        problems.append(f"{file}: train.seed: must be in [0, 2**32), got {spec.train.seed}")
    d, t = spec.data, spec.train
    within(d.train_scenes, 1, "data.train_scenes", MAX_SCENES)
    within(d.val_scenes, 0, "data.val_scenes", MAX_SCENES)
    within(d.test_scenes, 0, "data.test_scenes", MAX_SCENES)
    within(d.blocks, 2, "data.blocks", MAX_BLOCKS, " (the class enumeration grows ~4.7x per block; paper: 4-6)")
    within(d.views, 1, "data.views", MAX_VIEWS)
    within(d.shard_size, 1, "data.shard_size", MAX_SHARD_SIZE)
    within(d.workers, 0, "data.workers", MAX_PROCESSES)
    within(d.loader_workers, 0, "data.loader_workers", MAX_PROCESSES)
    for field in ("steps", "checkpoint_every", "log_every"):
        within(getattr(t, field), 1, f"train.{field}", MAX_STEPS)
    for field, value in (("train.out", t.out), ("data.dir", d.dir)):
        if not value.strip():  # an empty path is the current directory: never write a run or dataset there unasked
            problems.append(f"{file}: {field}: must not be empty (give a directory, e.g. \".\" for this one)")
    within(t.batch_scenes, 1, "train.batch_scenes", MAX_BATCH_SCENES)
    within(t.max_targets, 1, "train.max_targets", MAX_VIEWS)
    within(t.threads, 0, "train.threads", MAX_PROCESSES)
    grid = spec.model.latent_grid
    if grid is not None and not (len(grid) == 2 and all(1 <= g <= MAX_LATENT_GRID for g in grid)):
        problems.append(f"{file}: model.latent_grid: expected [h, w] with 1 <= h, w <= {MAX_LATENT_GRID}, got "
                        f"{_show(grid)}")  # fmt: skip
    if spec.model.decoder_width is not None:
        within(spec.model.decoder_width, 1, "model.decoder_width", MAX_DECODER_WIDTH)
    if not 0 < spec.model.sigma <= MAX_SIGMA:
        problems.append(f"{file}: model.sigma: must be > 0 and <= {MAX_SIGMA:g}, got {spec.model.sigma}")
    if not 0 < spec.model.chroma_weight <= MAX_CHROMA_WEIGHT:
        problems.append(f"{file}: model.chroma_weight: must be > 0 and <= {MAX_CHROMA_WEIGHT:g}, got "
                        f"{_show(spec.model.chroma_weight)}")  # fmt: skip
    if not 0 < t.lr <= MAX_LR:
        problems.append(f"{file}: train.lr: must be > 0 and <= {MAX_LR}, got {t.lr}")
    if t.lr_end is not None and not 0 < t.lr_end <= MAX_LR:
        problems.append(f"{file}: train.lr_end: must be > 0 and <= {MAX_LR}, got {_show(t.lr_end)}")
    if t.sigma_start is not None and not 0 < t.sigma_start <= MAX_SIGMA:
        problems.append(f"{file}: train.sigma_start: must be > 0 and <= {MAX_SIGMA:g}, got {_show(t.sigma_start)}")
    within(t.lr_anneal_steps, 0, "train.lr_anneal_steps", MAX_STEPS)
    within(t.lr_warmup_steps, 0, "train.lr_warmup_steps", MAX_STEPS)
    within(t.sigma_anneal_steps, 0, "train.sigma_anneal_steps", MAX_STEPS)
    within(t.clip, 0.0, "train.clip")
    for field in ("beta", "beta_start"):
        within(getattr(t, field), 0.0, f"train.{field}", MAX_BETA)
    within(t.beta_anneal_steps, 0, "train.beta_anneal_steps", MAX_STEPS)
    within(t.kl_balance, 0.0, "train.kl_balance", 1.0)
    within(t.prior_nll_weight, 0.0, "train.prior_nll_weight", MAX_BETA)
    within(t.prior_nll_start, 0, "train.prior_nll_start", MAX_STEPS)
    within(t.eval_every, 0, "train.eval_every", MAX_STEPS)
    within(t.keep_every, 0, "train.keep_every", MAX_STEPS)
    if 0 < t.keep_every <= MAX_STEPS and t.checkpoint_every > 0 and t.keep_every % t.checkpoint_every:  # else above
        problems.append(f"{file}: train.keep_every: must be a multiple of train.checkpoint_every "
                        f"({t.checkpoint_every}), got {t.keep_every}")  # fmt: skip
    within(t.eval_scenes, 1, "train.eval_scenes", MAX_SCENES)
    if not DEVICES.fullmatch(t.device):
        problems.append(f"{file}: train.device: expected {DEVICES_TEXT}, got {_show(t.device)}")
    sizes = t.missing_sizes
    if sizes and not (len(sizes) == 2 and 1 <= sizes[0] <= sizes[1] <= len(spec.modalities)):
        problems.append(f"{file}: train.missing_sizes: expected [A, B] with 1 <= A <= B <= {len(spec.modalities)} "
                        f"(the number of modalities), got {_show(sizes)}")  # fmt: skip
    if isinstance(d.hand, HandFileSpec) and not _is_file(d.hand.mjcf):
        problems.append(f"{file}: data.hand.mjcf: no such file {_show(d.hand.mjcf)}")
    if isinstance(d.hand, HandFileSpec) and d.hand.hull_vertices:
        low, high = options.MIN_HULL_VERTICES, options.MAX_HULL_VERTICES
        if not low <= d.hand.hull_vertices <= high:
            problems.append(f"{file}: data.hand.hull_vertices: must be 0 (full hulls) or in [{low}, {high}], "
                            f"got {_show(d.hand.hull_vertices)}")
    if problems:
        raise SpecError("\n".join(problems))


def notices(spec: ExperimentSpec, file: str) -> list[str]:
    """Lines ``FILE: field: ...`` for settings that are valid but do less than they say (the run goes on):
    ``train.eval_every`` without validation scenes, a ``train.batch_scenes`` larger than the training split."""
    t, d = spec.train, spec.data
    lines = []
    if t.eval_every and not d.val_scenes:
        lines.append(f"{file}: train.eval_every: {t.eval_every}, but data.val_scenes = 0: this run never validates "
                     f"(no val.jsonl); set data.val_scenes > 0, or train.eval_every = 0 to silence this")  # fmt: skip
    if t.batch_scenes > d.train_scenes:
        lines.append(f"{file}: train.batch_scenes: {t.batch_scenes} is more than the {d.train_scenes} training scenes "
                     f"(data.train_scenes): each step uses all {d.train_scenes}")  # fmt: skip
    return lines


def load_spec(path: str | os.PathLike, overrides: list[str] = ()) -> ExperimentSpec:
    """Read an experiment spec from TOML, apply ``a.b=value`` overrides, structure and validate it.

    Raises ``SpecError`` (one line per problem, ``FILE: dotted.field: what is wrong``). Modality names are
    resolved against the registry later (``registry.Registry.resolve``).
    """
    file = str(path)
    data = apply_overrides(read_toml(path), list(overrides), file)
    spec = structure(data, ExperimentSpec, file)
    _check_ranges(spec, file)
    return spec


def named_options() -> dict[str, tuple]:
    """{dotted field: allowed values} of every named option of an experiment spec (``Literal`` fields), e.g.
    ``"model.inference": ("apoe", "poe", "baseline")``: the tuples of ``OPTIONS`` (``gmn_plugins.core.options``)."""
    found = {}
    for section, cls in (("data", DataSpec), ("model", ModelSpec), ("train", TrainSpec)):
        for a in attrs.fields(attrs.resolve_types(cls)):
            if get_origin(a.type) is Literal:
                found[f"{section}.{a.name}"] = get_args(a.type)
    return found


def to_dict(spec: Any) -> dict:
    """Plain-dict form of any spec (JSON/TOML-safe), as stored in checkpoints."""
    return converter.unstructure(spec)
