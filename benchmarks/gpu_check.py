"""The CUDA path in one short script (issue 14), for the first machine with a GPU: <= 5 minutes, prints one JSON line
per check and stops at the first failure with its reason.

    python benchmarks/gpu_check.py [--device cuda] [--steps 10]

Checks, in order:
1. ``nccl``: a process group of world size 1 (nccl) and an all_reduce through ``distributed.sum_over_ranks``.
2. ``step``: step time (forward + backward + clip + Adam, median of ``--steps`` after 2 warm-up steps) of the m2 and
   m14 modality sets at the v4 preset, batch 12 (m2) and 9 (m14) scenes of 7 context + 8 target points, in fp32
   and bf16 (autocast, as ``train.precision = "bf16"``), in each of ``--memory-formats`` (``train.memory_format``),
   with the peak CUDA memory.
3. ``loader``: ``data.loader`` with 2 workers and pinned memory on a small synthetic dataset in the real format:
   batches/s and whether the batches arrive pinned.

Run once, on an H200 (docs/gpu/README.md holds its output, about 2 minutes). ``--device cpu`` runs checks 2 and 3
on the CPU (a smoke test of the script itself, ~80 s per v4 step on 2 cores; nccl is skipped).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from step_time import episode, modalities  # noqa: E402

from gmn_plugins.models import GMN, PRESETS  # noqa: E402


def report(check: str, **fields) -> None:
    print(json.dumps({"check": check, **fields}), flush=True)


def check_nccl() -> None:
    import torch.distributed as dist

    from gmn_plugins.training.distributed import World, sum_over_ranks

    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29511")
    dist.init_process_group("nccl", rank=0, world_size=1)
    try:
        total = sum_over_ranks(World(0, 2, 0), [1.5, 2.5])  # size 2 forces the collective; one rank holds the sum
        report("nccl", ok=total == [1.5, 2.5], backend=dist.get_backend(), all_reduce=total)
    finally:
        dist.destroy_process_group()


def check_steps(device: torch.device, steps: int, memory_formats: list[str]) -> None:
    from gmn_plugins.training.trainer import to_memory_format

    for m, scenes in ((2, 12), (14, 9)):
        for precision, memory_format in ((p, f) for f in memory_formats for p in ("fp32", "bf16")):
            torch.manual_seed(0)
            model = to_memory_format(GMN(modalities(m), PRESETS["v4"]).to(device), memory_format)
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
            context, target = episode(modalities(m), scenes)
            context = [p.to(device) for p in context]
            target = [p.to(device) for p in target]
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            times = []
            for i in range(steps + 2):
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                started = time.perf_counter()
                optimizer.zero_grad(set_to_none=True)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                    loss = model(context, target, scenes)["loss"]
                loss.backward()
                torch.nn.utils.clip_grad_value_(model.parameters(), 0.25)
                optimizer.step()
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                if i >= 2:
                    times.append(time.perf_counter() - started)
            peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
            report("step", m=m, scenes=scenes, precision=precision, memory_format=memory_format,
                   seconds=round(statistics.median(times), 4),
                   loss=round(loss.item(), 2), peak_gib=None if peak is None else round(peak, 2))  # fmt: skip


def check_loader(device: torch.device) -> None:
    from memory_scaling import synthetic_dataset

    from gmn_plugins.data.episodes import SceneSet
    from gmn_plugins.data.format import read_manifest
    from gmn_plugins.data.loader import TrainingBatches, training_batches
    from gmn_plugins.core.plugins import load_registry
    from gmn_plugins.core.spec import load_spec

    with tempfile.TemporaryDirectory() as tmp:
        spec_path = REPO / "specs" / "m2.toml"
        overrides = [f"data.dir={json.dumps(tmp)}", "data.train_scenes=256", "data.val_scenes=0"]
        synthetic_dataset(Path(tmp), overrides, spec_path)
        spec = load_spec(spec_path, overrides)
        scenes = SceneSet(tmp, "train", load_registry().resolve(spec.modalities, "m2"), read_manifest(tmp)["stats"])
        t = spec.train
        batches = TrainingBatches(scenes, 0, t.batch_scenes, t.max_targets, [], "paper", t.add_opposite)
        pin = device.type == "cuda"
        started, pinned = time.perf_counter(), []
        for context, _, _, _ in training_batches(batches, 0, 50, workers=2, pin_memory=pin):
            pinned.append(context[0].senses.is_pinned())
        report("loader", batches_per_second=round(50 / (time.perf_counter() - started), 1), pin_memory=pin,
               all_pinned=all(pinned))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--memory-formats", default="contiguous,channels_last", help="train.memory_format values timed")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("gpu_check: torch.cuda.is_available() is False; run it on a machine with a GPU")
        report("device", name=torch.cuda.get_device_name(device), torch=torch.__version__,
               bf16=torch.cuda.is_bf16_supported())  # fmt: skip
        check_nccl()
    check_steps(device, args.steps, args.memory_formats.split(","))
    check_loader(device)


if __name__ == "__main__":
    main()
