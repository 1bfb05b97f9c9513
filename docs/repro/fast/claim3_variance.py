"""Where the width of claim 3's interval comes from (issue 29): APoE - baseline top-1 correctness per training seed
and held-out object, split into a seed part, an object part and their interaction (the luck of each object's draws
in each run), beside the report's paired-bootstrap interval. Reads only the cached evaluations, in seconds.

usage: python docs/repro/fast/claim3_variance.py RUNS [ROUNDS]   (RUNS: the report's `out`/m2; ROUNDS: how many
rounds of held-out objects to read, default every round found for all runs)

Inputs: RUNS/<model>-seed<s>/eval/report-classification-blocks<b>[-round<r>].json, the report's per-size, per-round
parts (``classify`` records: per context mask and size, the top-1 hit of every object, 0/1). Per object, the hits
are averaged over the context sizes, as the report's claim 3 statistic does.

The split is the two-way random-effects ANOVA of d[s, n] = A - B (seed s, object n): sd_seed and sd_object are the
spreads of the seed and object effects, sd_interaction the rest. The standard error of the mean difference is then
sqrt(sd_seed^2 / S + sd_object^2 / N + sd_interaction^2 / (S N)); the percentile bootstrap over seeds and objects
(the report's) counts the interaction about three times, so it is the wider of the two. More held-out objects
shrink the object and interaction parts; more seeds the seed and interaction parts.
"""

import json
import sys
from pathlib import Path

import numpy as np

from gmn_plugins.evaluation.bootstrap import paired_bootstrap

runs, seeds, sizes = Path(sys.argv[1]), [1, 2, 3, 4, 5], [4, 6]


def parts(model: str, seed: int, size: int) -> list[Path]:
    eval_dir = runs / f"{model}-seed{seed}" / "eval"
    found = [eval_dir / f"report-classification-blocks{size}.json"]
    r = 1
    while (eval_dir / f"report-classification-blocks{size}-round{r}.json").is_file():
        found.append(eval_dir / f"report-classification-blocks{size}-round{r}.json")
        r += 1
    return found


rounds = int(sys.argv[2]) if len(sys.argv) > 2 else min(len(parts(m, s, b)) for m in ("apoe", "baseline")
                                                          for s in seeds for b in sizes)  # fmt: skip


def correct(model: str, seed: int) -> dict[str, np.ndarray]:
    """{mask: (objects,) top-1 correctness averaged over context sizes}, sizes then rounds in order."""
    out: dict[str, list] = {}
    for size in sizes:
        for path in parts(model, seed, size)[:rounds]:
            by_mask: dict[str, list] = {}
            for rec in json.loads(path.read_text())["records"]:
                if rec["orientation"] == "paper":
                    by_mask.setdefault(rec["mask"], []).append(rec["correct"])
            for mask, rows in by_mask.items():
                out.setdefault(mask, []).append(np.mean(rows, axis=0))
    return {mask: np.concatenate(v) for mask, v in out.items()}


a = [correct("apoe", s) for s in seeds]
b = [correct("baseline", s) for s in seeds]
print(f"{rounds} round(s) of held-out objects\n")
print("| context | seeds x objects | A - B [95 % bootstrap] | half-width | sd seed | sd object | sd interaction | "
      "ANOVA half-width |")  # fmt: skip
print("|---|---|---|---|---|---|---|---|")
for mask in a[0]:
    A, B = np.stack([x[mask] for x in a]), np.stack([x[mask] for x in b])
    d = A - B
    S, N = d.shape
    row, col = d.mean(1) - d.mean(), d.mean(0) - d.mean()
    rest = d - d.mean() - row[:, None] - col[None, :]
    var_e = (rest**2).sum() / ((S - 1) * (N - 1))
    var_s, var_o = max(row.var(ddof=1) - var_e / N, 0.0), max(col.var(ddof=1) - var_e / S, 0.0)
    anova = 1.96 * np.sqrt(var_s / S + var_o / N + var_e / (S * N))
    r = paired_bootstrap(A, B, 2000, 0)
    print(f"| {mask} | {S} x {N} | {r['difference']:+.4f} [{r['low']:+.4f}, {r['high']:+.4f}] | "
          f"{(r['high'] - r['low']) / 2:.3f} | {np.sqrt(var_s):.3f} | {np.sqrt(var_o):.3f} | {np.sqrt(var_e):.3f} | "
          f"{anova:.3f} |")  # fmt: skip
