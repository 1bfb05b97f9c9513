"""The quickstart's training step alone and beside a competitor (issue 15, "a shared machine").

For each setting, one ``gmn-run specs/quickstart.toml`` trains STEPS steps on an otherwise idle machine, then two
identical runs train at the same time, each in its own run directory (the competitor is the second quickstart).
Printed: the median step time (``seconds_per_step`` of gmn-run's summary) idle and contended, and the ratio
contended / idle for each of the two runs. Goal: <= 2.5x with one competitor.

Settings: OpenMP's wait policy (ACTIVE: idle threads spin; PASSIVE: they sleep) and ``train.threads`` (0 = chosen
by measurement, gmn_plugins.runtime.threads). The data are generated once into WORK/data (the quickstart's dataset).
Run it on an otherwise idle machine; the load average is printed with every row.

    python benchmarks/contention.py [--steps 40] [--work /tmp/gmn-contention]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SETTINGS = [  # (name, environment, train.threads)
    ("2 threads, OMP ACTIVE", {"OMP_WAIT_POLICY": "ACTIVE"}, 2),
    ("2 threads, OMP PASSIVE", {"OMP_WAIT_POLICY": "PASSIVE"}, 2),
    ("1 thread", {"OMP_WAIT_POLICY": "PASSIVE"}, 1),
    ("threads = 0 (by measurement), gmn-run's default policy", {}, 0),
]


def train(work: Path, name: str, env: dict, threads: int, steps: int) -> float:
    """One quickstart run of ``steps`` steps from scratch in WORK/runs/NAME; its median step time (s)."""
    out = work / "runs" / name
    shutil.rmtree(out, ignore_errors=True)
    full_env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"} | env
    cmd = [sys.executable, "-m", "gmn_plugins.cli.run", str(REPO / "specs" / "quickstart.toml"), "--no-progress",
           f'data.dir="{work / "data"}"', f'train.out="{out}"', f"train.steps={steps}", f"train.threads={threads}",
           "train.eval_every=0", "train.checkpoint_every=100000"]  # fmt: skip
    done = subprocess.run(cmd, env=full_env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout[done.stdout.index("{"):])["seconds_per_step"]


def load() -> str:
    return "load %.2f" % os.getloadavg()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--work", type=Path, default=Path("/tmp/gmn-contention"))
    parser.add_argument("--only", type=int, nargs="*", help="indices of SETTINGS to run (default: all)")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    train(args.work, "warmup", {}, 0, 2)  # makes the dataset once
    print(f"{os.cpu_count()} cores, quickstart, {args.steps} steps per run, median step time")
    print("| setting | idle s | contended s (run a / run b) | contended / idle | load |")
    print("|---|---|---|---|---|")
    for index, (name, env, threads) in enumerate(SETTINGS):
        if args.only and index not in args.only:
            continue
        idle = train(args.work, "idle", env, threads, args.steps)
        before = load()
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            pair = list(pool.map(lambda run: train(args.work, run, env, threads, args.steps), ["a", "b"]))
        print(f"| {name} | {idle:.2f} | {pair[0]:.2f} / {pair[1]:.2f} | {pair[0] / idle:.1f}x / "
              f"{pair[1] / idle:.1f}x | {before} |", flush=True)


if __name__ == "__main__":
    main()
