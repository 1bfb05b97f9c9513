"""Costs of the vertical slice on this machine: MESE generation (scenes/s, 1 vs 2 workers) and training steps.

Run on an idle machine (it prints the load average first; another busy process distorts every number):

    python benchmarks/quickstart_costs.py [--scenes 32] [--steps 20]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch

from gmn_plugins.data.episodes import SceneSet
from gmn_plugins.mese.generate import DatasetConfig, generate
from gmn_plugins.core.plugins import load_registry
from gmn_plugins.core.spec import load_spec
from gmn_plugins.training.experiment import build_model, dataset_config


def generation_rate(scenes: int, workers: int, physics: str) -> float:
    with tempfile.TemporaryDirectory() as root:
        config = DatasetConfig(physics=physics, shard_size=max(1, scenes // 8), splits={"train": scenes})
        started = time.perf_counter()
        generate(root, config, workers=workers, progress=False)
        return scenes / (time.perf_counter() - started)


def step_time(spec_path: str, steps: int) -> float:
    registry = load_registry()
    with tempfile.TemporaryDirectory() as root:
        spec = load_spec(spec_path, [f"data.dir={root!r}".replace("'", '"'), "data.train_scenes=16", "data.val_scenes=0"])
        modalities = registry.resolve(spec.modalities)
        manifest = generate(root, dataset_config(spec, modalities), workers=0, progress=False)
        scenes = SceneSet(root, "train", modalities, manifest["stats"])
        model = build_model(spec, modalities)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
        times = []
        for step in range(steps + 2):
            rng = np.random.default_rng(step)
            ids = rng.choice(scenes.num_scenes, size=spec.train.batch_scenes, replace=False)
            context, target = scenes.episodes(ids, rng, spec.train.max_targets)
            started = time.perf_counter()
            loss = model(context, target, len(ids))["loss"]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            times.append(time.perf_counter() - started)
        return float(np.median(times[2:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--spec", default="specs/quickstart.toml")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores), torch threads {torch.get_num_threads()}")
    rates = {}
    for physics in ("fast", "faithful"):
        for workers in (1, 2):
            rates[physics, workers] = generation_rate(args.scenes, workers, physics)
            print(f"generation  physics={physics:8s} workers={workers}: {rates[physics, workers]:6.2f} scenes/s")
        print(f"generation  physics={physics:8s} 2 workers / 1 worker = {rates[physics, 2] / rates[physics, 1]:.2f}x")
    seconds = step_time(args.spec, args.steps)
    print(f"training    {args.spec}: {seconds:.3f} s per step (median, forward + backward + Adam)")


if __name__ == "__main__":
    main()
