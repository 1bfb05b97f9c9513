"""Can a GMN read a colour from its context views and render it? A probe for issue 11's "undertrained or a bug?":
MESE's renders carry no colour after 12 000 steps, so this asks the same of data where colour is all there is.

    python benchmarks/colour_probe.py --out ~/gmn-bench/colour-probe [--pattern square] [--steps 600] [--threads 1] \
        [--recipe] [--set OVERRIDE ...]

Makes an RGB-only dataset in the real format (``memory_scaling.synthetic_dataset``: shards, manifest and config as
``gmn-data generate`` writes them) whose views show only each scene's colour (its first block's, uniform in
[0, 1]^3), the same in every view whatever the query:
- ``uniform``: the whole 64x64 image is that colour;
- ``square``: a centred 16x16 square of it on black, about the size of a MESE object in a view.

Trains specs/quickstart.toml on it with ``modalities = ["rgb"]``, the tiny preset, lr 3e-3 and clipping by norm
(the quickstart candidate that learns fastest), into OUT/PATTERN, resuming a partial run. Then it prints
``colour_transfer.py``'s line for the validation split. A model that carries colour renders it from the prior
(``chroma_corr_prior`` near 1) and follows a swap of the context's channels. One that fails here cannot blame
MESE's harder scenes. docs/reproducing-the-paper.md ("Undertrained or a bug?") has the results: with torch's
default initialisation it fails; with ``--set model.init="kaiming"`` it learned colour in 2 of 4 runs.
``--recipe`` trains issue 28's fast recipe instead (``quickstart_learning.RECIPE``: the quickstart's options, lr,
chroma weight and hybrid term, written out), the probe of docs/fast-recipe.md's goal (>= 0.9 within 1000 steps).
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
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from memory_scaling import SPEC, synthetic_dataset  # noqa: E402
from quickstart_learning import PAPER, PAPER_BETA, RECIPE  # noqa: E402

PATTERNS = ("uniform", "square")
# the paper's model at the quickstart's training of issue 11 (lr 3e-3, beta 1), written out (the quickstart spec
# holds the fast recipe since issue 28): pass the recipe's settings with --set, e.g. --set 'model.init="kaiming"' ...
OVERRIDES = ['modalities=["rgb"]', 'model.preset="tiny"', 'train.clip_mode="norm"',
             *(o for v in PAPER.values() for o in v), *PAPER_BETA, "data.test_scenes=0"]  # fmt: skip


def colour_images(pattern: str):
    """``synthetic_dataset``'s ``images``: every view of a scene shows its first block's colour by ``pattern``."""

    def images(rng, colours, views, shape):
        c, h, w = shape
        mask = np.ones((h, w), np.float32)
        if pattern == "square":
            mask[:] = 0.0
            mask[h // 2 - 8 : h // 2 + 8, w // 2 - 8 : w // 2 + 8] = 1.0
        image = colours[:, 0, :c, None, None] * mask  # (count, c, h, w)
        return np.repeat((image * 255).round().astype(np.uint8)[:, None], views, axis=1)

    return images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--pattern", choices=PATTERNS, default="square")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--scenes", type=int, default=384, help="training scenes (the quickstart's)")
    parser.add_argument("--recipe", action="store_true", help="the fast recipe's settings (after the paper's, before --set)")
    parser.add_argument("--set", action="append", default=[], help="another spec override for the run (repeatable)")
    parser.add_argument("--name", default="run", help="the run's directory in OUT/PATTERN")
    args = parser.parse_args()
    out = Path(args.out).expanduser().resolve() / args.pattern
    data = out / "data"
    overrides = [*OVERRIDES, f"data.dir={json.dumps(str(data))}", f"data.train_scenes={args.scenes}"]
    synthetic_dataset(data, overrides, SPEC, images=colour_images(args.pattern))
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    run = out / args.name
    recipe = [o for v in RECIPE.values() for o in v] if args.recipe else []
    subprocess.run([sys.executable, "-m", "gmn_plugins.cli.run", str(SPEC), *overrides, *recipe, *args.set,
                    f"train.out={json.dumps(str(run))}", f"train.steps={args.steps}", f"train.threads={args.threads}",
                    "--no-progress"], check=True, env=env, stdout=subprocess.DEVNULL)  # fmt: skip
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "colour_transfer.py"), str(run)], check=True, env=env)


if __name__ == "__main__":
    main()
