"""``gmn-run SPEC [dotted.field=value ...] [--dry-run]``: run an experiment spec (data, training, samples)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import user_errors
from ..core.plugins import load_registry
from ..core.spec import load_spec, notices


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="gmn-run", description=__doc__)
    parser.add_argument("spec", help="experiment spec, e.g. specs/quickstart.toml")
    parser.add_argument("overrides", nargs="*", help="dotted.field=value, value read as TOML (bare words: strings)")
    parser.add_argument("--dry-run", action="store_true", help="print modalities, shapes and parameters; train nothing")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_intermixed_args(argv)
    with user_errors():
        spec = load_spec(args.spec, args.overrides)
        registry = load_registry()
        modalities = registry.resolve(spec.modalities, args.spec)
        from ..training.experiment import build_model, check_sizes, resolve_device
        from ..training.trainer import train

        check_sizes(spec, modalities, args.spec)  # a plugin's 8192x8192 image is refused here, not 15 GB later

        if args.dry_run:  # the checks a run makes before it starts, the availability of train.device included
            from ..training.experiment import dataset_config
            from ..mese.generate import check_request

            for line in notices(spec, args.spec):
                print(line, file=sys.stderr)
            device = resolve_device(spec, args.spec)
            check_request(Path(spec.data.dir), dataset_config(spec, modalities), registry)  # the hand file, sensors
            model = build_model(spec, modalities, device="meta")
            print(f"experiment: {spec.name}  inference: {spec.model.inference}  preset: {spec.model.preset}  "
                  f"device: {device}")
            widths = [max(len(text) for text in column) for column in
                      zip(*[(m.name, m.sensor.name, str(m.shape)) for m in modalities])]  # fmt: skip
            for i, m in enumerate(modalities):
                cells = (text.ljust(w) for text, w in zip((m.name, m.sensor.name, str(m.shape)), widths))
                print(f"  {i:2d} {' '.join(cells)} query={m.spec.query}")
            print(f"latent grid: {tuple(model.grid)}")
            print(f"parameters: {sum(p.numel() for p in model.parameters())}")
            return
        summary = train(spec, args.spec, registry, progress=not args.no_progress)
        if "rank" not in summary:  # under torchrun only rank 0 reports
            print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
