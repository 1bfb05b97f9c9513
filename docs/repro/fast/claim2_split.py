"""Why claim 2 reads as it does on the fast recipe: APoE - baseline at 0 and at 10 target-modality views, and per
seed beside each run's context use (issue 29). Reads only the report's cached evaluations, in seconds.

usage: python docs/repro/fast/claim2_split.py RUNS   (RUNS: the report's `out`/m2, e.g. runs/repro-fast/m2)

Inputs: RUNS/<model>-seed<s>/eval/report-density.json (values[direction]: (source counts, target counts, scenes)
IWAE log-likelihoods, nats/dim) and report-power.json (chroma correlation of the prior's renders with the truth).
"""

import json
import sys
from pathlib import Path

import numpy as np

from gmn_plugins.evaluation.bootstrap import paired_bootstrap

runs, seeds = Path(sys.argv[1]), [1, 2, 3, 4, 5]
directions, targets = ["haptic->rgb", "haptic->rgb:gray", "rgb->haptic"], {"0": 0, "10": 3}


def density(model: str, seed: int) -> dict:
    values = json.loads((runs / f"{model}-seed{seed}" / "eval" / "report-density.json").read_text())["values"]
    return {k: np.asarray(v) for k, v in values.items()}


def chroma(model: str, seed: int) -> float:
    power = json.loads((runs / f"{model}-seed{seed}" / "eval" / "report-power.json").read_text())
    return power["colour"]["rgb"]["chroma_corr_prior"]


a, b = {s: density("apoe", s) for s in seeds}, {s: density("baseline", s) for s in seeds}
print("| direction | target views | APoE | baseline | APoE - baseline [95 %] | per seed |")
print("|---|---|---|---|---|---|")
for d in directions:
    for label, t in targets.items():  # mean over the 1, 5, 10 source views, per test scene
        r = paired_bootstrap(np.stack([a[s][d][:, t].mean(0) for s in seeds]),
                             np.stack([b[s][d][:, t].mean(0) for s in seeds]))  # fmt: skip
        per_seed = ", ".join(f"{x:+.3f}" for x in r["per_seed"])
        print(f"| {d} | {label} | {r['a']:.3f} | {r['b']:.3f} | {r['difference']:+.3f} [{r['low']:+.3f}, "
              f"{r['high']:+.3f}] | {per_seed} |")  # fmt: skip
print()
print("| seed | chroma prior APoE | chroma prior baseline | " + " | ".join(f"{d}, 0 views: A - B" for d in directions)
      + " |")  # fmt: skip
print("|---" * (3 + len(directions)) + "|")
for s in seeds:
    gaps = " | ".join(f"{a[s][d][:, 0].mean() - b[s][d][:, 0].mean():+.3f}" for d in directions)
    print(f"| {s} | {chroma('apoe', s):.2f} | {chroma('baseline', s):.2f} | {gaps} |")
