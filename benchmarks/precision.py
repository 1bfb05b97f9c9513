"""bf16 against fp32 (issue 14, train.precision): validation loss after N quickstart steps for several training
seeds in each precision, and the median step time of each run.

    python benchmarks/precision.py --out /tmp/precision [--steps 300] [--seeds 1,2,3] [--threads 1] [--preset tiny] \
        [--parallel N]

Each (precision, seed) trains specs/quickstart.toml as issue 11 found it (small preset, lr 1e-3, element-wise
clipping: ``quickstart_learning.ISSUE11_QUICKSTART``) into OUT/PRECISION-seedS (resumed if present) on the quickstart
dataset (made once in OUT/data), validating once at the end on 16 validation scenes (val_missing: negative ELBO in
nats per target dimension). Prints one JSON line per run, then per precision the mean and the seed-to-seed range of
the validation loss and the median step time, and whether bf16's mean lies within fp32's range. Step times are
only comparable on an idle machine (run nothing else meanwhile). ``--preset`` replaces the quickstart's model size
(runs go to OUT/PRESET-PRECISION-seedS): on a CPU without native bf16, where autocast emulates it 12-18x slower, the
tiny preset makes the comparison affordable. ``--parallel N`` trains N runs at once after the first (which makes the
dataset): on a GPU the runs share the device, so their losses count and their step times do not
(``benchmarks/gpu_check.py`` times the step alone). ``train.device`` stays ``auto``: CUDA where torch sees a GPU.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from quickstart_learning import ISSUE11_QUICKSTART  # the quickstart these results were measured on

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "specs" / "quickstart.toml"


def run(out: Path, precision: str, seed: int, steps: int, threads: int, preset: str | None = None) -> dict:
    run_dir = out / f"{preset + '-' if preset else ''}{precision}-seed{seed}"
    overrides = ISSUE11_QUICKSTART + ([f"model.preset={json.dumps(preset)}"] if preset else []) + [
                 f"data.dir={json.dumps(str(out / 'data'))}", f"train.out={json.dumps(str(run_dir))}",
                 f"train.steps={steps}", f"train.eval_every={steps}", f"train.checkpoint_every={steps}",
                 f"train.seed={seed}", f"train.precision={json.dumps(precision)}", f"train.threads={threads}"]  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "gmn_plugins.cli.run", str(SPEC), *overrides, "--no-progress"],
                          capture_output=True, text=True, cwd=REPO)  # fmt: skip
    if done.returncode:
        raise SystemExit(f"{run_dir}: {done.stderr.strip().splitlines()[-1:]}")
    summary = json.loads(done.stdout)
    row = {"precision": precision, "seed": seed, "steps": summary["steps"], "val_missing": summary["val_missing"],
           "seconds_per_step": summary["seconds_per_step"], "resumed_from": summary["resumed_from"]}  # fmt: skip
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--preset", help="model.preset instead of the quickstart's (e.g. tiny)")
    parser.add_argument("--parallel", type=int, default=1, help="runs at once after the first (default 1)")
    args = parser.parse_args()
    out = Path(args.out)
    jobs = [(p, int(s)) for p in ("fp32", "bf16") for s in args.seeds.split(",")]
    rows = [run(out, *jobs[0], args.steps, args.threads, args.preset)]  # alone: it makes the dataset
    with ThreadPoolExecutor(max(1, args.parallel)) as pool:
        rows += pool.map(lambda job: run(out, *job, args.steps, args.threads, args.preset), jobs[1:])
    summary = {}
    for precision in ("fp32", "bf16"):
        losses = [r["val_missing"] for r in rows if r["precision"] == precision]
        times = [r["seconds_per_step"] for r in rows if r["precision"] == precision and r["resumed_from"] == 0]
        summary[precision] = {"val_missing_mean": round(float(np.mean(losses)), 4),
                              "val_missing_range": [round(min(losses), 4), round(max(losses), 4)],
                              "seconds_per_step_median": round(float(np.median(times)), 4) if times else None}  # fmt: skip
    low, high = summary["fp32"]["val_missing_range"]
    summary["bf16_within_fp32_spread"] = low <= summary["bf16"]["val_missing_mean"] <= high
    if summary["fp32"]["seconds_per_step_median"] and summary["bf16"]["seconds_per_step_median"]:
        summary["speedup_bf16"] = round(summary["fp32"]["seconds_per_step_median"]
                                        / summary["bf16"]["seconds_per_step_median"], 3)  # fmt: skip
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
