"""Memory must not grow with the dataset (issue 14): anonymous RSS of a training run at 2 000 and 20 000 scenes.

Makes synthetic datasets in the real format (``data.format``; shards, records, manifest and config as ``gmn-data
generate`` writes them, arrays of the right shapes and dtypes but made of random blocks instead of MuJoCo renders,
so 20 000 scenes take a minute instead of hours), then trains the same spec on each for ``--steps`` steps in a
subprocess, sampling the **RssAnon** (anonymous resident memory: heap and tensors, not the page cache of the memory
maps) of its whole process tree (DataLoader workers included) every 0.2 s. Prints one JSON line per run and the
ratio large / small of the peak and of the value at the end of training. Goal: ratio <= 1.10.

    python benchmarks/memory_scaling.py --out /tmp/memscale [--scenes 2000,20000] [--steps 500] [--loader-workers 2]

The spec is specs/quickstart.toml (rgb + haptic, 64x64, 15 views, small preset) with ``train.threads=1``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gmn_plugins.data.format import CONFIG, query_key, shard_path, write_shard  # noqa: E402
from gmn_plugins.training.experiment import dataset_config  # noqa: E402
from gmn_plugins.runtime.files import write_json  # noqa: E402
from gmn_plugins.mese.generate import build_manifest, shard_record, shard_tasks  # noqa: E402
from gmn_plugins.core.plugins import load_registry  # noqa: E402
from gmn_plugins.core.spec import load_spec  # noqa: E402

SPEC = REPO / "specs" / "quickstart.toml"


def synthetic_dataset(root: Path, overrides: list[str], spec_path: Path = SPEC, images=None) -> None:
    """A dataset in the real format for the spec ``spec_path`` with ``overrides``: every shard, record, config and manifest, with
    random arrays of the sensors' shapes (images: random 8x8-pixel blocks, so that deflate stays fast). ``images``:
    optional ``f(rng, colours, views, shape) -> uint8 (count, views, *shape)`` for the uint8 sensors instead, given
    each scene's block colours ``(count, blocks, 3)`` in [0, 1]."""
    spec = load_spec(spec_path, overrides)
    registry = load_registry()
    modalities = registry.resolve(spec.modalities, str(spec_path))
    config = dataset_config(spec, modalities)
    if (root / "manifest.json").exists():
        return
    sensors = [registry.sensor(name) for name in config.sensors]
    kinds = sorted({s.query for s in sensors})
    rng = np.random.default_rng(0)
    entries = []
    for split, shard, _, count in shard_tasks(config):
        v = config.views
        arrays = {"walk": rng.integers(0, 6, (count, config.blocks - 1), dtype=np.int8),
                  "colours": rng.random((count, config.blocks, 3), dtype=np.float32),
                  "label": rng.integers(0, 1000, count, dtype=np.int64),
                  "grasp_attempts": np.full(count, v, np.int64)}  # fmt: skip
        arrays.update({query_key(k): rng.random((count, v, 5), dtype=np.float32) for k in kinds})
        for s in sensors:
            if s.dtype == "uint8" and images is not None:
                arrays[s.name] = images(rng, arrays["colours"], v, s.shape)
            elif s.dtype == "uint8":
                c, h, w = s.shape
                blocks = rng.integers(0, 256, (count, v, c, h // 8, w // 8), dtype=np.uint8)
                arrays[s.name] = blocks.repeat(8, axis=-2).repeat(8, axis=-1)
            else:
                arrays[s.name] = rng.standard_normal((count, v, *s.shape)).astype(s.dtype)
        path = shard_path(root, split, shard)
        write_shard(path, arrays)
        minmax = [s.name for s in sensors if s.normalization == "minmax"]
        entry = shard_record(path, split, count, arrays, minmax)
        write_json(path.with_suffix(".json"), entry)
        entries.append(entry)
    write_json(root / CONFIG, config.to_json())
    write_json(root / "manifest.json", build_manifest(config, entries, sensors))


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                todo += [int(c) for c in open(f"/proc/{p}/task/{task}/children").read().split()]
        except OSError:
            pass
    return pids


def rss_anon_mib(pid: int) -> float:
    """RssAnon summed over ``pid`` and its descendants, MiB."""
    total = 0
    for p in _tree(pid):
        try:
            for line in open(f"/proc/{p}/status"):
                if line.startswith("RssAnon:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def run(root: Path, scenes: int, steps: int, loader_workers: int) -> dict:
    data, out = root / f"data-{scenes}", root / f"run-{scenes}"
    overrides = ['model.preset="small"', f"data.dir={json.dumps(str(data))}", f"data.train_scenes={scenes}",
                 "data.val_scenes=16", f"data.loader_workers={loader_workers}", "data.workers=1",
                 f"train.steps={steps}", "train.threads=1", f"train.checkpoint_every={steps}",
                 f"train.out={json.dumps(str(out))}"]  # fmt: skip
    t0 = time.perf_counter()
    synthetic_dataset(data, overrides)
    made = time.perf_counter() - t0
    proc = subprocess.Popen([sys.executable, "-m", "gmn_plugins.cli.run", str(SPEC), *overrides, "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)  # fmt: skip
    samples = []
    while proc.poll() is None:
        samples.append(rss_anon_mib(proc.pid))
        time.sleep(0.2)
    stdout, stderr = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"training at {scenes} scenes failed: {stderr.strip().splitlines()[-1:]}")
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    # the last sample before the figures are drawn: training is over once the run has logged its last step
    return {"scenes": scenes, "steps": metrics[-1]["step"], "loader_workers": loader_workers,
            "rss_anon_peak_mib": round(max(samples), 1), "rss_anon_end_mib": round(samples[-2] if len(samples) > 1 else samples[-1], 1),
            "samples": len(samples), "dataset_seconds": round(made, 1),
            "seconds_per_step": json.loads(stdout)["seconds_per_step"]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="work directory (datasets and runs; ~8 GB at 20 000 scenes)")
    parser.add_argument("--scenes", default="2000,20000")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--loader-workers", type=int, default=2)
    args = parser.parse_args()
    root = Path(args.out)
    root.mkdir(parents=True, exist_ok=True)
    results = [run(root, int(n), args.steps, args.loader_workers) for n in args.scenes.split(",")]
    for r in results:
        print(json.dumps(r))
    small, large = results[0], results[-1]
    print(json.dumps({"ratio_peak": round(large["rss_anon_peak_mib"] / small["rss_anon_peak_mib"], 3),
                      "ratio_end": round(large["rss_anon_end_mib"] / small["rss_anon_end_mib"], 3),
                      "goal": "<= 1.10"}))  # fmt: skip


if __name__ == "__main__":
    main()
