"""The first 100 training losses of the paper's m2 settings at a tiny size: the golden that shows a change leaves the
faithful path alone (issue 27; tests/test_faithful_golden.py replays it).

The recipe (spec and overrides) is stored in the golden file itself, so this script and the test cannot drift apart:
``specs/m2.toml`` (APoE, experts "present", element-wise clipping, lr 1e-4, β from 0.1, add-opposite, σ = 1) with
the tiny preset, 8 training scenes of 6 views, 4 scenes per step and ``train.threads = 1``.

    python benchmarks/faithful_losses.py            # train, print the losses and their difference to the golden
    python benchmarks/faithful_losses.py --write    # record them as the new golden (only for a deliberate change)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "tests" / "fixtures" / "faithful_m2_losses.json"
RECIPE = {
    "spec": "specs/m2.toml",
    "overrides": ['model.preset="tiny"', "data.train_scenes=8", "data.val_scenes=0", "data.views=6",
                  "data.shard_size=4", "data.workers=1", "train.batch_scenes=4", "train.steps=100",
                  "train.log_every=10", "train.checkpoint_every=100", "train.eval_every=0", "train.threads=1"],
}


def faithful_losses(workdir: Path, recipe: dict = RECIPE) -> list[float]:
    """Train ``recipe`` in ``workdir`` (data and run made there) and return the logged losses, one per step."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    from gmn_plugins.core.plugins import load_registry
    from gmn_plugins.core.spec import load_spec
    from gmn_plugins.training.trainer import train

    overrides = [*recipe["overrides"], f"data.dir={json.dumps(str(workdir / 'data'))}",
                 f"train.out={json.dumps(str(workdir / 'run'))}"]  # fmt: skip
    spec = load_spec(REPO / recipe["spec"], overrides)
    train(spec, recipe["spec"], load_registry(), progress=False)
    rows = [json.loads(line) for line in (workdir / "run" / "metrics.jsonl").read_text().splitlines()]
    return [row["loss"] for row in rows]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write the losses to {GOLDEN.relative_to(REPO)}")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        losses = faithful_losses(Path(tmp))
    print("step  loss")
    for step, loss in enumerate(losses, 1):
        print(f"{step:4d}  {loss:.9g}")
    if GOLDEN.exists():
        golden = json.loads(GOLDEN.read_text())["losses"]
        worst = max(abs(a - b) / abs(b) for a, b in zip(losses, golden))
        print(f"largest relative difference to the golden: {worst:.3g}")
    if args.write:
        GOLDEN.write_text(json.dumps({**RECIPE, "losses": losses}, indent=1) + "\n")
        print(f"wrote {GOLDEN}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
