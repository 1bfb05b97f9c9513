"""``gmn-eval``: the paper's experiments on a trained run; JSON tables and PNG plots go to ``RUN/eval/``.

    gmn-eval density RUN [--scenes 96] [--samples 5] [--counts 0,1,5,10] [--targets rgb] [--sources haptic] [--gray]
    gmn-eval generate RUN [--scene 0] [--samples 3] [--context rgb=1,haptic=15]
    gmn-eval missing RUN [--scenes 96] [--sizes A,B]
    gmn-eval predict RUN [--scenes 16] [--context 5] [--sources rgb] [--samples 4] [--temperature 1]
    gmn-eval classify RUN [--blocks 4,6] [--objects 10] [--k 10] [--contexts 0,1,3,5] [--samples 5]
                          [--orientation paper|code|both]
    gmn-eval report DIR [--no-train]    # DIR/report.toml: train, evaluate, decide claims (docs/reproducing-the-paper.md)
    gmn-eval claims [LABEL=]DIR|claims.json ...   # one markdown table of several reports' claims (claim x recipe)

RUN is a training output directory (``train.out`` of the spec, e.g. runs/quickstart); run gmn-eval from the
directory you trained in, since the spec's ``data.dir`` may be relative. A checkpoint copied alone
(``RUN/checkpoint.pt``, without its dataset) can be evaluated too: its val/test scenes are regenerated on demand into
``RUN/data`` from the settings it carries and compared by sha256 with the shards it was trained beside (a difference
is reported on stderr, not refused); ``predict`` then takes the dataset's mean image from val, not train. Density uses
the run's validation split (reference §6.2); classification makes held-out 4- and 6-block sets beside the run's data
(or ``RUN/data``) if missing (reference §6.3). The defaults fit a CPU (minutes for the quickstart model); the paper's
sizes are ``--objects 1000 --contexts 0,1,2,3,4,5 --samples 50`` (K² IWAE evaluations per group, mask and context
size).
Same arguments, same numbers: all randomness comes from ``--seed``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time

from tqdm import tqdm

from . import user_errors
from ..runtime.files import write_json
from ..core.plugins import load_registry
from ..core.spec import SEED_LIMIT


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


def _check_writable(out) -> None:
    """Raise ``MachineError`` (one line, exit 1) when the results directory ``RUN/eval`` cannot be written."""
    import tempfile

    from ..runtime.faults import cannot_write

    try:
        out.mkdir(exist_ok=True)
        tempfile.TemporaryFile(dir=out).close()
    except OSError as exc:
        raise cannot_write(out, exc, "gmn-eval writes its results there; make it writable, or copy the run "
                                     "directory somewhere writable and evaluate the copy") from None  # fmt: skip


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
    cells = 0  # grid cells to evaluate: per target, its sources x counts (one row without a source) x counts
    for t in targets or range(len(run.modalities)):
        n_sources = len([s for s in (sources or range(len(run.modalities))) if s != t])
        grids = 2 if args.gray and run.modalities[t].shape[:1] == (3,) else 1
        cells += grids * (n_sources * len(args.counts) if n_sources else 1) * len(args.counts)
    with tqdm(total=cells * n, unit="scene", desc="density", disable=args.no_progress) as bar:
        records = evaluate_density(run.model, scenes, targets, sources, args.counts, gray_targets=args.gray,
                                   num_scenes=n, samples=args.samples, seed=args.seed, progress=bar)  # fmt: skip
    out = run.dir / "eval"
    result = {"experiment": "cross-modal density (IWAE, nats per target dimension)", "step": run.step,
              "split": "val", "scenes": n, "samples": args.samples, "seed": args.seed,
              "rows": "number of source context views", "columns": "number of target-modality context views",
              "records": records}  # fmt: skip
    write_json(out / "density.json", result)
    plot_density(records, out / "density.png", title=f"{run.spec.name}, step {run.step}, {n} val scenes")
    return {"json": str(out / "density.json"), "plot": str(out / "density.png"), "records": records}


def _context_counts(text: str | None, run, views: int) -> list[int] | None:
    if text is None:
        return None
    counts = {m.name: 0 for m in run.modalities}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        if not sep or name not in counts or not value.isdigit() or int(value) > views:
            _fail(f"--context: expected NAME=K items with NAME one of {list(counts)} and 0 <= K <= {views}, "
                  f"got {item!r}")  # fmt: skip
        counts[name] = int(value)
    return list(counts.values())


def _generate(args, run) -> dict:
    from ..evaluation.generation import default_context, generation_figure

    scenes = run.scenes("val")
    if not 0 <= args.scene < scenes.num_scenes:
        _fail(f"--scene: {scenes.split} split has scenes 0..{scenes.num_scenes - 1}, got {args.scene}")
    context = _context_counts(args.context, run, scenes.views) or default_context(scenes)
    out = run.dir / "eval"
    png = out / f"generation-{scenes.split}{args.scene}.png"
    ctx_text = ", ".join(f"{m.name} {k}" for m, k in zip(run.modalities, context))
    out.mkdir(parents=True, exist_ok=True)
    grids = generation_figure(run.model, scenes, args.scene, context, args.samples, args.seed, png,
                              f"{run.spec.name} step {run.step}, {scenes.split} scene {args.scene}; context: {ctx_text}")  # fmt: skip
    if not grids:
        _fail(f"{run.dir}: the run has no drawn camera modality to render")
    # mean squared error per element of each sample, and of the samples' mean, against the truth
    errors = {name: {"samples": [float(((g[r] - g[0]) ** 2).mean()) for r in range(1, len(g))],
                     "mean_of_samples": float(((g[1:].mean(0) - g[0]) ** 2).mean())} for name, g in grids.items()}  # fmt: skip
    result = {"experiment": "cross-modal generation at the 4x4 viewpoint grid", "step": run.step,
              "split": scenes.split, "scene": args.scene, "context": dict(zip([m.name for m in run.modalities], context)),
              "samples": args.samples, "seed": args.seed, "mse": errors, "png": str(png)}  # fmt: skip
    write_json(out / f"generation-{scenes.split}{args.scene}.json", result)
    return result


def _missing(args, run) -> dict:
    from ..training.validation import missing_modality
    from ..evaluation.plots import plot_missing

    sizes = args.sizes if args.sizes is not None else run.spec.train.missing_sizes
    if sizes and not (len(sizes) == 2 and 1 <= sizes[0] <= sizes[1] <= len(run.modalities)):
        _fail(f"--sizes: expected A,B with 1 <= A <= B <= {len(run.modalities)}, got {sizes}")
    scenes = run.scenes("val")
    result = missing_modality(run.model, scenes, sizes, run.spec.train.missing_mode, num_scenes=args.scenes,
                              max_targets=run.spec.train.max_targets, seed=args.seed)  # fmt: skip
    out = run.dir / "eval"
    result.update(experiment="missing-modality robustness (negative ELBO, nats per target dimension)", step=run.step,
                  trained_sizes=run.spec.train.missing_sizes, split=scenes.split)  # fmt: skip
    write_json(out / "missing.json", result)
    plot_missing(result, out / "missing.png", title=f"{run.spec.name}, step {run.step}, sizes {sizes or 'all'}")
    return {"json": str(out / "missing.json"), "plot": str(out / "missing.png"), **result}


def _predict(args, run) -> dict:
    from ..evaluation.prediction import prediction_mse

    scenes = run.scenes(args.split)
    if args.context >= scenes.views:
        _fail(f"--context: at most {scenes.views - 1} context views ({scenes.views} views per scene)")
    sources = _modality_ids(run, args.sources, "--sources")
    reference = "train" if run.regenerated is None else "val"  # a checkpoint copied alone remakes val/test only
    table = prediction_mse(run.model, scenes, run.scenes(reference), context_views=args.context,
                           context_modalities=sources, num_scenes=args.scenes, samples=args.samples,
                           seed=args.seed, temperature=args.temperature)  # fmt: skip
    result = {"experiment": "per-element MSE of predicted target views vs the mean of the scene's own views and the "
                            "dataset's mean", "step": run.step, "split": scenes.split, "context_views": args.context,
              "sources": args.sources or [m.name for m in run.modalities], "scenes": min(args.scenes, scenes.num_scenes),
              "samples": args.samples, "temperature": args.temperature, "seed": args.seed,
              "dataset_mean_split": reference, "mse": table}  # fmt: skip
    write_json(run.dir / "eval" / "prediction.json", result)
    return {"json": str(run.dir / "eval" / "prediction.json"), **result}


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
    result = {"experiment": "scene classification, paper Eq. 6", "step": run.step, "k": args.k,
              "objects": args.objects, "samples": args.samples, "seed": args.seed, "results": results}  # fmt: skip
    write_json(out / "classification.json", result)
    orientation = "code" if args.orientation == "code" else "paper"
    plot_classification(results, out / "classification.png", orientation)
    return {"json": str(out / "classification.json"), "plot": str(out / "classification.png"), "results": results}


def _report(args) -> dict:
    from ..evaluation.report import make_report

    command = f"gmn-eval report {args.directory}" + (" --no-train" if args.no_train else "")
    result = make_report(args.directory, load_registry(), train_missing=not args.no_train,
                         progress=not args.no_progress, command=command)  # fmt: skip
    for row in result["claims"]:
        print(f"{row['claim']}: {row['statistic']}: {row['difference']:+.4f} [{row['low']:+.4f}, {row['high']:+.4f}] "
              f"{row['verdict']}", file=sys.stderr)  # fmt: skip
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="gmn-eval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("report", help="train, evaluate and decide the claims of a report directory (report.toml)")
    r.add_argument("directory", help="a directory holding report.toml and the specs it names, e.g. specs/repro/")
    r.add_argument("--no-train", action="store_true", help="evaluate the runs as they are; train nothing")
    r.add_argument("--no-progress", action="store_true")
    r.add_argument("--threads", type=int, default=0, help="torch CPU threads of the evaluations; 0 (default): chosen "
                   "by measurement; N fixes them (training follows each spec's train.threads)")
    t = sub.add_parser("claims", help="one markdown table of the claims of several reports (claim x recipe)")
    t.add_argument("sources", nargs="+", metavar="[LABEL=]SOURCE",
                   help="a report directory (its OUT/report/claims.json, as `gmn-eval report DIR` wrote it) or a "
                        "claims.json; LABEL names its recipe column (default: report.toml's recipe, else its name)")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("run", help="run directory holding checkpoint.pt (a spec's train.out)")
    common.add_argument("--seed", type=int, default=0)
    common.add_argument("--no-progress", action="store_true")
    common.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda, cuda:N, mps")
    common.add_argument("--threads", type=int, default=0, help="torch CPU threads; 0 (default): chosen by "
                        "measurement as the machine's load changes; N fixes them (the same bits every time)")
    d = sub.add_parser("density", parents=[common], help="cross-modal density (IWAE), paper Fig. 3")
    d.add_argument("--scenes", type=int, default=96, help="validation scenes (authors: 1200)")
    d.add_argument("--samples", type=int, default=5, help="importance samples (authors: 5)")
    d.add_argument("--counts", type=_ints, default=[0, 1, 5, 10], help="context sizes per modality")
    d.add_argument("--targets", type=lambda s: s.split(","), help="target modalities (default: all)")
    d.add_argument("--sources", type=lambda s: s.split(","), help="source modalities (default: all others)")
    d.add_argument("--gray", action="store_true", help="also score image targets as GRAY = max(R, G, B)")
    g = sub.add_parser("generate", parents=[common], help="cross-modal generation at a 4x4 viewpoint grid, Fig. 1")
    g.add_argument("--scene", type=int, default=0, help="validation scene")
    g.add_argument("--samples", type=int, default=3, help="samples of z from the prior")
    g.add_argument("--context", help="NAME=K,...: the first K views of each named modality, 0 for the others "
                   "(default: as each modality's family says, Family.figure_context: one view of a family that draws, "
                   "e.g. images, all views of the others, e.g. haptics, as Fig. 1; the JSON lists the counts used)")
    m = sub.add_parser("missing", parents=[common], help="missing-modality robustness, paper Fig. 5")
    m.add_argument("--scenes", type=int, default=96, help="validation scenes")
    m.add_argument("--sizes", type=_ints, help="A,B: the combinations of val_missing (default: the run's)")
    p = sub.add_parser("predict", parents=[common], help="MSE of predicted views vs the scene's own mean view")
    p.add_argument("--scenes", type=int, default=16, help="validation scenes")
    p.add_argument("--context", type=int, default=5, help="context views of each source modality")
    p.add_argument("--sources", type=lambda s: s.split(","), help="context modalities (default: all)")
    p.add_argument("--samples", type=int, default=4, help="renders averaged per prediction")
    p.add_argument("--temperature", type=float, default=1.0,
                   help="of the prior's draws: 1 samples it, 0 renders its means (then one sample is enough)")
    p.add_argument("--split", choices=("val", "test", "train"), default="val",
                   help="the run's split scored (test: data.test_scenes, never used for selection)")
    c = sub.add_parser("classify", parents=[common], help="scene classification, paper Eq. 6 / Fig. 4")
    c.add_argument("--blocks", type=_ints, default=[4, 6], help="held-out object sizes (paper: 4 and 6)")
    c.add_argument("--objects", type=int, default=10, help="held-out objects per size (paper: 1000)")
    c.add_argument("--k", type=int, default=10, help="scenes per classification group (paper: 10)")
    c.add_argument("--contexts", type=_ints, default=[0, 1, 3, 5], help="context views per modality (paper: 0..5)")
    c.add_argument("--samples", type=int, default=5, help="importance samples (paper: 50)")
    c.add_argument("--orientation", choices=["paper", "code", "both"], default="paper",
                   help="argmax over contexts (Eq. 6) or over observations (the authors' script)")  # fmt: skip
    args = parser.parse_args(argv)
    for name in ("scenes", "samples", "objects", "k"):
        if getattr(args, name, 1) < 1:
            _fail(f"--{name}: must be >= 1")
    if getattr(args, "threads", 0) < 0:
        _fail("--threads: must be >= 0")
    if args.command == "claims":
        from ..evaluation.report import claims_overview

        with user_errors():
            sys.stdout.write(claims_overview(args.sources))
        return
    if args.command != "report" and not 0 <= args.seed < SEED_LIMIT:
        _fail(f"--seed: must be in [0, 2**32), got {args.seed}")
    if args.command == "predict" and args.context < 0:
        _fail(f"--context: must be >= 0 (context views of each source modality), got {args.context}")
    if args.command == "predict" and not args.temperature >= 0:
        _fail(f"--temperature: must be >= 0, got {args.temperature}")
    with user_errors(), contextlib.ExitStack() as stack:
        started = time.perf_counter()
        from ..runtime.threads import set_threads

        stack.callback(set_threads, set_threads(args.threads))  # main() called in-process leaves the setting alone
        if args.command == "report":
            report = _report(args)
            report["seconds"] = round(time.perf_counter() - started, 1)
            print(json.dumps(report, indent=2))
            return
        from ..evaluation.runs import load_run
        from ..training.experiment import torch_device

        torch_device(args.device, "gmn-eval: --device", "--device ")  # as train.device is checked
        run = load_run(args.run, load_registry(), progress=not args.no_progress, device=args.device)
        _check_writable(run.dir / "eval")  # before minutes of evaluation, not after
        commands = {"density": _density, "generate": _generate, "missing": _missing, "predict": _predict,
                    "classify": _classify}
        report = commands[args.command](args, run)
        report["seconds"] = round(time.perf_counter() - started, 1)
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
