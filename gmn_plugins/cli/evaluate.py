"""``gmn-eval``: the paper's experiments on a trained run; JSON tables and PNG plots go to ``RUN/eval/``.

    gmn-eval density RUN [--scenes 96] [--samples 5] [--counts 0,1,5,10] [--targets rgb] [--sources haptic] [--gray]
    gmn-eval missing RUN [--scenes 96] [--sizes A,B]
    gmn-eval classify RUN [--blocks 4,6] [--objects 100] [--k 10] [--contexts 0,1,2,3,4,5] [--samples 50]
                          [--orientation paper|code|both]

RUN is a training output directory (``train.out`` of the spec, e.g. runs/quickstart). Density uses the run's
validation split (reference §6.2); classification makes held-out 4- and 6-block sets beside the run's data if
missing (reference §6.3). Same arguments, same numbers: all randomness comes from ``--seed``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from tqdm import tqdm

from . import user_errors
from ..mese.shards import write_json
from ..plugins import load_registry


def _ints(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers >= 0, got {text!r}")
    return values


def _fail(message: str) -> None:
    print(f"gmn-eval: {message}", file=sys.stderr)
    sys.exit(2)


def _modality_ids(run, names: list[str] | None, option: str) -> list[int] | None:
    if names is None:
        return None
    known = [m.name for m in run.modalities]
    unknown = [n for n in names if n not in known]
    if unknown:
        _fail(f"{option}: {', '.join(unknown)} not in the run's modalities {known}")
    return [known.index(n) for n in names]


def _density(args, run) -> dict:
    from ..evaluation.density import TARGET_VIEWS, evaluate_density
    from ..evaluation.plots import plot_density

    scenes = run.scenes("val")
    if max(args.counts) > scenes.views - TARGET_VIEWS:
        _fail(f"--counts: at most {scenes.views - TARGET_VIEWS} context views ({scenes.views} views, "
              f"{TARGET_VIEWS} are targets)")  # fmt: skip
    targets = _modality_ids(run, args.targets, "--targets")
    sources = _modality_ids(run, args.sources, "--sources")
    n = min(args.scenes, scenes.num_scenes)
    pairs = sum(max(1, len([s for s in (sources or range(len(run.modalities))) if s != t]))
                * (2 if args.gray and run.modalities[t].shape[:1] == (3,) else 1)
                for t in (targets or range(len(run.modalities))))  # fmt: skip
    rows = len(args.counts)
    with tqdm(total=pairs * rows * len(args.counts) * n, unit="scene", desc="density", disable=args.no_progress) as bar:
        records = evaluate_density(run.model, scenes, targets, sources, args.counts, gray_targets=args.gray,
                                   num_scenes=n, samples=args.samples, seed=args.seed, progress=bar)  # fmt: skip
    out = run.dir / "eval"
    out.mkdir(exist_ok=True)
    result = {"experiment": "cross-modal density (IWAE, nats per target dimension)", "step": run.step,
              "split": "val", "scenes": n, "samples": args.samples, "seed": args.seed,
              "rows": "number of source context views", "columns": "number of target-modality context views",
              "records": records}  # fmt: skip
    write_json(out / "density.json", result)
    plot_density(records, out / "density.png", title=f"{run.spec.name}, step {run.step}, {n} val scenes")
    return {"json": str(out / "density.json"), "plot": str(out / "density.png"), "records": records}


def _missing(args, run) -> dict:
    from ..evaluation.missing import missing_modality
    from ..evaluation.plots import plot_missing

    sizes = args.sizes if args.sizes is not None else run.spec.train.missing_sizes
    if sizes and not (len(sizes) == 2 and 1 <= sizes[0] <= sizes[1] <= len(run.modalities)):
        _fail(f"--sizes: expected A,B with 1 <= A <= B <= {len(run.modalities)}, got {sizes}")
    scenes = run.scenes("val")
    result = missing_modality(run.model, scenes, sizes, run.spec.train.missing_mode, num_scenes=args.scenes,
                              max_targets=run.spec.train.max_targets, seed=args.seed)  # fmt: skip
    out = run.dir / "eval"
    out.mkdir(exist_ok=True)
    result.update(experiment="missing-modality robustness (negative ELBO, nats per target dimension)", step=run.step,
                  trained_sizes=run.spec.train.missing_sizes, split=scenes.split)  # fmt: skip
    write_json(out / "missing.json", result)
    plot_missing(result, out / "missing.png", title=f"{run.spec.name}, step {run.step}, sizes {sizes or 'all'}")
    return {"json": str(out / "missing.json"), "plot": str(out / "missing.png"), **result}


def _classify(args, run) -> dict:
    from ..evaluation.classification import classify
    from ..evaluation.density import TARGET_VIEWS
    from ..evaluation.plots import plot_classification

    if max(args.contexts) > run.spec.data.views - TARGET_VIEWS:
        _fail(f"--contexts: at most {run.spec.data.views - TARGET_VIEWS} context views")
    if args.k < 2 or args.objects < args.k:
        _fail(f"--k: need 2 <= k <= --objects ({args.objects}), got {args.k}")
    results = {}
    for blocks in args.blocks:
        if blocks < 2:
            _fail(f"--blocks: objects need at least 2 blocks, got {blocks}")
        scenes = run.heldout_scenes(blocks, args.objects, progress=not args.no_progress)
        groups = args.objects // args.k
        masks = len(run.modalities) + (len(run.modalities) > 1)
        with tqdm(total=masks * len(args.contexts) * groups, unit="group", desc=f"classify {blocks} blocks",
                  disable=args.no_progress) as bar:  # fmt: skip
            results[f"{blocks} blocks"] = classify(run.model, scenes, k=args.k, groups=groups, contexts=args.contexts,
                                                   samples=args.samples, seed=args.seed,
                                                   orientation=args.orientation, progress=bar)  # fmt: skip
    out = run.dir / "eval"
    out.mkdir(exist_ok=True)
    result = {"experiment": "scene classification, paper Eq. 6", "step": run.step, "k": args.k,
              "objects": args.objects, "samples": args.samples, "seed": args.seed, "results": results}  # fmt: skip
    write_json(out / "classification.json", result)
    orientation = "code" if args.orientation == "code" else "paper"
    plot_classification(results, out / "classification.png", orientation)
    return {"json": str(out / "classification.json"), "plot": str(out / "classification.png"), "results": results}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="gmn-eval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("run", help="run directory holding checkpoint.pt (a spec's train.out)")
    common.add_argument("--seed", type=int, default=0)
    common.add_argument("--no-progress", action="store_true")
    d = sub.add_parser("density", parents=[common], help="cross-modal density (IWAE), paper Fig. 3")
    d.add_argument("--scenes", type=int, default=96, help="validation scenes (authors: 1200)")
    d.add_argument("--samples", type=int, default=5, help="importance samples (authors: 5)")
    d.add_argument("--counts", type=_ints, default=[0, 1, 5, 10], help="context sizes per modality")
    d.add_argument("--targets", type=lambda s: s.split(","), help="target modalities (default: all)")
    d.add_argument("--sources", type=lambda s: s.split(","), help="source modalities (default: all others)")
    d.add_argument("--gray", action="store_true", help="also score image targets as GRAY = max(R, G, B)")
    m = sub.add_parser("missing", parents=[common], help="missing-modality robustness, paper Fig. 5")
    m.add_argument("--scenes", type=int, default=96, help="validation scenes")
    m.add_argument("--sizes", type=_ints, help="A,B: the combinations of val_missing (default: the run's)")
    c = sub.add_parser("classify", parents=[common], help="scene classification, paper Eq. 6 / Fig. 4")
    c.add_argument("--blocks", type=_ints, default=[4, 6], help="held-out object sizes (paper: 4 and 6)")
    c.add_argument("--objects", type=int, default=100, help="held-out objects per size (paper: 1000)")
    c.add_argument("--k", type=int, default=10, help="scenes per classification group (paper: 10)")
    c.add_argument("--contexts", type=_ints, default=[0, 1, 2, 3, 4, 5], help="context views per modality")
    c.add_argument("--samples", type=int, default=50, help="importance samples (paper: 50)")
    c.add_argument("--orientation", choices=["paper", "code", "both"], default="paper",
                   help="argmax over contexts (Eq. 6) or over observations (the authors' script)")  # fmt: skip
    args = parser.parse_args(argv)
    for name in ("scenes", "samples", "objects", "k"):
        if getattr(args, name, 1) < 1:
            _fail(f"--{name}: must be >= 1")
    with user_errors():
        started = time.perf_counter()
        from ..evaluation.runs import load_run

        run = load_run(args.run, load_registry(), progress=not args.no_progress)
        report = {"density": _density, "missing": _missing, "classify": _classify}[args.command](args, run)
        report["seconds"] = round(time.perf_counter() - started, 1)
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
