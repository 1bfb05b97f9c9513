"""The main job: make the spec's MESE data if missing, train the GMN, checkpoint, resume, draw samples.

Every step's randomness (scene choice, context sizes, view order, reparameterisation noise) derives from
(seed, step), so a run killed at any point and re-run ends exactly where an uninterrupted run ends.
"""

from __future__ import annotations

import json
import math
import sys
import time
from contextlib import ExitStack, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import numpy as np
import torch
from tqdm import tqdm

from .checkpoint import check_compatible, load_checkpoint, save_checkpoint
from ..runtime.faults import cannot_write
from ..runtime.locks import hold
from ..data.episodes import SceneSet
from ..data.format import manifest_sha256, read_manifest
from ..data.loader import TrainingBatches, step_seed, training_batches
from .distributed import (World, agree, barrier, join, leave, on_every_rank, parameters_digest, sum_over_ranks,
                          world_from_env)
from .validation import missing_modality
from .figures import plot_losses, sample_grid
from .experiment import build_model, check_sizes, dataset_config, resolve_device
from ..mese.generate import generate
from ..runtime.files import atomic_write
from ..core.modality import Modality
from ..core.registry import Registry
from ..core.spec import ExperimentSpec, SpecError, notices, to_dict
from ..runtime.threads import ThreadChooser, set_threads
from ..runtime.allocator import configure as configure_malloc
from ..models.convdraw import ConvDraw, noise_slots
from ..models.convlstm import ConvLSTM
from ..core.options import ADAMS, CLIP_MODES, COMPILES, LOSS_REDUCTIONS, MEMORY_FORMATS

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter


def beta_at(spec: ExperimentSpec, step: int) -> float:
    """β annealed linearly from ``beta_start`` to ``beta`` over ``beta_anneal_steps`` steps (paper appendix)."""
    t = spec.train
    if t.beta_anneal_steps == 0:
        return t.beta
    return t.beta_start + (t.beta - t.beta_start) * min(step, t.beta_anneal_steps) / t.beta_anneal_steps


def prior_nll_weight_at(spec: ExperimentSpec, step: int) -> float:
    """``train.prior_nll_weight`` from step ``train.prior_nll_start`` on (0 before it; step-indexed, so a run
    extended by a larger ``steps`` resumes on the same curve)."""
    t = spec.train
    return t.prior_nll_weight if step >= t.prior_nll_start else 0.0


def _linear(start: float, end: float, steps: int, step: int) -> float:
    return end if steps == 0 else start + (end - start) * min(step, steps) / steps


def lr_at(spec: ExperimentSpec, step: int) -> float:
    """Learning rate at ``step``: ``lr`` decayed linearly to ``lr_end`` over ``lr_anneal_steps`` (GQN's schedule,
    Eslami et al. 2018, shortened); constant ``lr`` when ``lr_end`` is unset. With ``lr_warmup_steps`` = W > 0 it
    is first scaled by (step + 1) / W over the first W steps (a linear warm-up; beyond the paper, issue 28)."""
    t = spec.train
    lr = t.lr if t.lr_end is None else _linear(t.lr, t.lr_end, t.lr_anneal_steps, step)
    return lr * min(1.0, (step + 1) / t.lr_warmup_steps) if t.lr_warmup_steps else lr


def sigma_at(spec: ExperimentSpec, step: int) -> float:
    """Likelihood std at ``step``: ``sigma_start`` annealed linearly to ``model.sigma`` over ``sigma_anneal_steps``
    (GQN anneals 2.0 -> 0.7); constant ``model.sigma`` when ``sigma_start`` is unset."""
    t = spec.train
    sigma = spec.model.sigma
    return sigma if t.sigma_start is None else _linear(t.sigma_start, sigma, t.sigma_anneal_steps, step)


def blowup_cause(spec: ExperimentSpec, row: dict, previous: dict | None) -> str:
    """``likely cause: SETTING (what the metrics show)`` for a non-finite loss: ``row`` is the step's metrics
    (``nll_per_dim``, ``kl_per_scene``, ``beta``), ``previous`` the last finite step's (None at a run's first step).
    The KL term (beta x KL) non-finite while the likelihood is finite, or the larger part of the last finite loss,
    points to ``train.beta`` (and ``beta_start``); else the likelihood points to ``train.lr`` and ``model.sigma``."""
    t = spec.train
    nll, kl = row["nll_per_dim"], row["kl_per_scene"]
    shown = f"nll_per_dim {nll:.4g}, kl_per_scene {kl:.4g}, beta {row['beta']:.4g}"
    if previous is not None:
        shown += (f"; at step {previous['step']}: nll_per_dim {previous['nll_per_dim']:.4g}, kl_per_scene "
                  f"{previous['kl_per_scene']:.4g}, loss {previous['loss']:.4g}")  # fmt: skip
    if math.isfinite(nll) and not math.isfinite(kl):
        kl_led = True
    elif not math.isfinite(nll) and math.isfinite(kl):
        kl_led = False
    else:  # both (the weights themselves): which term made most of the last finite loss
        kl_term = previous["beta"] * previous["kl_per_scene"] if previous is not None else 0.0
        kl_led = previous is not None and abs(previous["loss"] - kl_term) < kl_term  # per scene: |nll| < beta KL
    if kl_led:
        return (f"likely cause: train.beta = {t.beta:g} (beta_start = {t.beta_start:g}) too large, or train.lr = "
                f"{t.lr:g} too large for it (the KL term grew past the likelihood: {shown})")  # fmt: skip
    return (f"likely cause: train.lr = {t.lr} too large or model.sigma = {spec.model.sigma} too small (the "
            f"likelihood term blew up: {shown})")  # fmt: skip


def to_memory_format(model: torch.nn.Module, name: str) -> torch.nn.Module:
    """``model`` with its 4-d weights (convolution kernels) in the layout ``name`` of ``MEMORY_FORMATS``
    (``train.memory_format``), in place. A convolution whose weight is channels-last computes and returns
    channels-last activations; the values are those of the contiguous layout. Raises ``ValueError`` for another
    name."""
    if name not in MEMORY_FORMATS:
        raise ValueError(f"memory_format must be one of {MEMORY_FORMATS}, got {name!r}")
    layout = torch.channels_last if name == "channels_last" else torch.contiguous_format
    return model.to(memory_format=layout)


def compile_model(model: torch.nn.Module, name: str) -> torch.nn.Module:
    """``model`` with the parts ``name`` of ``COMPILES`` (``train.compile``) through ``torch.compile``, in place:
    ``"cells"`` gives every ConvLSTM one shared compiled gate update (the same values to rounding; it compiles on
    first use, for a zero and a tensor cell state); ``"off"`` leaves the model as it is. Raises ``ValueError`` for
    another name."""
    if name not in COMPILES:
        raise ValueError(f"compile must be one of {COMPILES}, got {name!r}")
    if name == "cells":
        update = torch.compile(ConvLSTM._update, dynamic=True)
        for module in model.modules():
            if isinstance(module, ConvLSTM):
                module._update = update
    return model


def kept_checkpoint(out: str | Path, step: int) -> Path:
    """Where ``train.keep_every`` keeps the checkpoint of ``step``: ``RUN/checkpoints/step-N.pt`` (same format)."""
    return Path(out) / "checkpoints" / f"step-{step}.pt"


def kept_checkpoints(out: str | Path) -> list[tuple[int, Path]]:
    """(step, path) of every kept checkpoint of the run directory ``out``, by step."""
    found = []
    for path in (Path(out) / "checkpoints").glob("step-*.pt"):
        if path.stem[5:].isdigit():
            found.append((int(path.stem[5:]), path))
    return sorted(found)


def training_loss(loss: torch.Tensor, reduction: str, episodes: int, total: int, world_size: int) -> torch.Tensor:
    """The scalar to differentiate, from the model's ``loss`` (this rank's mean over its ``episodes`` of the step's
    ``total``): ``reduction = "mean"`` (the global mean) or ``"sum"`` (the global sum, ``total`` times the mean:
    the authors' code). DDP averages gradients over ranks, so each rank's mean is weighted by its share of the
    episodes times the world size. Raises ValueError for an unknown reduction."""
    if reduction not in LOSS_REDUCTIONS:
        raise ValueError(f"loss_reduction must be one of {LOSS_REDUCTIONS}, got {reduction!r}")
    if world_size > 1:
        loss = loss * (episodes * world_size / total)
    return loss * total if reduction == "sum" else loss


def clip_gradients(model: torch.nn.Module, spec: ExperimentSpec) -> None:
    """Element-wise ±clip (paper) or global-norm clip (authors' code), by ``train.clip_mode``. Raises ValueError for
    another mode."""
    if spec.train.clip_mode not in CLIP_MODES:
        raise ValueError(f"clip_mode must be one of {CLIP_MODES}, got {spec.train.clip_mode!r}")
    if spec.train.clip_mode == "value":
        torch.nn.utils.clip_grad_value_(model.parameters(), spec.train.clip)
    else:
        torch.nn.utils.clip_grad_norm_(model.parameters(), spec.train.clip)


def make_optimizer(parameters, lr: float, adam: str = "fused") -> torch.optim.Adam:
    """Adam over ``parameters`` (an iterable of float tensors, e.g. ``model.parameters()``) at learning rate ``lr``,
    in ``train.adam``'s implementation: torch's ``fused``, ``foreach`` or ``for-loop`` one (the same update up to
    rounding). Raises ValueError for another value."""
    if adam not in ADAMS:
        raise ValueError(f"adam must be one of {ADAMS}, got {adam!r}")
    kind = {"fused": {"fused": True}, "foreach": {"foreach": True}, "for-loop": {"foreach": False}}[adam]
    return torch.optim.Adam(parameters, lr=lr, **kind)


def _truncate_metrics(path: Path, keep_until: int) -> None:
    """On (re)start, keep only the complete rows of ``metrics.jsonl`` up to the checkpoint's step (atomic rewrite):
    rows logged after the last checkpoint, a line cut by a kill, or anything else that is not a row (stray bytes)
    are dropped; the rows are logged again."""

    def kept(line: bytes) -> bool:
        try:
            step = json.loads(line.decode())["step"]
            return type(step) is int and step <= keep_until
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, IndexError):
            return False  # a log line never blocks a resume: whatever is not a row (stray bytes included) goes

    if not path.exists():
        return
    lines = [line for line in path.read_bytes().split(b"\n") if kept(line)]
    atomic_write(path, lambda f: f.write(b"".join(line + b"\n" for line in lines)))


def _tensorboard(out: Path, step: int, spec_file: str):
    """A TensorBoard ``SummaryWriter`` on ``out/tensorboard`` that drops events logged after ``step`` by a killed run
    (``purge_step``). Raises ``SpecError`` when the tensorboard package is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise SpecError(f"{spec_file}: train.tensorboard: needs the tensorboard package "
                        f"(pip install 'gmn-plugins[tensorboard]')") from None  # fmt: skip
    return SummaryWriter(str(out / "tensorboard"), purge_step=step or None)


def _append_metrics(path: Path, rows: list[dict]) -> None:
    """Append rows to ``metrics.jsonl`` (one JSON object per line); no rewrite, so logging stays O(rows)."""
    with open(path, "a") as f:
        f.writelines(json.dumps(row) + "\n" for row in rows)


@attrs.define
class RunState:
    """A run between its phases: what ``setup_run`` made and ``run_loop`` advances (``train``'s docstring has the
    order). ``model`` is the module checkpoints hold; ``net`` is what the step runs (``model`` itself, or a
    DistributedDataParallel around it). ``step`` counts the optimizer steps taken; ``rows`` are the metrics rows not
    yet written; ``previous`` is the last finite step's row (for a blow-up's likely cause)."""

    spec: ExperimentSpec
    spec_file: str
    world: World
    device: torch.device
    out: Path  # the run directory (train.out), locked by rank 0 for the whole run
    progress: bool  # draw progress bars: asked for, and rank 0
    modalities: list[Modality]
    spec_dict: dict  # the resolved spec, as checkpoints and spec.json hold it
    identities: list[dict]  # the ordered modality list, as checkpoints hold it
    data_identity: dict  # the dataset's manifest digest, config, stats and val/test shards, as checkpoints hold it
    data_seconds: float  # time spent making or reading the data
    train_set: SceneSet
    val_set: SceneSet  # the validation scenes (the training scenes without data.val_scenes, or on other ranks)
    seed: int  # train.seed, else spec.seed: initialisation and every step's draws
    threads: ThreadChooser
    model: torch.nn.Module
    net: torch.nn.Module
    optimizer: torch.optim.Optimizer
    batches: TrainingBatches
    writer: SummaryWriter | None  # TensorBoard (train.tensorboard, rank 0), else None
    validate: bool  # this rank runs validation (train.eval_every, data.val_scenes, rank 0)
    step: int
    resumed_from: int  # the checkpoint's step, 0 for a fresh run
    rows: list[dict] = attrs.field(factory=list)
    step_times: list[float] = attrs.field(factory=list)
    previous: dict | None = None

    @property
    def ckpt_path(self) -> Path:
        return self.out / "checkpoint.pt"

    @property
    def metrics_path(self) -> Path:
        return self.out / "metrics.jsonl"

    @property
    def val_path(self) -> Path:
        return self.out / "val.jsonl"


def train(spec: ExperimentSpec, spec_file: str, registry: Registry, progress: bool = True) -> dict:
    """Run the experiment ``spec``; return a summary (steps, losses, seconds per step, paths).

    In three phases: ``setup_run`` (lock, checkpoint check, data, model, optimizer, logging, DDP) returns a
    ``RunState``; ``run_loop`` trains it to ``train.steps`` (``train_step``, then ``validation_step`` and
    ``checkpoint_step`` on their schedules); ``finish_run`` draws the figures and makes the summary.

    Under ``torchrun`` (``RANK``/``WORLD_SIZE`` set) every process trains its share of each global batch with
    DistributedDataParallel (``gmn_plugins.training.distributed``); rank 0 alone writes the run directory and returns the
    summary (the other ranks return ``{"steps", "resumed_from", "rank"}``).

    The run directory ``train.out`` is locked for the whole run (``RUN/.lock``): a second process on it raises
    ``LockHeld`` naming the holder. Raises ``SpecError`` (unknown modality, unavailable device, a loss that became
    non-finite), ``DataError`` (dataset made with other settings), ``CheckpointError`` (the run directory holds a
    checkpoint of another model or dataset, or a corrupted one) and ``MachineError`` (the run directory cannot be
    written: disk full, read-only).
    """
    with ExitStack() as stack:  # undoes the run's thread settings, process group and lock, also after an error
        state = setup_run(spec, spec_file, registry, stack, progress)
        run_loop(state)
        return finish_run(state)


# ---- phase 1: setup --------------------------------------------------------------------------------------------------


def setup_run(spec: ExperimentSpec, spec_file: str, registry: Registry, stack: ExitStack,
              progress: bool = True) -> RunState:  # fmt: skip
    """Everything before the first step, in this order: resolve the modalities and the device, join the process
    group and lock ``train.out`` (both undone by ``stack``), remove a killed run's temp files, check a checkpoint
    to resume from, make or read the data (then check the checkpoint against it), choose threads, build the model
    and its optimizer (loaded from the checkpoint), open the logs and wrap the model for DDP.

    Inputs: the spec, its file name (for messages), the plugin registry, the ``ExitStack`` the run lives in, and
    whether to draw progress bars. Returns the ``RunState`` at the checkpoint's step (0 for a fresh run). Raises
    ``SpecError``, ``DataError``, ``CheckpointError``, ``LockHeld`` and ``MachineError`` as ``train`` says."""
    modalities = registry.resolve(spec.modalities, spec_file)
    check_sizes(spec, modalities, spec_file)
    world = world_from_env()
    if world.main:
        for line in notices(spec, spec_file):
            print(line, file=sys.stderr)
    device = resolve_device(spec, spec_file)
    out = Path(spec.train.out)
    device = _enter_run(stack, world, device, out, spec_file)
    progress = progress and world.main
    _remove_stale_temps(out, world)
    spec_dict, identities = to_dict(spec), [m.identity() for m in modalities]
    ckpt = _checkpoint_to_resume(spec, spec_file, out / "checkpoint.pt", spec_dict, identities, world)
    t0 = time.perf_counter()
    manifest = _make_data(spec, spec_file, registry, modalities, world, progress)
    data_seconds = time.perf_counter() - t0
    data_identity = _data_identity(spec, modalities, manifest)
    if ckpt is not None:  # now also the dataset's contents
        check_compatible(ckpt, spec_dict, identities, out / "checkpoint.pt", data_identity)
    train_set, val_set = _scene_sets(spec, modalities, manifest, world)
    threads = _choose_threads(spec, device)
    seed = spec.train.seed_or(spec.seed)  # initialisation and training draws; the data keep spec.seed
    model = _make_model(spec, modalities, device, seed)
    optimizer = make_optimizer(model.parameters(), spec.train.lr, spec.train.adam)
    step = _load_checkpoint(model, optimizer, ckpt)
    writer = _open_logs(spec, spec_file, out, spec_dict, step, world)
    net = _distributed(model, world, device)
    batches = _training_batches(spec, spec_file, train_set, seed, world)
    return RunState(
        spec=spec, spec_file=spec_file, world=world, device=device, out=out, progress=progress,
        modalities=modalities, spec_dict=spec_dict, identities=identities, data_identity=data_identity,
        data_seconds=data_seconds, train_set=train_set, val_set=val_set, seed=seed, threads=threads, model=model,
        net=net, optimizer=optimizer, batches=batches, writer=writer,
        validate=bool(spec.train.eval_every and spec.data.val_scenes and world.main), step=step,
        resumed_from=step)  # fmt: skip


def _enter_run(stack: ExitStack, world: World, device: torch.device, out: Path, spec_file: str) -> torch.device:
    """Keep torch's and validation's thread counts to restore at the end, join the process group (left at the end)
    and lock the run directory ``out`` (rank 0), all on ``stack``; return this rank's device. Raises ``SpecError``
    (nccl without a GPU for this rank), ``LockHeld`` and ``MachineError``/``SpecError`` (``out`` not writable)."""
    stack.callback(torch.set_num_threads, torch.get_num_threads())  # train.threads stays this run's setting
    stack.callback(set_threads, set_threads(None))  # and so does the one its validation sets (threads.paced)
    device = join(world, device, spec_file)
    stack.callback(leave, world, False)
    try:
        out.mkdir(parents=True, exist_ok=True)
        if world.main:  # the other ranks write nothing into the run directory
            stack.enter_context(hold(out / ".lock", f"run directory {out}"))
    except OSError as exc:
        raise cannot_write(out, exc, "make it writable or set another train.out", SpecError) from None
    return device


def _remove_stale_temps(out: Path, world: World) -> None:
    """Delete the temp files a killed run left in ``out`` and ``out/checkpoints`` (rank 0, which holds the lock)."""
    stale = [*out.glob(".*.tmp"), *out.glob("checkpoints/.*.tmp")] if world.main else []
    for path in stale:
        path.unlink(missing_ok=True)


def _checkpoint_to_resume(spec: ExperimentSpec, spec_file: str, ckpt_path: Path, spec_dict: dict,
                          identities: list[dict], world: World) -> dict | None:  # fmt: skip
    """The checkpoint at ``ckpt_path`` (None when there is none), checked against the spec and modalities before
    any data is made, so a resume with other settings is refused at once; says on stderr when ``train.steps`` is
    below its step. Every rank agrees on the spec and the step to resume from. Raises ``CheckpointError`` (another
    model, a corrupted file) and ``SpecError`` (ranks that disagree)."""
    ckpt = load_checkpoint(ckpt_path) if ckpt_path.exists() else None
    if ckpt is not None:
        check_compatible(ckpt, spec_dict, identities, ckpt_path)
        if ckpt["step"] > spec.train.steps and world.main:
            print(f"{spec_file}: train.steps: {spec.train.steps} is below the step {ckpt['step']} of {ckpt_path}: "
                  f"nothing to train, the run stays at step {ckpt['step']} (a run never goes back; train into "
                  f"another train.out)", file=sys.stderr)  # fmt: skip
    agree(world, spec_dict, "the spec", spec_file)
    agree(world, ckpt["step"] if ckpt is not None else 0, f"the step to resume from ({ckpt_path})", spec_file)
    return ckpt


def _make_data(spec: ExperimentSpec, spec_file: str, registry: Registry, modalities: list[Modality], world: World,
               progress: bool) -> dict:  # fmt: skip
    """The dataset's manifest: rank 0 makes the data if missing while the other ranks wait, then each rank reads its
    own machine's copy and all agree on the manifest. Raises ``DataError`` (data made with other settings; a rank
    that cannot read its copy stops every rank with its one line) and ``SpecError`` (ranks that disagree)."""
    if world.main:
        manifest = generate(spec.data.dir, dataset_config(spec, modalities), workers=spec.data.workers,
                            progress=progress, registry=registry)  # fmt: skip
    barrier(world)
    manifest = on_every_rank(world, lambda: manifest if world.main else read_manifest(spec.data.dir))
    agree(world, manifest_sha256(manifest), f"the dataset's manifest ({spec.data.dir})", spec_file)
    return manifest


def _data_identity(spec: ExperimentSpec, modalities: list[Modality], manifest: dict) -> dict:
    """What a checkpoint records of its dataset: the manifest's sha256, the dataset config, the normalisation stats
    and the val/test shards (what a checkpoint copied alone needs to remake and check them: evaluation.runs)."""
    return {"manifest_sha256": manifest_sha256(manifest), "config": dataset_config(spec, modalities).to_json(),
            "stats": manifest["stats"],
            "shards": {split: [{"file": e["file"], "scenes": e["scenes"], "sha256": e["sha256"]}
                               for e in manifest["splits"][split]["shards"]]
                       for split in ("val", "test") if split in manifest["splits"]}}  # fmt: skip


def _scene_sets(spec: ExperimentSpec, modalities: list[Modality], manifest: dict,
                world: World) -> tuple[SceneSet, SceneSet]:  # fmt: skip
    """The training and validation scenes (validation: rank 0 with ``data.val_scenes``; else the training scenes).
    Raises ``DataError`` on every rank when a rank cannot read its training shards."""
    train_set = on_every_rank(world, lambda: SceneSet(spec.data.dir, "train", modalities, manifest["stats"]))
    val_set = SceneSet(spec.data.dir, "val", modalities, manifest["stats"]) if spec.data.val_scenes and world.main \
        else train_set  # fmt: skip
    return train_set, val_set


def _choose_threads(spec: ExperimentSpec, device: torch.device) -> ThreadChooser:
    """Set the allocator (``train.malloc``) and the thread count: ``train.threads``, or 0: chosen by measurement on
    a CPU (a busy machine wants fewer); a GPU run keeps torch's. Validation's batches follow the same setting."""
    configure_malloc(spec.train.malloc)  # "retain": freed memory stays in the heap for the next step (allocator.py)
    threads = ThreadChooser(spec.train.threads if device.type == "cpu" else spec.train.threads or torch.get_num_threads())
    set_threads(threads.fixed)  # validation's batches (threads.paced) follow the same setting
    return threads


def _make_model(spec: ExperimentSpec, modalities: list[Modality], device: torch.device, seed: int) -> torch.nn.Module:
    """The model, initialised from ``seed`` (torch's global generator is seeded here), in ``train.memory_format``,
    compiled by ``train.compile``, with ``train.kl_balance`` set. Raises ``ValueError`` for an unknown option."""
    torch.manual_seed(seed)
    model = to_memory_format(build_model(spec, modalities, device), spec.train.memory_format)
    compile_model(model, spec.train.compile)
    for module in model.modules():  # the KL's value is unchanged, only its gradient: validation may keep it too
        if isinstance(module, ConvDraw):
            module.kl_balance = spec.train.kl_balance
    return model


def _load_checkpoint(model: torch.nn.Module, optimizer: torch.optim.Optimizer, ckpt: dict | None) -> int:
    """Load ``ckpt``'s model and optimizer state (a fresh run: nothing); return the step to start from."""
    if ckpt is None:
        return 0
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    return ckpt["step"]


def _open_logs(spec: ExperimentSpec, spec_file: str, out: Path, spec_dict: dict, step: int,
               world: World) -> SummaryWriter | None:  # fmt: skip
    """On rank 0: write ``spec.json``, open TensorBoard (``train.tensorboard``) and drop the metrics and validation
    rows logged after ``step`` (they are logged again). Returns the ``SummaryWriter`` or None. Raises ``SpecError``
    when the tensorboard package is missing, ``MachineError`` when ``out`` cannot be written."""
    if not world.main:
        return None
    atomic_write(out / "spec.json", lambda f: f.write(json.dumps(spec_dict, indent=2).encode()))
    writer = _tensorboard(out, step, spec_file) if spec.train.tensorboard else None
    _truncate_metrics(out / "metrics.jsonl", keep_until=step)
    _truncate_metrics(out / "val.jsonl", keep_until=step)
    return writer


def _distributed(model: torch.nn.Module, world: World, device: torch.device) -> torch.nn.Module:
    """The network the step runs: ``model`` itself, or for more than one process a DistributedDataParallel around
    it, which averages gradients over ranks (parameters of modalities absent from a rank's scenes receive none
    there: ``find_unused_parameters``); checkpoints hold the model's own state_dict."""
    if world.size == 1:
        return model
    return torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True)  # fmt: skip


def _training_batches(spec: ExperimentSpec, spec_file: str, train_set: SceneSet, seed: int,
                      world: World) -> TrainingBatches:  # fmt: skip
    """This rank's training batches (a pure function of ``seed`` and the step). Raises ``SpecError`` when the
    global batch's scenes cannot be shared by the world's processes."""
    t = spec.train
    try:
        return TrainingBatches(train_set, seed, t.batch_scenes, t.max_targets, t.missing_sizes, t.missing_mode,
                               t.add_opposite, rank=world.rank, world=world.size,
                               context_mask=t.context_mask)  # fmt: skip
    except ValueError:
        raise SpecError(f"{spec_file}: train.batch_scenes: {t.batch_scenes} scenes cannot be shared by {world.size} "
                        f"processes; use at most {min(t.batch_scenes, train_set.num_scenes)} processes or a larger batch") from None


# ---- phase 2: the loop -----------------------------------------------------------------------------------------------


def run_loop(state: RunState) -> None:
    """Train ``state`` from its step to ``train.steps``: each ``train_step``, then on their schedules (and at the
    last step) the metrics rows are written (``log_every``), the validation runs (``validation_step``,
    ``eval_every``) and the checkpoint is saved (``checkpoint_step``, ``checkpoint_every``). Ends when every rank
    has finished. Changes ``state`` in place; raises ``SpecError`` when the loss becomes non-finite (the last
    checkpoint stays intact) or the ranks' weights differ, ``MachineError`` when a checkpoint cannot be written."""
    spec, t = state.spec, state.spec.train
    bar = tqdm(total=t.steps, initial=state.step, desc=f"train {spec.name}", unit="step", disable=not state.progress,
               dynamic_ncols=True)  # fmt: skip
    state.model.train()
    stream = training_batches(state.batches, state.step, t.steps, spec.data.loader_workers,
                              pin_memory=state.device.type == "cuda")  # fmt: skip
    while state.step < t.steps:
        last = train_step(state, stream)
        _check_finite(state, last)
        state.previous = last
        state.rows.append(last)
        bar.set_postfix(elbo=f"{last['neg_elbo_per_dim']:.4f}", nll=f"{last['nll_per_dim']:.4f}",
                        kl=f"{last['kl_per_scene']:.1f}")  # fmt: skip
        bar.update(1)
        final = state.step == t.steps
        if state.step % t.log_every == 0 or final:
            log_rows(state)
        # validation before the checkpoint: a kill in between re-runs it on resume (rows after it are dropped)
        if state.validate and (state.step % t.eval_every == 0 or final):
            validation_step(state)
        if state.step % t.checkpoint_every == 0 or final:
            log_rows(state)
            checkpoint_step(state)
    bar.close()
    del stream  # a DataLoader's workers end with their iterator
    barrier(state.world)


def train_step(state: RunState, stream) -> dict:
    """One optimizer step on the next batch of ``stream`` (batch ``state.step``; its randomness from the seed and
    the step): β, learning rate and σ of the step, forward (under ``train.precision``; noise by global slot under
    DDP), backward of ``training_loss``, clipping, Adam. Advances ``state.step``, records the step's time and returns
    the step's metrics row (``step_metrics``)."""
    spec, t = state.spec, state.spec.train
    state.threads.next_threads()
    started = time.perf_counter()
    # batch `step`, whoever made it (a pure function of seed and step); this rank's slice of it
    context, target, episodes, (total, slots) = next(stream)
    torch.manual_seed(step_seed(state.seed, 2, state.step))
    beta = beta_at(spec, state.step)
    for group in state.optimizer.param_groups:
        group["lr"] = lr_at(spec, state.step)
    state.model.sigma = sigma_at(spec, state.step)
    try:
        with torch.autocast(state.device.type, dtype=torch.bfloat16, enabled=t.precision == "bf16"), \
                (noise_slots(total, slots) if state.world.size > 1 else nullcontext()):  # noise by global slot
            result = state.net(context, target, episodes, beta=beta,
                               prior_nll_weight=prior_nll_weight_at(spec, state.step))
    finally:
        state.model.sigma = spec.model.sigma  # validation, samples and evaluation use the final sigma
    state.optimizer.zero_grad(set_to_none=True)
    training_loss(result["loss"], t.loss_reduction, episodes, total, state.world.size).backward()
    clip_gradients(state.model, spec)
    state.optimizer.step()
    state.step += 1
    state.step_times.append(time.perf_counter() - started)
    state.threads.record(state.step_times[-1])
    return step_metrics(state, result, sum(p.senses.numel() for p in target), total, beta)


def step_metrics(state: RunState, result: dict, dims: int, total: int, beta: float) -> dict:
    """The metrics row of the step just taken (``state.step``) from the model's ``result`` on this rank's ``dims``
    target dimensions of the step's ``total`` episodes: loss, nll per dimension, negative ELBO per dimension and KL
    per scene of the global batch (summed over ranks), β, with the hybrid objective (``train.prior_nll_weight``)
    the prior renders' NLL per dimension, and the learning rate, σ and thread count where they vary."""
    spec = state.spec
    if state.world.size == 1:
        last = {"step": state.step, "loss": result["loss"].item(), "nll_per_dim": result["nll_per_dim"].item(),
                "neg_elbo_per_dim": (result["nll"].item() + beta * result["kl"].item()) / dims,
                "kl_per_scene": result["kl_per_scene"].item()}  # fmt: skip
        if "nll_prior" in result:
            last["nll_prior_per_dim"] = result["nll_prior"].item() / dims
    else:  # the global batch's values, the same on every rank
        prior = [result["nll_prior"].item()] if "nll_prior" in result else []
        nll, kl, dims, *prior = sum_over_ranks(state.world, [result["nll"].item(), result["kl"].item(), float(dims),
                                                             *prior])  # fmt: skip
        hybrid = prior_nll_weight_at(spec, state.step - 1) * prior[0] if prior else 0.0  # the step just taken's
        last = {"step": state.step, "loss": (nll + beta * kl + hybrid) / total, "nll_per_dim": nll / dims,
                "neg_elbo_per_dim": (nll + beta * kl) / dims, "kl_per_scene": kl / total,
                **({"nll_prior_per_dim": prior[0] / dims} if prior else {})}  # fmt: skip
    scheduled = spec.train.lr_end is not None or spec.train.lr_warmup_steps
    return last | {"beta": beta,
                   **({"lr": state.optimizer.param_groups[0]["lr"]} if scheduled else {}),
                   **({"sigma": sigma_at(spec, state.step - 1)} if spec.train.sigma_start is not None else {}),
                   **({} if state.threads.fixed else {"threads": torch.get_num_threads()})}  # fmt: skip


def _check_finite(state: RunState, last: dict) -> None:
    """Raise ``SpecError`` naming the step, the intact checkpoint and the likely cause (``blowup_cause``) when the
    step's loss in ``last`` is not finite."""
    if math.isfinite(last["loss"]):
        return
    t, step = state.spec.train, state.step
    saved = max(state.resumed_from, (step - 1) // t.checkpoint_every * t.checkpoint_every)
    kept = f"the checkpoint of step {saved} is intact" if saved else "no checkpoint was written"
    raise SpecError(f"{state.spec_file}: train: the loss became {last['loss']} at step {step} ({kept}); "
                    f"{blowup_cause(state.spec, last, state.previous)}; change it and train into another "
                    f"train.out")  # fmt: skip


def log_rows(state: RunState) -> None:
    """Write the rows logged since the last write to ``metrics.jsonl`` and TensorBoard (``train/KEY``; rank 0) and
    start a new list."""
    if state.world.main:
        _append_metrics(state.metrics_path, state.rows)
        if state.writer is not None:
            for row in state.rows:
                for key, value in row.items():
                    if key != "step":
                        state.writer.add_scalar(f"train/{key}", value, row["step"])
    state.rows = []


def validation_step(state: RunState) -> None:
    """Negative ELBO on the validation scenes at ``state.step`` (paper Fig. 5's val_missing / val_full), appended to
    ``val.jsonl`` and TensorBoard (``val/KEY``); the model is back in training mode after it."""
    t = state.spec.train
    state.model.eval()
    result = missing_modality(state.model, state.val_set, t.missing_sizes, t.missing_mode, num_scenes=t.eval_scenes,
                              max_targets=t.max_targets, seed=state.spec.seed)  # fmt: skip
    state.model.train()
    row = {"step": state.step, **{k: result[k] for k in ("val_missing", "val_full", "val_full_by_size")}}
    _append_metrics(state.val_path, [row])
    if state.writer is not None:
        for key in ("val_missing", "val_full"):
            state.writer.add_scalar(f"val/{key}", result[key], state.step)


def checkpoint_step(state: RunState) -> None:
    """Save the checkpoint of ``state.step`` (weights-only state_dicts of model and optimizer, the resolved spec,
    the ordered modality list and the data identity) to ``checkpoint.pt`` and, every ``train.keep_every`` steps,
    first to ``checkpoints/step-N.pt``; flush TensorBoard. Under DDP every rank first checks that all hold the same
    weights. Raises ``SpecError`` (the ranks' weights differ) and ``MachineError`` (cannot write)."""
    if state.world.size > 1:  # every rank must hold the same weights; a divergence is an error, not a silent drift
        agree(state.world, parameters_digest(state.model), f"the weights at step {state.step}", state.spec_file)
    if not state.world.main:
        return
    payload = {"step": state.step, "model": state.model.state_dict(), "optimizer": state.optimizer.state_dict(),
               "spec": state.spec_dict, "modalities": state.identities, "data": state.data_identity}  # fmt: skip
    keep_every = state.spec.train.keep_every
    if keep_every and state.step % keep_every == 0:  # kept first: the run resumes past it
        save_checkpoint(kept_checkpoint(state.out, state.step), payload)
    save_checkpoint(state.ckpt_path, payload)
    if state.writer is not None:
        state.writer.flush()


# ---- phase 3: the end ------------------------------------------------------------------------------------------------


def finish_run(state: RunState) -> dict:
    """After the loop: on rank 0 draw ``loss.png`` and ``samples.png`` (also to TensorBoard, then closed) and return
    the run's summary (``train``'s return value); the other ranks return ``{"steps", "resumed_from", "rank"}``."""
    if not state.world.main:
        return {"steps": state.step, "resumed_from": state.resumed_from, "rank": state.world.rank}
    state.model.eval()
    history = [json.loads(line) for line in state.metrics_path.read_text().splitlines()]
    val_path = state.val_path
    val_history = [json.loads(line) for line in val_path.read_text().splitlines()] if val_path.exists() else []
    plot_losses(history, state.out / "loss.png", val_history)
    samples = sample_grid(state.model, state.val_set, state.out / "samples.png", seed=state.spec.seed)
    if state.writer is not None:
        if samples:
            from PIL import Image

            state.writer.add_image("samples", np.asarray(Image.open(samples).convert("RGB")), state.step,
                                   dataformats="HWC")  # fmt: skip
        state.writer.close()
    return _summary(state, history, val_history, samples)


def _summary(state: RunState, history: list[dict], val_history: list[dict], samples: Path | None) -> dict:
    """``train``'s summary from the logged ``history`` and ``val_history`` rows and the samples figure's path."""
    window = max(1, len(history) // 10)

    def mean(key: str, rows: list[dict]) -> float | None:
        return float(np.mean([row[key] for row in rows])) if rows else None

    return {
        "steps": state.step,
        "resumed_from": state.resumed_from,
        "data_seconds": round(state.data_seconds, 1),
        "seconds_per_step": float(np.median(state.step_times)) if state.step_times else None,
        "threads": state.threads.current,  # the fixed count, or the last one chosen
        # means over the first and the last tenth of all logged steps (nats per target dimension)
        "neg_elbo_per_dim_start": mean("neg_elbo_per_dim", history[:window]),
        "neg_elbo_per_dim_end": mean("neg_elbo_per_dim", history[-window:]),
        "nll_per_dim_start": mean("nll_per_dim", history[:window]),
        "nll_per_dim_end": mean("nll_per_dim", history[-window:]),
        "final_loss": history[-1]["loss"] if history else None,
        "val_missing": val_history[-1]["val_missing"] if val_history else None,
        "val_full": val_history[-1]["val_full"] if val_history else None,
        "checkpoint": str(state.ckpt_path),
        "samples": str(samples) if samples else None,
        "loss_plot": str(state.out / "loss.png"),
    }
