"""Seconds per scene-classification score matrix (paper Eq. 6; gmn_plugins/evaluation/classification.py): the
straightforward ``score_matrix_reference`` against the fast ``score_matrix``, on the quickstart model (rgb + haptic,
small preset, random weights: the cost does not depend on the weights) and K real MESE scenes.

For every repeat and every context mask (I, H, H + I) it times one reference matrix and one fast matrix in turn
(alternating, the same seed), then prints the median seconds per matrix (wall and CPU), the speed-up, the largest
difference between the two matrices, a breakdown of the fast matrix's time (cProfile, cumulative seconds), and the
cost of the paper's protocol: S = 50 samples, contexts 0-5 x masks I/H/H+I = 18 matrices per group of 10 objects,
and the paper's 1000 objects (100 groups) x 2 held-out sets (4 and 6 blocks). The extrapolation from ``--samples``
to 50 scales the per-sample part (the posterior and renderer passes) and keeps the rest; the context size changes
only the context encoding (about 1% of the time), so every c costs what the measured ``--c`` does.

Timings under a competing process (another training run, a second benchmark) are distorted, wall times most, CPU
times less (caches and memory bandwidth are still shared); the ratios between the two forms, measured alternately
under the same load, are distorted much less. The load average is printed before and after.

    python benchmarks/classification_speed.py [--data DIR --split val] [--k 10] [--samples 10] [--c 3]
        [--repeats 3] [--batch 25] [--threads 1]

Without ``--data`` it generates K scenes of 15 views in a temporary directory (a few seconds per scene).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from gmn_plugins.data.episodes import SceneSet
from gmn_plugins.evaluation.classification import default_masks, score_matrix, score_matrix_reference
from gmn_plugins.training.experiment import build_model
from gmn_plugins.mese.generate import DatasetConfig, generate
from gmn_plugins.core.plugins import load_registry
from gmn_plugins.core.spec import load_spec

REPO = Path(__file__).resolve().parents[1]
PAPER_SAMPLES, PAPER_MATRICES, PAPER_OBJECTS, PAPER_SETS = 50, 18, 1000, 2  # S; 6 contexts x 3 masks; 4 and 6 blocks
PARTS = {  # breakdown rows: (label, function name, file name ending) as cProfile records them
    "assemble the K scenes (numpy, normalisation)": ("assemble", "episodes.py"),
    "encoders (context and observations, once)": ("_represent", "gmn.py"),
    "posterior passes (ConvDRAW, K² x S)": ("_posterior", "gmn.py"),
    "renderers + likelihood (K² x S)": ("_nll", "gmn.py"),
    "  of which ConvTranspose2d (image decoder)": ("<built-in method torch.conv_transpose2d>", "~"),
    "all Conv2d (encoders, posterior, renderers)": ("<built-in method torch.conv2d>", "~"),
}


def load_scenes(args, modalities, root: str) -> SceneSet:
    """``--data``'s split (read only), or K freshly generated scenes of 15 views under ``root``."""
    if args.data:
        manifest = json.loads((Path(args.data) / "manifest.json").read_text())
        return SceneSet(args.data, args.split, modalities, manifest["stats"])
    config = DatasetConfig(seed=0, views=15, physics="fast", shard_size=args.k, splits={"train": args.k})
    manifest = generate(root, config, workers=1, progress=False)
    return SceneSet(root, "train", modalities, manifest["stats"])


def timed(fn, *args, **kwargs):
    """(result, wall seconds, CPU seconds of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def breakdown(fn, *args, **kwargs) -> tuple[float, dict[str, float]]:
    """Total profiled seconds of one call and the cumulative seconds of every PARTS row."""
    profile = cProfile.Profile()
    profile.enable()
    fn(*args, **kwargs)
    profile.disable()
    stats = pstats.Stats(profile).stats  # (file, line, name) -> (calls, primitive calls, own time, cumulative, callers)
    parts = {label: sum(v[3] for (file, _, name), v in stats.items() if name == fn_name and file.endswith(ending))
             for label, (fn_name, ending) in PARTS.items()}  # fmt: skip
    total = max(v[3] for (_, _, name), v in stats.items() if name == fn.__name__)
    return total, parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="an existing dataset directory (read only); default: generate K scenes")
    parser.add_argument("--split", default="val")
    parser.add_argument("--k", type=int, default=10, help="scenes per group (paper: 10)")
    parser.add_argument("--samples", type=int, default=10, help="importance samples S (paper: 50)")
    parser.add_argument("--c", type=int, default=3, help="context views")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=25, help="(k, i) pairs per forward pass")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")
    torch.set_num_threads(args.threads)
    print(f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores), torch threads "
          f"{torch.get_num_threads()}; K = {args.k}, S = {args.samples}, c = {args.c}, batch = {args.batch}")
    spec = load_spec(REPO / "specs" / "quickstart.toml", ['model.preset="small"'])
    modalities = load_registry().resolve(spec.modalities, "quickstart.toml")
    torch.manual_seed(0)
    model = build_model(spec, modalities).eval()
    names = [m.name for m in modalities]
    masks = default_masks(names)
    with tempfile.TemporaryDirectory() as root:
        scenes = load_scenes(args, modalities, root)
        group = np.arange(args.k)
        times = {"reference": [], "fast": []}
        cpu = {"reference": [], "fast": []}
        difference = 0.0
        for repeat in range(args.repeats):
            for mask in masks:
                results = {}
                for form, fn in (("reference", score_matrix_reference), ("fast", score_matrix)):
                    torch.manual_seed(repeat)
                    results[form], wall, seconds = timed(fn, model, scenes, group, mask, args.c, samples=args.samples,
                                                         batch=args.batch)  # fmt: skip
                    times[form].append(wall)
                    cpu[form].append(seconds)
                difference = max(difference, float(np.abs(results["fast"] - results["reference"]).max()))
                print(f"  repeat {repeat} mask {'+'.join(names[i] for i in mask):>10}: reference "
                      f"{times['reference'][-1]:7.2f} s, fast {times['fast'][-1]:7.2f} s (wall)", flush=True)
        total, parts = breakdown(score_matrix, model, scenes, group, masks[-1], args.c, samples=args.samples,
                                 batch=args.batch)  # fmt: skip

    median = {form: statistics.median(v) for form, v in times.items()}
    median_cpu = {form: statistics.median(v) for form, v in cpu.items()}
    paired = statistics.median(r / f for r, f in zip(times["reference"], times["fast"]))
    print(f"\nseconds per score matrix (median of {len(times['fast'])}, K = {args.k}, S = {args.samples}):")
    print(f"  reference  {median['reference']:8.2f} wall  {median_cpu['reference']:8.2f} CPU")
    print(f"  fast       {median['fast']:8.2f} wall  {median_cpu['fast']:8.2f} CPU")
    print(f"  speed-up   {median['reference'] / median['fast']:8.2f} wall  "
          f"{median_cpu['reference'] / median_cpu['fast']:8.2f} CPU  (median of paired wall ratios {paired:.2f})")
    print(f"  largest |fast - reference| under the same seed: {difference:.2e} nats per dimension")

    print(f"\nwhere the fast matrix's time goes (mask {'+'.join(names)}, cProfile, {total:.1f} s profiled):")
    for label, seconds in parts.items():
        print(f"  {label:<46} {seconds:8.2f} s  {100 * seconds / total:5.1f}%")
    per_sample = parts["posterior passes (ConvDRAW, K² x S)"] + parts["renderers + likelihood (K² x S)"]
    fixed = 1 - per_sample / total  # the share that does not grow with S
    print(f"  {'everything else (fixed in S)':<46} {total * fixed:8.2f} s  {100 * fixed:5.1f}%")

    scale = fixed + (1 - fixed) * PAPER_SAMPLES / args.samples
    groups = PAPER_OBJECTS // args.k  # the paper: 100 groups of 10
    print(f"\npaper protocol (S = {PAPER_SAMPLES}, {PAPER_MATRICES} matrices per group of {args.k}, "
          f"{groups} groups x {PAPER_SETS} held-out sets), {args.threads} thread(s), from the wall medians:")
    for form in ("reference", "fast"):
        matrix = median[form] * scale
        group_minutes = PAPER_MATRICES * matrix / 60
        hours = group_minutes * groups * PAPER_SETS / 60
        print(f"  {form:<10} {matrix:8.1f} s per matrix, {group_minutes:7.1f} min per group, "
              f"{hours:8.1f} h ({hours / 24:.1f} days) for 1000 objects x 2 sets")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
