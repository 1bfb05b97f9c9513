"""Which quickstart configuration learns fastest? Trains each candidate on the quickstart's data in segments and
scores it after each: validation negative ELBO (val.jsonl) and the per-element MSE of predicted RGB views from 5 RGB
context views against the mean of the scene's own views (issue 11's goal: a gain of 30 % or more); the posterior MSE
(renders from z ~ Q(z | C, O), which saw the targets) tells a renderer that cannot draw the scene from a prior that
lags behind the posterior.

    python benchmarks/quickstart_learning.py --out ~/gmn-bench/quickstart [--candidates base,lr3e-3] \\
        [--segments 300,600,1200] [--threads 1] [--table]

Runs live in OUT/NAME and resume, so the script can be killed and re-run. Each row of OUT/rows.jsonl is one
(candidate, step) score; the table at the end prints them. Seconds per step are the median of the segment's steps,
so compare them only between candidates run under the same load (``--threads 1`` on an otherwise idle core); the
ELBO is comparable only between candidates of equal ``model.sigma`` (it is a likelihood at that sigma), the MSE
always.

Issue 28's candidates (``recipe`` and its ablations ``recipe-no-OPTION``, ``paper``, and ``recipe-shallow...``, the
recipe as its ablation of 2026-12-07 ran it) start from the quickstart's
spec as it is, not from issue 11's, every setting they vary written out; each is scored on colour too (``benchmarks/colour_transfer.py``: chroma
correlation of the renders with the truth's, prior and posterior, before and after swapping the observed channels),
and ``--seeds 0,1,2`` trains each candidate once per training seed (runs OUT/NAME-seedS). Select on ``--split val``;
report on the test scenes (``--split test``, the quickstart spec's ``data.test_scenes``), never used for selection:

    python benchmarks/quickstart_learning.py --out ~/gmn-bench/recipe --candidates recipe,paper \
        --segments 2400 --seeds 0,1,2 --split test --scenes 64
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "specs" / "quickstart.toml"
# The quickstart as issue 11 found it (small preset, lr 1e-3, element-wise clipping; sigma 0.1, 8 scenes and 8
# targets per step): every candidate starts from it, so a candidate keeps its meaning when the spec's defaults move.
ISSUE11_QUICKSTART = ['model.preset="small"', "train.lr=0.001", 'train.clip_mode="value"']
LR3 = ["train.lr=0.003"]
# issue 28's options beyond the paper, each a named option whose default is the paper's (docs/fast-recipe.md);
# each setting is a list of overrides
RECIPE = {
    "init": ['model.init="kaiming"'],
    "aggregate": ['model.aggregate="mean"'],
    "renderer-context": ['model.renderer_context="mean"'],
    # colour errors weigh 4 times in the RGB likelihood: takes seeds 2-4 off the one-axis plateau (docs/fast-recipe.md,
    # "Colour errors weighed w times"); the ablation tables before it ran with the paper's likelihood (1)
    "chroma-weight": ["model.chroma_weight=4.0"],
    # not an option beyond the paper but a training setting: the quickstart's lr 3e-3 keeps the recipe grey to 10000
    # steps and 1e-3 learns colour in 2 of 4 seeds, 5e-4 in 3 of 3 (docs/fast-recipe.md); beta stays the paper's 1
    # (beta 4 was in the recipe until the ablation of 2026-12-07 found it no help: "recipe-beta4")
    "lr": ["train.lr=0.0005"],
    # the hybrid objective: the targets are also rendered from the prior's z and scored, from the first step (before
    # the chroma weight it had to wait for the posterior's colour, from step 2400 of 4800: "recipe-prior-nll-from-2400")
    "prior-nll": ["train.prior_nll_weight=1.0", "train.prior_nll_start=0"],
}
# each setting as the paper has it (the learning rate: the quickstart's before issue 28)
PAPER = {"init": ['model.init="default"'], "aggregate": ['model.aggregate="sum"'],
         "target-encoder": ['model.target_encoder="shared"'], "renderer-context": ['model.renderer_context="none"'],
         "chroma-weight": ["model.chroma_weight=1.0"], "lr": ["train.lr=0.003"],
         "prior-nll": ["train.prior_nll_weight=0.0"]}  # fmt: skip
# the paper's beta, written out in every candidate of FROM_QUICKSTART (the spec's own is the paper's too since
# 2026-12-07; before, the recipe held beta 4)
PAPER_BETA = ["train.beta=1.0"]
# model.target_encoder="shallow" was in the recipe until its ablation of 2026-12-07: reverted alone it cost the
# prior's colour in none of 3 seeds (docs/fast-recipe.md, "The ablation of the quickstart's recipe"), so it left;
# the candidates recipe-shallow... keep the recipe that ablation ran (and those before it) reachable
SHALLOW = {"target-encoder": ['model.target_encoder="shallow"']}
RECIPE_SHALLOW = {**RECIPE, **SHALLOW}
# written out in every recipe candidate without SHALLOW, so that each keeps its meaning whatever the spec holds
PAPER_FIXED = [*PAPER["target-encoder"], *PAPER_BETA]


def reverted(recipe: dict, name: str | None, fixed: list[str]) -> list[str]:
    """The overrides of ``recipe`` with setting ``name`` put back to the paper's (None: none), then ``fixed``."""
    return [*(o for k, v in recipe.items() for o in (PAPER[k] if k == name else v)), *fixed]


# Candidates that start from the quickstart spec as it is (not from ISSUE11_QUICKSTART), each setting written out
# so that a candidate keeps its meaning whatever the spec holds: the recipe (the spec since issue 28), the recipe
# with each setting reverted to the paper's (the ablation: docs/fast-recipe.md's section "The ablation of the
# quickstart's recipe"; its earlier ablation tables ran with the recipe as it was then), and the paper's model at the
# quickstart's training.
FROM_QUICKSTART = {
    "recipe": reverted(RECIPE, None, PAPER_FIXED),
    **{f"recipe-no-{name}": reverted(RECIPE, name, PAPER_FIXED) for name in RECIPE},
    "paper": [*(o for v in PAPER.values() for o in v), *PAPER_BETA],
    # the recipe with the shallow target encoder, as the ablation of 2026-12-07 ran it, and its rows (each setting
    # reverted alone; init and target_encoder together: "recipe-no-init", which reverts both)
    "recipe-shallow": reverted(RECIPE_SHALLOW, None, PAPER_BETA),
    **{f"recipe-shallow-no-{name}": reverted(RECIPE_SHALLOW, name, PAPER_BETA) for name in RECIPE_SHALLOW},
    # beta 4, as the recipe had it until 2026-12-07 (the KL weighs 4 times)
    "recipe-beta4": reverted(RECIPE_SHALLOW, None, ["train.beta=4.0"]),
    # the hybrid objective from step 2400, as the quickstart had it before the chroma weight (4800 steps)
    "recipe-prior-nll-from-2400": [*(o for k, v in RECIPE_SHALLOW.items() if k != "prior-nll" for o in v),
                                   "train.prior_nll_weight=1.0", "train.prior_nll_start=2400"],
}
CANDIDATES = {
    "base": [],  # the quickstart of issue 11
    "lr3e-3": LR3,
    "lr3e-3-decay": [*LR3, "train.lr_end=0.0003", "train.lr_anneal_steps=1200"],
    "lr5e-3-decay": ["train.lr=0.005", "train.lr_end=0.0005", "train.lr_anneal_steps=1200"],
    "lr3e-3-sigma0.3to0.1": [*LR3, "train.sigma_start=0.3", "train.sigma_anneal_steps=600"],
    "lr3e-3-targets4": [*LR3, "train.max_targets=4"],
    "lr3e-3-batch16": [*LR3, "train.batch_scenes=16"],
    "lr3e-3-beta-warmup": [*LR3, "train.beta_start=0.01", "train.beta_anneal_steps=300"],
    "sigma0.3": ["model.sigma=0.3"],
    # The tiny preset (16 channels, 2 DRAW steps) takes about a tenth of the small preset's CPU per step: more steps
    # per CPU-minute, less capacity.
    "tiny-lr3e-3": ['model.preset="tiny"', *LR3],
    "tiny-lr3e-3-beta-warmup": ['model.preset="tiny"', *LR3, "train.beta_start=0.01", "train.beta_anneal_steps=300"],
    # a larger likelihood std makes KL weigh more: the posterior stays near the prior, whose samples the MSE scores
    "tiny-lr3e-3-sigma0.3": ['model.preset="tiny"', *LR3, "model.sigma=0.3"],
    "tiny-lr3e-3-sigma1": ['model.preset="tiny"', *LR3, "model.sigma=1.0"],
    # KL balancing: the prior learns towards the posterior 4x as fast as the posterior towards the prior
    "tiny-lr3e-3-klbal0.8": ['model.preset="tiny"', *LR3, "train.kl_balance=0.8"],
    # the authors' clipping: the global norm, not each element (at the quickstart's loss scale element-wise clipping at
    # 0.25 cuts the largest quarter of the gradient's elements, the renderer's among them)
    "tiny-lr3e-3-clipnorm": ['model.preset="tiny"', *LR3, 'train.clip_mode="norm"'],
    # a second training seed of the two, for the seed-to-seed spread
    "tiny-lr3e-3-seed1": ['model.preset="tiny"', *LR3, "train.seed=1"],
    "tiny-lr3e-3-clipnorm-seed1": ['model.preset="tiny"', *LR3, 'train.clip_mode="norm"', "train.seed=1"],
    # He-normal initialisation (model.init): torch's default starves the image encoder. The two rows in
    # docs/reproducing-the-paper.md under these names ran at 2db00bc, when model.init also re-initialised the
    # renderers; run now, they get the option as it is (encoders only), like the third, which ran with it.
    "tiny-lr3e-3-clipnorm-kaiming": ['model.preset="tiny"', *LR3, 'train.clip_mode="norm"', 'model.init="kaiming"'],
    "tiny-lr1e-3-clipnorm-kaiming": ['model.preset="tiny"', 'train.clip_mode="norm"', 'model.init="kaiming"'],
    "tiny-lr1e-3-clipnorm-kaiming-enc": ['model.preset="tiny"', 'train.clip_mode="norm"', 'model.init="kaiming"'],
    # RGB alone (no haptic modality): does the RGB path carry colour when nothing else shares the representation?
    # Its dataset holds one sensor, so run it with its own --out (the others share OUT/data with two sensors).
    "tiny-lr3e-3-clipnorm-rgbonly": ['model.preset="tiny"', *LR3, 'train.clip_mode="norm"', 'modalities=["rgb"]'],
    **FROM_QUICKSTART,
}


def overrides(name: str) -> list[str]:
    """The gmn-run overrides of candidate ``name``: issue 11's base and its own, or its own alone (issue 28's)."""
    paper_model = [*(o for k, v in PAPER.items() if k != "lr" for o in v), *PAPER_BETA]  # issue 11 tuned it at beta 1
    return CANDIDATES[name] if name in FROM_QUICKSTART else [*ISSUE11_QUICKSTART, *paper_model, *CANDIDATES[name]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="directory for the runs and rows.jsonl (outside the work tree)")
    parser.add_argument("--data", help="the quickstart dataset (default: OUT/data)")
    parser.add_argument("--candidates", default=",".join(CANDIDATES), help=f"comma-separated, of {list(CANDIDATES)}")
    parser.add_argument("--table", action="store_true", help="only print the table of OUT/rows.jsonl")
    parser.add_argument("--segments", default="300,600,1200", help="step counts after which to score")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--scenes", type=int, default=16, help="scenes scored")
    parser.add_argument("--split", default="val", help="the split scored: val (selection) or test (the final report)")
    parser.add_argument("--seeds", help="comma-separated training seeds: one run NAME-seedS per seed (default: one run "
                                        "NAME with the spec's seed)")  # fmt: skip
    args = parser.parse_args()
    out = Path(args.out).expanduser().resolve()
    data = Path(args.data).expanduser().resolve() if args.data else out / "data"
    out.mkdir(parents=True, exist_ok=True)
    if args.table:
        return table(_rows(out))
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    seeds = [None] if args.seeds is None else [int(s) for s in args.seeds.split(",")]
    for candidate, seed in ((c, s) for c in args.candidates.split(",") for s in seeds):
        name = candidate if seed is None else f"{candidate}-seed{seed}"
        for steps in (int(s) for s in args.segments.split(",")):
            run = out / name
            cmd = [sys.executable, "-m", "gmn_plugins.cli.run", str(SPEC), *overrides(candidate),
                   *([] if seed is None else [f"train.seed={seed}"]),
                   f"data.dir={json.dumps(str(data))}", f"train.out={json.dumps(str(run))}", f"train.steps={steps}",
                   f"train.threads={args.threads}", "train.checkpoint_every=100", "--no-progress"]  # fmt: skip
            if any(r["candidate"] == name and r["step"] >= steps and r.get("split", "val") == args.split
                   for r in _rows(out)):  # fmt: skip
                continue  # scored already (a re-run after a kill)
            cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
            done = subprocess.run(cmd, capture_output=True, text=True, env=env)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu_seconds = (after.ru_utime + after.ru_stime) - (cpu.ru_utime + cpu.ru_stime)
            if done.returncode:
                print(f"{name} @ {steps}: gmn-run failed: {done.stderr.strip()[-500:]}", file=sys.stderr)
                break
            metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
            score = subprocess.run([sys.executable, "-m", "gmn_plugins.cli.evaluate", "predict", str(run),
                                    "--scenes", str(args.scenes), "--context", "5", "--sources", "rgb",
                                    "--split", args.split, "--no-progress"],
                                   capture_output=True, text=True, env=env)  # fmt: skip
            if score.returncode:
                print(f"{name} @ {steps}: gmn-eval predict failed: {score.stderr.strip()[-500:]}", file=sys.stderr)
                break
            mse = json.loads(score.stdout)["mse"]["rgb"]
            colour = subprocess.run([sys.executable, str(REPO / "benchmarks" / "colour_transfer.py"), str(run),
                                     "--split", args.split, "--scenes", str(args.scenes)],
                                    capture_output=True, text=True, env=env)  # fmt: skip
            if colour.returncode:
                print(f"{name} @ {steps}: colour_transfer failed: {colour.stderr.strip()[-500:]}", file=sys.stderr)
                break
            chroma = {k: v for k, v in json.loads(colour.stdout).items() if k.startswith("chroma_corr")}
            val = [json.loads(line) for line in (run / "val.jsonl").read_text().splitlines()]
            summary = json.loads(done.stdout)
            row = {"candidate": name, "overrides": overrides(candidate), "step": steps, "split": args.split,
                   "seconds_per_step": summary["seconds_per_step"],
                   "segment_cpu_seconds": cpu_seconds, "resumed_from": summary["resumed_from"], "val_missing": val[-1]["val_missing"] if val else None,
                   "train_neg_elbo": float(np.mean([m["neg_elbo_per_dim"] for m in metrics[-10:]])),
                   "rgb_mse": mse["model"], "own_mean_mse": mse["own_mean"], "dataset_mean_mse": mse["dataset_mean"],
                   "gain": mse["gain"], "posterior_mse": mse["posterior"], **chroma}  # fmt: skip
            with open(out / "rows.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)
    table(_rows(out))


def _rows(out: Path) -> list[dict]:
    path = out / "rows.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def table(rows: list[dict]) -> None:
    """Markdown table; CPU min is the cumulative CPU time of the candidate's gmn-run processes (training, its
    validations, start-up), which a competing process on the other core distorts less than wall time."""
    print("| candidate | split | step | CPU min | s/step | val -ELBO | RGB MSE | own-mean MSE | gain | posterior MSE "
          "| chroma corr. prior / swapped | posterior / swapped |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    spent: dict[str, float] = {}

    def order(r):
        base = r["candidate"].rsplit("-seed", 1)[0]
        return (list(CANDIDATES).index(base) if base in CANDIDATES else 99, r["candidate"], r["step"])

    for r in sorted(rows, key=order):
        key = (r["candidate"], r.get("split", "val"))
        spent[key] = spent.get(key, 0.0) + r.get("segment_cpu_seconds", float("nan"))
        sps = f"{r['seconds_per_step']:.2f}" if r["seconds_per_step"] else "-"
        val = f"{r['val_missing']:.4f}" if r["val_missing"] is not None else "-"
        colour = [r.get(f"chroma_corr_{k}") for k in ("prior", "prior_swapped", "posterior", "posterior_swapped")]
        colour = ["-" if c is None else f"{c:.2f}" for c in colour]
        print(f"| {r['candidate']} | {r.get('split', 'val')} | {r['step']} | {spent[key] / 60:.1f} | {sps} | {val} | "
              f"{r['rgb_mse']:.5f} | {r['own_mean_mse']:.5f} | {r['gain']:+.2f} | "
              + (f"{r['posterior_mse']:.5f} |" if r.get("posterior_mse") is not None else "- |")
              + f" {colour[0]} / {colour[1]} | {colour[2]} / {colour[3]} |")


if __name__ == "__main__":
    main()
