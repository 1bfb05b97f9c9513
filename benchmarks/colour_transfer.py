"""Does a trained GMN carry colour from what it observes to what it renders? The measure is
``gmn_plugins.evaluation.colour.colour_transfer`` (its docstring says what each number means); this prints it for
one run as one JSON line, rounded.

    python benchmarks/colour_transfer.py RUN [--split val|test|train] [--scenes 16] [--context 5]
        [--checkpoint RUN/checkpoints/step-N.pt] [--temperature 1.0]

The RGB modality is the one named ``rgb`` (the quickstart's and the m2 spec's).
"""

from __future__ import annotations

import argparse
import json

import torch

from gmn_plugins.core.plugins import load_registry
from gmn_plugins.evaluation.colour import colour_transfer
from gmn_plugins.evaluation.runs import load_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run")
    parser.add_argument("--split", default="val")
    parser.add_argument("--checkpoint")
    parser.add_argument("--scenes", type=int, default=16)
    parser.add_argument("--context", type=int, default=5)
    parser.add_argument("--temperature", type=float, default=1.0,
                        help="of the prior's draws: 1 samples it, 0 renders its means")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    run = load_run(args.run, load_registry(), checkpoint=args.checkpoint)
    result = colour_transfer(run.model, run.scenes(args.split), args.scenes, args.context,
                             temperature=args.temperature)

    def rounded(value):
        return {k: rounded(v) for k, v in value.items()} if isinstance(value, dict) else round(value, 4)

    print(json.dumps({"run": str(run.dir), "step": run.step, "split": args.split,
                      **{k: v if isinstance(v, int) else rounded(v) for k, v in result.items()}}))


if __name__ == "__main__":
    main()
