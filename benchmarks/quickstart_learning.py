"""Which quickstart configuration learns fastest? Trains each candidate on the quickstart's data in segments and
scores it after each: validation negative ELBO (val.jsonl) and the per-element MSE of predicted RGB views from 5 RGB
context views against the mean of the scene's own views (issue 11's goal: a gain of 30 % or more).

    python benchmarks/quickstart_learning.py --out ~/gmn-bench/quickstart [--candidates base,lr3e-3] \\
        [--segments 200,400,600] [--threads 1]

Runs live in OUT/NAME and resume, so the script can be killed and re-run. Each row of OUT/rows.jsonl is one
(candidate, step) score; the table at the end prints them. Seconds per step are the median of the segment's steps,
so compare them only between candidates run under the same load (``--threads 1`` on an otherwise idle core); the
ELBO is comparable only between candidates of equal ``model.sigma`` (it is a likelihood at that sigma), the MSE
always.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "specs" / "quickstart.toml"
CANDIDATES = {
    "base": [],  # the quickstart as it is: sigma 0.1, lr 1e-3, 8 scenes, 8 targets
    "lr3e-3": ["train.lr=0.003"],
    "sigma0.3": ["model.sigma=0.3"],
    "sigma0.05": ["model.sigma=0.05"],
    "batch16": ["train.batch_scenes=16"],
    "targets4": ["train.max_targets=4"],
    "beta-warmup": ["train.beta_start=0.01", "train.beta_anneal_steps=300"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="directory for the runs and rows.jsonl (outside the work tree)")
    parser.add_argument("--data", help="the quickstart dataset (default: OUT/data)")
    parser.add_argument("--candidates", default=",".join(CANDIDATES), help=f"comma-separated, of {list(CANDIDATES)}")
    parser.add_argument("--segments", default="200,400,600", help="step counts after which to score")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--scenes", type=int, default=16, help="validation scenes scored")
    args = parser.parse_args()
    out = Path(args.out).expanduser().resolve()
    data = Path(args.data).expanduser().resolve() if args.data else out / "data"
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    for name in args.candidates.split(","):
        for steps in (int(s) for s in args.segments.split(",")):
            run = out / name
            cmd = [sys.executable, "-m", "gmn_plugins.cli.run", str(SPEC), *CANDIDATES[name],
                   f"data.dir={json.dumps(str(data))}", f"train.out={json.dumps(str(run))}", f"train.steps={steps}",
                   f"train.threads={args.threads}", "train.checkpoint_every=100", "--no-progress"]  # fmt: skip
            done = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if done.returncode:
                print(f"{name} @ {steps}: gmn-run failed: {done.stderr.strip()[-500:]}", file=sys.stderr)
                break
            metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
            score = subprocess.run([sys.executable, "-m", "gmn_plugins.cli.evaluate", "predict", str(run),
                                    "--scenes", str(args.scenes), "--context", "5", "--sources", "rgb",
                                    "--no-progress"], capture_output=True, text=True, env=env)  # fmt: skip
            if score.returncode:
                print(f"{name} @ {steps}: gmn-eval predict failed: {score.stderr.strip()[-500:]}", file=sys.stderr)
                break
            mse = json.loads(score.stdout)["mse"]["rgb"]
            val = [json.loads(line) for line in (run / "val.jsonl").read_text().splitlines()]
            summary = json.loads(done.stdout)
            row = {"candidate": name, "overrides": CANDIDATES[name], "step": steps,
                   "seconds_per_step": summary["seconds_per_step"], "val_missing": val[-1]["val_missing"] if val else None,
                   "train_neg_elbo": float(np.mean([m["neg_elbo_per_dim"] for m in metrics[-10:]])),
                   "rgb_mse": mse["model"], "own_mean_mse": mse["own_mean"], "dataset_mean_mse": mse["dataset_mean"],
                   "gain": mse["gain"]}  # fmt: skip
            with open(out / "rows.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    print(f"{'candidate':<12}{'step':>6}{'s/step':>8}{'val -ELBO':>11}{'rgb MSE':>10}{'own mean':>10}{'gain':>8}")
    for r in rows:
        sps = f"{r['seconds_per_step']:.2f}" if r["seconds_per_step"] else "-"
        val = f"{r['val_missing']:.4f}" if r["val_missing"] is not None else "-"
        print(f"{r['candidate']:<12}{r['step']:>6}{sps:>8}{val:>11}{r['rgb_mse']:>10.5f}{r['own_mean_mse']:>10.5f}"
              f"{r['gain']:>8.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
