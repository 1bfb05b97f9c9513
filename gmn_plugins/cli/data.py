"""``gmn-data generate --out DIR --scenes N [--val N] [--workers K] [--seed S] ...``: make a MESE dataset."""

from __future__ import annotations

import argparse
import json
import sys
import time

from . import user_errors
from ..mese.generate import DatasetConfig, generate


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="gmn-data", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="generate (or finish) a dataset; same bytes for any --workers")
    gen.add_argument("--out", required=True, help="dataset directory")
    gen.add_argument("--scenes", type=int, required=True, help="training scenes")
    gen.add_argument("--val", type=int, default=0, help="validation scenes")
    gen.add_argument("--workers", type=int, default=0, help="processes (0 = one per core)")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--blocks", type=int, default=5)
    gen.add_argument("--views", type=int, default=15)
    gen.add_argument("--physics", choices=("faithful", "fast"), default="fast")
    gen.add_argument("--shard-size", type=int, default=32)
    gen.add_argument("--sensors", default="camera.rgb,hand.haptic", help="comma-separated sensor names")
    gen.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    for name in ("scenes", "shard_size", "views"):
        if getattr(args, name) < 1:
            print(f"gmn-data: --{name.replace('_', '-')}: must be >= 1", file=sys.stderr)
            sys.exit(2)
    splits = {"train": args.scenes, **({"val": args.val} if args.val else {})}
    config = DatasetConfig(seed=args.seed, blocks=args.blocks, views=args.views, physics=args.physics,
                           shard_size=args.shard_size, sensors=tuple(args.sensors.split(",")), splits=splits)  # fmt: skip
    with user_errors():
        started = time.perf_counter()
        manifest = generate(args.out, config, workers=args.workers, progress=not args.no_progress)
        seconds = time.perf_counter() - started
        scenes = sum(s["scenes"] for s in manifest["splits"].values())
        print(json.dumps({"dir": args.out, "scenes": scenes, "seconds": round(seconds, 2),
                          "scenes_per_second": round(scenes / seconds, 2)}))  # fmt: skip


if __name__ == "__main__":
    main()
