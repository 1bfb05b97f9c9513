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


def beta_at(spec: ExperimentSpec, step: int) -> float:
    """β annealed linearly from ``beta_start`` to ``beta`` over ``beta_anneal_steps`` steps (paper appendix)."""
    t = spec.train
    if t.beta_anneal_steps == 0:
        return t.beta
    return t.beta_start + (t.beta - t.beta_start) * min(step, t.beta_anneal_steps) / t.beta_anneal_steps


def _linear(start: float, end: float, steps: int, step: int) -> float:
    return end if steps == 0 else start + (end - start) * min(step, steps) / steps


def lr_at(spec: ExperimentSpec, step: int) -> float:
    """Learning rate at ``step``: ``lr`` decayed linearly to ``lr_end`` over ``lr_anneal_steps`` (GQN's schedule,
    Eslami et al. 2018, shortened); constant ``lr`` when ``lr_end`` is unset."""
    t = spec.train
    return t.lr if t.lr_end is None else _linear(t.lr, t.lr_end, t.lr_anneal_steps, step)


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


def train(spec: ExperimentSpec, spec_file: str, registry: Registry, progress: bool = True) -> dict:
    """Run the experiment ``spec``; return a summary (steps, losses, seconds per step, paths).

    Under ``torchrun`` (``RANK``/``WORLD_SIZE`` set) every process trains its share of each global batch with
    DistributedDataParallel (``gmn_plugins.distributed``); rank 0 alone writes the run directory and returns the
    summary (the other ranks return ``{"steps", "resumed_from", "rank"}``).

    The run directory ``train.out`` is locked for the whole run (``RUN/.lock``): a second process on it raises
    ``LockHeld`` naming the holder. Raises ``SpecError`` (unknown modality, unavailable device, a loss that became
    non-finite), ``DataError`` (dataset made with other settings), ``CheckpointError`` (the run directory holds a
    checkpoint of another model or dataset, or a corrupted one) and ``MachineError`` (the run directory cannot be
    written: disk full, read-only).
    """
    modalities = registry.resolve(spec.modalities, spec_file)
    check_sizes(spec, modalities, spec_file)
    world = world_from_env()
    if world.main:
        for line in notices(spec, spec_file):
            print(line, file=sys.stderr)
    device = resolve_device(spec, spec_file)
    out = Path(spec.train.out)
    with ExitStack() as stack:
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
        return _train(spec, spec_file, registry, modalities, device, out, progress, world)


def _train(spec: ExperimentSpec, spec_file: str, registry: Registry, modalities: list[Modality],
           device: torch.device, out: Path, progress: bool, world: World = World()) -> dict:  # fmt: skip
    progress = progress and world.main
    stale = [*out.glob(".*.tmp"), *out.glob("checkpoints/.*.tmp")] if world.main else []
    for path in stale:  # temp files a killed run left (we hold the lock)
        path.unlink(missing_ok=True)
    ckpt_path = out / "checkpoint.pt"
    spec_dict = to_dict(spec)
    identities = [m.identity() for m in modalities]
    ckpt = load_checkpoint(ckpt_path) if ckpt_path.exists() else None
    if ckpt is not None:  # before any data is made: a resume with other settings is refused at once
        check_compatible(ckpt, spec_dict, identities, ckpt_path)
        if ckpt["step"] > spec.train.steps and world.main:
            print(f"{spec_file}: train.steps: {spec.train.steps} is below the step {ckpt['step']} of {ckpt_path}: "
                  f"nothing to train, the run stays at step {ckpt['step']} (a run never goes back; train into "
                  f"another train.out)", file=sys.stderr)  # fmt: skip
    agree(world, spec_dict, "the spec", spec_file)
    agree(world, ckpt["step"] if ckpt is not None else 0, f"the step to resume from ({ckpt_path})", spec_file)
    t0 = time.perf_counter()
    if world.main:  # makes the data if missing; the other ranks wait, then read what is on their machine
        manifest = generate(spec.data.dir, dataset_config(spec, modalities), workers=spec.data.workers,
                            progress=progress, registry=registry)  # fmt: skip
    barrier(world)
    # each machine reads its own copy of the data: a rank that cannot stops every rank with its one line
    manifest = on_every_rank(world, lambda: manifest if world.main else read_manifest(spec.data.dir))
    agree(world, manifest_sha256(manifest), f"the dataset's manifest ({spec.data.dir})", spec_file)
    data_seconds = time.perf_counter() - t0
    data_identity = {"manifest_sha256": manifest_sha256(manifest), "config": dataset_config(spec, modalities).to_json(),
                     # what a checkpoint copied alone needs to remake and check its val/test splits (evaluation.runs)
                     "stats": manifest["stats"],
                     "shards": {split: [{"file": e["file"], "scenes": e["scenes"], "sha256": e["sha256"]}
                                        for e in manifest["splits"][split]["shards"]]
                                for split in ("val", "test") if split in manifest["splits"]}}  # fmt: skip
    if ckpt is not None:
        check_compatible(ckpt, spec_dict, identities, ckpt_path, data_identity)  # now also the dataset's contents
    train_set = on_every_rank(world, lambda: SceneSet(spec.data.dir, "train", modalities, manifest["stats"]))
    val_set = SceneSet(spec.data.dir, "val", modalities, manifest["stats"]) if spec.data.val_scenes and world.main \
        else train_set  # fmt: skip

    configure_malloc(spec.train.malloc)  # "retain": freed memory stays in the heap for the next step (allocator.py)
    # train.threads, or 0: chosen by measurement on a CPU (a busy machine wants fewer); a GPU run keeps torch's
    threads = ThreadChooser(spec.train.threads if device.type == "cpu" else spec.train.threads or torch.get_num_threads())
    set_threads(threads.fixed)  # validation's batches (threads.paced) follow the same setting
    seed = spec.train.seed_or(spec.seed)  # initialisation and training draws; the data keep spec.seed
    torch.manual_seed(seed)
    model = to_memory_format(build_model(spec, modalities, device), spec.train.memory_format)
    compile_model(model, spec.train.compile)
    for module in model.modules():  # the KL's value is unchanged, only its gradient: validation may keep it too
        if isinstance(module, ConvDraw):
            module.kl_balance = spec.train.kl_balance
    optimizer = make_optimizer(model.parameters(), spec.train.lr, spec.train.adam)
    step = 0
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        step = ckpt["step"]
    resumed_from = step
    metrics_path, val_path = out / "metrics.jsonl", out / "val.jsonl"
    writer = None
    if world.main:
        atomic_write(out / "spec.json", lambda f: f.write(json.dumps(spec_dict, indent=2).encode()))
        writer = _tensorboard(out, step, spec_file) if spec.train.tensorboard else None
        _truncate_metrics(metrics_path, keep_until=step)
        _truncate_metrics(val_path, keep_until=step)
    validate = bool(spec.train.eval_every and spec.data.val_scenes and world.main)
    # the network the step runs: DDP averages gradients over ranks (parameters of modalities absent from a rank's
    # scenes receive none there: find_unused_parameters); checkpoints hold the model's own state_dict
    net = model if world.size == 1 else torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True)  # fmt: skip

    def validation() -> None:
        """Negative ELBO on the validation scenes (paper Fig. 5's val_missing / val_full), logged to val.jsonl."""
        model.eval()
        result = missing_modality(model, val_set, spec.train.missing_sizes, spec.train.missing_mode,
                                  num_scenes=spec.train.eval_scenes, max_targets=spec.train.max_targets,
                                  seed=spec.seed)  # fmt: skip
        model.train()
        _append_metrics(val_path, [{"step": step, **{k: result[k] for k in ("val_missing", "val_full",
                                                                              "val_full_by_size")}}])  # fmt: skip
        if writer is not None:
            for key in ("val_missing", "val_full"):
                writer.add_scalar(f"val/{key}", result[key], step)

    def log(rows: list[dict]) -> None:
        if not world.main:
            return
        _append_metrics(metrics_path, rows)
        if writer is not None:
            for row in rows:
                for key, value in row.items():
                    if key != "step":
                        writer.add_scalar(f"train/{key}", value, row["step"])

    def checkpoint() -> None:
        if world.size > 1:  # every rank must hold the same weights; a divergence is an error, not a silent drift
            agree(world, parameters_digest(model), f"the weights at step {step}", spec_file)
        if not world.main:
            return
        payload = {"step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(), "spec": spec_dict,
                   "modalities": identities, "data": data_identity}  # fmt: skip
        if spec.train.keep_every and step % spec.train.keep_every == 0:  # kept first: the run resumes past it
            save_checkpoint(kept_checkpoint(out, step), payload)
        save_checkpoint(ckpt_path, payload)

    rows, step_times, previous = [], [], None
    bar = tqdm(total=spec.train.steps, initial=step, desc=f"train {spec.name}", unit="step", disable=not progress,
               dynamic_ncols=True)  # fmt: skip
    model.train()
    t = spec.train
    try:
        batches = TrainingBatches(train_set, seed, t.batch_scenes, t.max_targets, t.missing_sizes, t.missing_mode,
                                  t.add_opposite, rank=world.rank, world=world.size,
                                  context_mask=t.context_mask)  # fmt: skip
    except ValueError:
        raise SpecError(f"{spec_file}: train.batch_scenes: {t.batch_scenes} scenes cannot be shared by {world.size} "
                        f"processes; use at most {min(t.batch_scenes, train_set.num_scenes)} processes or a larger batch") from None
    stream = training_batches(batches, step, t.steps, spec.data.loader_workers, pin_memory=device.type == "cuda")
    while step < spec.train.steps:
        threads.next_threads()
        started = time.perf_counter()
        # batch `step`, whoever made it (a pure function of seed and step); this rank's slice of it
        context, target, episodes, (total, slots) = next(stream)
        torch.manual_seed(step_seed(seed, 2, step))
        beta = beta_at(spec, step)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(spec, step)
        model.sigma = sigma_at(spec, step)
        try:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=t.precision == "bf16"), \
                    (noise_slots(total, slots) if world.size > 1 else nullcontext()):  # noise by global slot
                result = net(context, target, episodes, beta=beta)
        finally:
            model.sigma = spec.model.sigma  # validation, samples and evaluation use the final sigma
        optimizer.zero_grad(set_to_none=True)
        training_loss(result["loss"], t.loss_reduction, episodes, total, world.size).backward()
        clip_gradients(model, spec)
        optimizer.step()
        step += 1
        step_times.append(time.perf_counter() - started)
        threads.record(step_times[-1])
        dims = sum(p.senses.numel() for p in target)
        if world.size == 1:
            last = {"step": step, "loss": result["loss"].item(), "nll_per_dim": result["nll_per_dim"].item(),
                    "neg_elbo_per_dim": (result["nll"].item() + beta * result["kl"].item()) / dims,
                    "kl_per_scene": result["kl_per_scene"].item()}  # fmt: skip
        else:  # the global batch's values, the same on every rank
            nll, kl, dims = sum_over_ranks(world, [result["nll"].item(), result["kl"].item(), float(dims)])
            last = {"step": step, "loss": (nll + beta * kl) / total, "nll_per_dim": nll / dims,
                    "neg_elbo_per_dim": (nll + beta * kl) / dims, "kl_per_scene": kl / total}  # fmt: skip
        last |= {"beta": beta,
                **({"lr": optimizer.param_groups[0]["lr"]} if spec.train.lr_end is not None else {}),
                **({"sigma": sigma_at(spec, step - 1)} if spec.train.sigma_start is not None else {}),
                **({} if threads.fixed else {"threads": torch.get_num_threads()})}  # fmt: skip
        if not math.isfinite(last["loss"]):
            saved = max(resumed_from, (step - 1) // spec.train.checkpoint_every * spec.train.checkpoint_every)
            kept = f"the checkpoint of step {saved} is intact" if saved else "no checkpoint was written"
            raise SpecError(f"{spec_file}: train: the loss became {last['loss']} at step {step} ({kept}); "
                            f"{blowup_cause(spec, last, previous)}; change it and train into another "
                            f"train.out")  # fmt: skip
        previous = last
        rows.append(last)
        bar.set_postfix(elbo=f"{last['neg_elbo_per_dim']:.4f}", nll=f"{last['nll_per_dim']:.4f}",
                        kl=f"{last['kl_per_scene']:.1f}")  # fmt: skip
        bar.update(1)
        if step % spec.train.log_every == 0 or step == spec.train.steps:
            log(rows)
            rows = []
        if validate and (step % spec.train.eval_every == 0 or step == spec.train.steps):
            validation()  # before the checkpoint: a kill in between re-runs it on resume (rows after it are dropped)
        if step % spec.train.checkpoint_every == 0 or step == spec.train.steps:
            log(rows)
            rows = []
            checkpoint()
            if writer is not None:
                writer.flush()
    bar.close()
    del stream  # a DataLoader's workers end with their iterator
    barrier(world)
    if not world.main:
        return {"steps": step, "resumed_from": resumed_from, "rank": world.rank}

    model.eval()
    history = [json.loads(line) for line in metrics_path.read_text().splitlines()]
    val_history = [json.loads(line) for line in val_path.read_text().splitlines()] if val_path.exists() else []
    plot_losses(history, out / "loss.png", val_history)
    samples = sample_grid(model, val_set, out / "samples.png", seed=spec.seed)
    if writer is not None:
        if samples:
            from PIL import Image

            writer.add_image("samples", np.asarray(Image.open(samples).convert("RGB")), step, dataformats="HWC")
        writer.close()
    window = max(1, len(history) // 10)

    def mean(key: str, rows: list[dict]) -> float | None:
        return float(np.mean([row[key] for row in rows])) if rows else None

    return {
        "steps": step,
        "resumed_from": resumed_from,
        "data_seconds": round(data_seconds, 1),
        "seconds_per_step": float(np.median(step_times)) if step_times else None,
        "threads": threads.current,  # the fixed count, or the last one chosen
        # means over the first and the last tenth of all logged steps (nats per target dimension)
        "neg_elbo_per_dim_start": mean("neg_elbo_per_dim", history[:window]),
        "neg_elbo_per_dim_end": mean("neg_elbo_per_dim", history[-window:]),
        "nll_per_dim_start": mean("nll_per_dim", history[:window]),
        "nll_per_dim_end": mean("nll_per_dim", history[-window:]),
        "final_loss": history[-1]["loss"] if history else None,
        "val_missing": val_history[-1]["val_missing"] if val_history else None,
        "val_full": val_history[-1]["val_full"] if val_history else None,
        "checkpoint": str(ckpt_path),
        "samples": str(samples) if samples else None,
        "loss_plot": str(out / "loss.png"),
    }
