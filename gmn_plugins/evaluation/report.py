"""A reproduction report: train APoE and the baseline on a few training seeds, evaluate them on the same test scenes,
and decide the paper's claims by paired bootstrap (issue 11). ``gmn-eval report specs/repro/`` runs it.

The directory holds ``report.toml`` (a ``ReportSpec``) and the experiment specs its claims name. Each claim is fixed
before training, as a statistic of model A (``models[0]``, APoE) minus model B (``models[1]``, the baseline), paired
by training seed and evaluation unit (``bootstrap.py``):

1. ``missing`` (paper Fig. 5): per test scene, the negative ELBO (nats/dim) with a combination of ``small_sizes``
   modalities minus the negative ELBO with the training rule's combination. Claim: A - B < 0 (the baseline's gap
   is larger). Fig. 5 b/d: trained on ``missing_sizes = [7, 8]``, scored at 1-2 modalities it never saw; Fig. 5
   a/c: trained on ``[1, 2]``, scored at every size. One ``[missing]`` table, or ``[[missing]]`` per spec.
2. ``density`` (Fig. 3): per test scene and direction (source -> target), the IWAE log-likelihood (nats/dim) with 0
   target-modality views, averaged over ``source_counts``. Claim 2a: A - B > 0. Claim 2b: the same with the gap at
   1..10 target views subtracted, A - B > 0 (the gap is largest in the fully cross-modal setting).
3. ``classification`` (Fig. 4, Eq. 6): per held-out object and context mask, top-1 correctness averaged over the
   context sizes (``rounds`` sets of objects per size). Claim: A - B > 0.

Beside the claims, ``[power]`` (``PowerCheck``) states how much each run uses its context (issue 29): a claim
decided on models that ignore what they observe says little about the paper's.

Runs go to ``OUT/<spec stem>/<model>-seed<s>`` (train.out) and resume; each run's evaluation is cached in
``RUN/eval/report-<claim>.json`` with its settings and step, so re-running the report after more training
re-evaluates only what changed. The report (``report.md``, ``claims.json`` and the figures) goes to ``OUT/report``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import attrs
import numpy as np
import torch

from ..runtime.files import atomic_write, write_json
from ..core.spec import SpecError, load_spec, read_toml, structure
from .bootstrap import paired_bootstrap, verdict


CLAIMS = ("missing", "density", "classification")
# part of every cached evaluation's key: bump a claim's when what its evaluation stores changes (missing 2: the KL
# part of each negative ELBO)
EVALUATION_VERSIONS = {"missing": 2, "density": 1, "classification": 1, "power": 1}


@attrs.frozen
class MissingClaim:
    """Claim 1. ``spec``: experiment spec (relative to the report directory) with ``train.missing_sizes``;
    ``scenes``: test scenes; ``small_sizes``: the combination sizes scored against the training rule's (one drawn
    uniformly per scene, then a combination of that size); ``figure``: the paper's panel it tests, for the report's
    rows (Fig. 5 b/d: trained on 7-8 modalities, scored at 1-2; Fig. 5 a/c: trained on 1-2, scored at every size)."""

    spec: str
    scenes: int = 64
    small_sizes: list[int] = attrs.Factory(lambda: [1, 2])
    figure: str = "Fig. 5"


@attrs.frozen
class DensityClaim:
    """Claim 2. ``directions``: "SOURCE->TARGET", with ":gray" after the target for GRAY = max(R, G, B)."""

    spec: str
    scenes: int = 64
    samples: int = 5
    source_counts: list[int] = attrs.Factory(lambda: [1, 5, 10])
    target_counts: list[int] = attrs.Factory(lambda: [0, 1, 5, 10])
    directions: list[str] = attrs.Factory(lambda: ["haptic->rgb", "haptic->rgb:gray", "rgb->haptic"])


@attrs.frozen
class ClassificationClaim:
    """Claim 3. ``objects`` held-out objects per size in ``blocks``, in groups of ``k``; ``samples`` importance
    samples per score (paper: 50); ``contexts``: context views per modality. ``rounds``: the evaluation repeated on
    that many disjoint sets of ``objects`` objects per size (round r: held-out objects r·objects..(r+1)·objects-1,
    evaluation seed ``eval_seed`` + r), every object a unit of the bootstrap: more units for a narrower interval,
    where round 0 is the evaluation with ``rounds = 1`` and each round is cached on its own, so raising ``rounds``
    evaluates only the new rounds."""

    spec: str
    blocks: list[int] = attrs.Factory(lambda: [4, 6])
    objects: int = 20
    k: int = 10
    contexts: list[int] = attrs.Factory(lambda: [1, 3, 5])
    samples: int = 10
    rounds: int = 1


@attrs.frozen
class PowerCheck:
    """Not a claim: how much each run uses its context, for every spec the claims name (issue 29). Per modality, the
    IWAE log-likelihood (nats/dim) of its last views with ``counts[1]`` of its own views as context minus with
    ``counts[0]`` (``density.density_scenes``, ``samples`` importance samples), over ``scenes`` scenes; per 3-channel
    image modality, the chroma correlation of the prior's and the posterior's renders with the truth from
    ``colour_views`` of its views (``colour.colour_transfer``)."""

    scenes: int = 64
    samples: int = 5
    counts: list[int] = attrs.Factory(lambda: [0, 10])
    colour_views: int = 5


@attrs.frozen
class ReportSpec:
    """``report.toml``. ``models``: ``model.inference`` of A and B; ``seeds``: ``train.seed`` of each run (the
    datasets keep their spec's ``seed``); ``overrides``: dotted ``field=value`` applied to every run (after the
    spec, before model and seed); ``split``: the evaluation split (``test``: tune on val, report on test);
    ``trend``: also evaluate the checkpoints that every run of a spec kept (``train.keep_every``) and draw each
    claim's difference against the step (does a claim appear with more steps?)."""

    name: str
    recipe: str = ""  # how the runs were trained, in a word ("paper text", "fast"): ``claims_overview``'s column
    out: str = "runs/repro"
    models: list[str] = attrs.Factory(lambda: ["apoe", "baseline"])
    seeds: list[int] = attrs.Factory(lambda: [1, 2])
    split: str = "test"
    overrides: list[str] = attrs.Factory(list)
    bootstrap: int = 2000
    eval_seed: int = 0
    generation_scene: int = 0
    trend: bool = False  # also decide every claim at each checkpoint the runs kept (train.keep_every)
    missing: list[MissingClaim] = attrs.Factory(list)  # [missing], or [[missing]] for one claim per spec
    density: DensityClaim | None = None
    classification: ClassificationClaim | None = None
    power: PowerCheck | None = None


def load_report_spec(directory: str | Path) -> ReportSpec:
    """Read ``DIR/report.toml``. Raises ``SpecError`` (one line: file and field)."""
    path = Path(directory) / "report.toml"
    if not path.is_file():
        raise SpecError(f"{path}: no such file (a report directory holds report.toml and the specs it names)")
    raw = read_toml(path)
    if isinstance(raw.get("missing"), dict):  # one [missing] table: a list of one
        raw["missing"] = [raw["missing"]]
    spec = structure(raw, ReportSpec, str(path))
    problems = []
    if len(spec.models) != 2 or len(set(spec.models)) != 2:
        problems.append(f"{path}: models: expected two different model.inference values, got {spec.models}")
    if not spec.seeds or len(set(spec.seeds)) != len(spec.seeds):
        problems.append(f"{path}: seeds: expected distinct training seeds, got {spec.seeds}")
    for key, _, c in claim_list(spec):
        if not (Path(directory) / c.spec).is_file():
            problems.append(f"{path}: {key}.spec: no such file {Path(directory) / c.spec}")
    specs = [c.spec for c in spec.missing]
    if len(set(specs)) != len(specs):
        problems.append(f"{path}: missing: expected one claim per spec (their evaluations share the runs' cache), "
                        f"got specs {specs}")  # fmt: skip
    d = spec.density
    if d is not None and (len(d.target_counts) < 2 or d.target_counts[0] != 0):
        problems.append(f"{path}: density.target_counts: expected 0 first (the fully cross-modal setting), then the "
                        f"counts it is compared with, got {d.target_counts}")  # fmt: skip
    c = spec.classification
    if c is not None and (c.rounds < 1 or c.k < 1 or c.objects < c.k):
        problems.append(f"{path}: classification: expected rounds >= 1 and objects >= k >= 1, got rounds {c.rounds}, "
                        f"objects {c.objects}, k {c.k}")  # fmt: skip
    p = spec.power
    if p is not None and (len(p.counts) != 2 or not 0 <= p.counts[0] < p.counts[1] or p.scenes < 1
                          or p.samples < 1 or p.colour_views < 1):  # fmt: skip
        problems.append(f"{path}: power: expected counts = [fewer, more] context views (>= 0), scenes, samples and "
                        f"colour_views >= 1, got counts {p.counts}, scenes {p.scenes}, samples {p.samples}, "
                        f"colour_views {p.colour_views}")  # fmt: skip
    if not any(getattr(spec, c) for c in ("missing", "density", "classification")):
        problems.append(f"{path}: no claim: give at least one of [missing], [density], [classification]")
    if problems:
        raise SpecError("\n".join(problems))
    return spec


def claim_list(report: ReportSpec) -> list[tuple[str, str, object]]:
    """Every claim of ``report`` as ``(key, kind, claim)``, in the report's order: kind is one of ``CLAIMS``; key
    names it in the report and its evaluations (``missing[i]`` when there are several)."""
    out = []
    for kind in CLAIMS:
        found = getattr(report, kind)
        group = found if isinstance(found, list) else [] if found is None else [found]
        out += [(f"{kind}[{i}]" if len(group) > 1 else kind, kind, c) for i, c in enumerate(group)]
    return out


@attrs.frozen
class PlannedRun:
    claim_spec: str  # the spec file, as named in report.toml
    model: str
    seed: int
    out: Path
    spec: object  # ExperimentSpec
    spec_file: str


def plan(directory: str | Path, report: ReportSpec) -> dict[str, list[PlannedRun]]:
    """{spec file: its runs (model-major, then seed)} for every spec a claim names. Raises ``SpecError``."""
    runs: dict[str, list[PlannedRun]] = {}
    for _, _, c in claim_list(report):
        if c.spec in runs:
            continue
        file = str(Path(directory) / c.spec)
        stem = Path(c.spec).stem
        runs[c.spec] = []
        for model in report.models:
            for seed in report.seeds:
                out = Path(report.out) / stem / f"{model}-seed{seed}"
                spec = load_spec(file, [*report.overrides, f"model.inference={json.dumps(model)}",
                                        f"train.seed={seed}", f"train.out={json.dumps(str(out))}"])  # fmt: skip
                if report.split != "val" and not getattr(spec.data, f"{report.split}_scenes", 0):
                    raise SpecError(f"{file}: data.{report.split}_scenes: the report evaluates on the "
                                    f"{report.split!r} split; give it scenes")  # fmt: skip
                runs[c.spec].append(PlannedRun(c.spec, model, seed, out, spec, file))
    return runs


def _cached(path: Path, key: dict, compute) -> dict:
    """The JSON result at ``path`` when it was made with ``key``; else ``compute()``, written atomically with the
    seconds it took, or the ``"seconds"`` that ``compute()`` returns (a result assembled from cached parts gives the
    sum of the parts' own seconds)."""
    if path.is_file():
        try:
            stored = json.loads(path.read_text())
            if stored.get("key") == key:
                return stored
        except (json.JSONDecodeError, OSError):
            pass
    started = time.perf_counter()
    computed = compute()
    result = json.loads(json.dumps({"key": key, "seconds": round(time.perf_counter() - started, 1), **computed}))
    write_json(path, result)
    return result


def _missing_values(run, claim: MissingClaim, report: ReportSpec) -> dict:
    from ..data.masks import fixed_masks
    from ..training.validation import missing_modality, neg_elbo_scenes

    scenes = run.scenes(report.split)
    M = len(run.modalities)
    ids = np.arange(min(claim.scenes, scenes.num_scenes))
    rule = fixed_masks(report.eval_seed, scenes.split, ids, M, run.spec.train.missing_sizes)
    rule = np.ones((len(ids), M), bool) if rule is None else rule
    small = np.zeros((len(ids), M), bool)
    for n, scene in enumerate(ids):  # one size of small_sizes, then one subset, uniformly, per scene
        rng = np.random.default_rng([report.eval_seed, 13, int(scene)])
        size = min(int(rng.choice(claim.small_sizes)), M)
        small[n, rng.choice(M, size, replace=False)] = True
    mode, targets = run.spec.train.missing_mode, run.spec.train.max_targets
    with torch.no_grad():
        torch.manual_seed(report.eval_seed)
        rule_nats, rule_dims, rule_kl = neg_elbo_scenes(run.model, scenes, ids, rule, mode, targets, report.eval_seed)
        torch.manual_seed(report.eval_seed)
        small_nats, small_dims, small_kl = neg_elbo_scenes(run.model, scenes, ids, small, mode, targets,
                                                           report.eval_seed)  # fmt: skip
    figure = missing_modality(run.model, scenes, run.spec.train.missing_sizes, mode, num_scenes=claim.scenes,
                              max_targets=targets, seed=report.eval_seed)  # fmt: skip
    return {"rule": (rule_nats / rule_dims).tolist(), "small": (small_nats / small_dims).tolist(),
            "rule_kl": (rule_kl / rule_dims).tolist(), "small_kl": (small_kl / small_dims).tolist(),
            "small_sizes": small.sum(1).tolist(), "figure": figure}  # fmt: skip


def _direction(run, text: str) -> tuple[int, int, bool]:
    names = [m.name for m in run.modalities]
    source, _, target = text.partition("->")
    target, _, gray = target.partition(":")
    if source not in names or target not in names or gray not in ("", "gray"):
        raise SpecError(f"report.toml: density.directions: {text!r}: expected SOURCE->TARGET[:gray] with "
                        f"modalities of {names}")  # fmt: skip
    return names.index(source), names.index(target), gray == "gray"


def _density_values(run, claim: DensityClaim, report: ReportSpec) -> dict:
    from .density import density_scenes

    scenes = run.scenes(report.split)
    out = {}
    for text in claim.directions:
        source, target, gray = _direction(run, text)
        values = density_scenes(run.model, scenes, target, source, claim.target_counts, num_scenes=claim.scenes,
                                samples=claim.samples, seed=report.eval_seed, gray_target=gray,
                                source_counts=claim.source_counts)  # fmt: skip
        out[text] = values.tolist()  # (source counts, target counts, scenes)
    return {"values": out}


def _classification_values(open_run, claim: ClassificationClaim, report: ReportSpec, part) -> dict:
    """Each held-out size's records through ``part(name, compute)``, one part per size and round, cached on its own:
    at the repro report's size one size takes about half an hour per run, and an interrupted evaluation keeps the
    parts it finished. A size's rounds are merged into one record per mask, context size and orientation: the
    objects' ``correct`` in round order, ``top1`` their mean."""
    from .classification import classify

    def records(blocks: int, round_: int) -> dict:
        run = open_run()
        # held-out object i is the same in every set (its generator is seeded by (seed, split, i)): the rounds of
        # a larger set are those of a smaller one, so a cached round stays valid when ``rounds`` grows
        scenes = run.heldout_scenes(blocks, claim.objects * claim.rounds)
        return {"records": classify(run.model, scenes, k=claim.k, groups=claim.objects // claim.k,
                                    contexts=claim.contexts, samples=claim.samples, seed=report.eval_seed + round_,
                                    first=round_ * claim.objects)}  # fmt: skip

    out, seconds = {}, 0.0
    for b in claim.blocks:
        rounds = [part(f"blocks{b}" + (f"-round{r}" if r else ""), lambda b=b, r=r: records(b, r))
                  for r in range(claim.rounds)]  # fmt: skip
        out[str(b)] = [_merged_rounds(same) for same in zip(*(r["records"] for r in rounds))]
        seconds += sum(r["seconds"] for r in rounds)
    return {"records": out, "seconds": round(seconds, 1)}  # the parts' cost, also when they were cached before


def _merged_rounds(records: tuple[dict, ...]) -> dict:
    """One ``classify`` record from the same record (mask, context size, orientation) of each round."""
    correct = [hit for rec in records for hit in rec["correct"]]
    groups = sum(rec["groups"] for rec in records)
    return {**records[0], "correct": correct, "top1": float(np.mean(correct)), "groups": groups,
            "top5": float(sum(rec["top5"] * rec["groups"] for rec in records) / groups)}


def _power_values(run, check: PowerCheck, report: ReportSpec) -> dict:
    from .colour import colour_modalities, colour_transfer
    from .density import density_scenes

    scenes = run.scenes(report.split)
    gains = {}
    for i, m in enumerate(run.modalities):
        values = density_scenes(run.model, scenes, i, None, check.counts, num_scenes=check.scenes,
                                samples=check.samples, seed=report.eval_seed)[0]  # fmt: skip
        gains[m.name] = (values[1] - values[0]).tolist()  # per scene
    colour = {}
    for name in colour_modalities(scenes):
        torch.manual_seed(report.eval_seed)
        colour[name] = colour_transfer(run.model, scenes, check.scenes, check.colour_views, modality=name)
    return {"modalities": list(gains), "gain": gains, "colour": colour}  # the run's order (the JSON sorts keys)


def _evaluate(planned: PlannedRun, claim_name: str, claim, report: ReportSpec, open_run,
              kept: tuple[int, Path] | None = None) -> dict:  # fmt: skip
    """The cached evaluation of one run for one claim, at its last checkpoint or at the ``kept`` (step, path) one;
    ``open_run()`` gives the loaded ``Run`` when it must be computed."""
    step = _checkpoint_step(planned.out) if kept is None else kept[0]
    settings = attrs.asdict(claim, filter=lambda field, _: field.name != "figure")  # a label: not a setting
    key = {"claim": settings, "split": report.split, "eval_seed": report.eval_seed,
           "version": EVALUATION_VERSIONS[claim_name], "step": step}  # fmt: skip
    stem = f"report-{claim_name}" if kept is None else f"report-{claim_name}-step-{step}"

    # a piece of the evaluation, cached on its own as STEM-NAME.json; its key leaves out ``rounds`` (each round is
    # a part of its own, the same whatever the number of rounds)
    part_key = {**key, "claim": {k: v for k, v in settings.items() if k != "rounds"}}

    def part(name: str, compute_part) -> dict:
        return _cached(planned.out / "eval" / f"{stem}-{name}.json", {**part_key, "part": name}, compute_part)

    compute = {"missing": lambda: _missing_values(open_run(), claim, report),
               "density": lambda: _density_values(open_run(), claim, report),
               "classification": lambda: _classification_values(open_run, claim, report, part),
               "power": lambda: _power_values(open_run(), claim, report)}
    return _cached(planned.out / "eval" / f"{stem}.json", key, compute[claim_name])


_STEPS: dict[tuple[str, int], int] = {}


def _checkpoint_step(out: Path) -> int:
    """The step of ``out/checkpoint.pt``, read (and checksum-verified) once per file version: a v4 checkpoint is
    ~1.5 GB, and the report asks for each run's step once per claim and again for its table."""
    from ..training.checkpoint import load_checkpoint

    path = out / "checkpoint.pt"
    if not path.is_file():  # load_checkpoint's one-line CheckpointError
        return int(load_checkpoint(path)["step"])
    key = (str(path.resolve()), path.stat().st_mtime_ns)
    if key not in _STEPS:
        _STEPS[key] = int(load_checkpoint(path)["step"])
    return _STEPS[key]


def _partial_runs(runs: dict[str, list[PlannedRun]]) -> list[tuple[PlannedRun, int]]:
    """The runs whose last checkpoint is short of their spec's ``train.steps``, with that checkpoint's step."""
    steps = [(p, _checkpoint_step(p.out)) for group in runs.values() for p in group]
    return [(p, step) for p, step in steps if step < p.spec.train.steps]


def _stack(results: dict[str, list[dict]], model: str, extract) -> np.ndarray:
    """(seeds, units) array of ``extract(result)`` for each seed's result of ``model``."""
    return np.stack([np.asarray(extract(r), float) for r in results[model]])


def claims_table(report: ReportSpec, evaluations: dict[str, dict[str, list[dict]]]) -> list[dict]:
    """One row per claim statistic: ``{"claim", "statistic", "side", **paired_bootstrap, "verdict"}``.
    ``evaluations[key][model]``: each seed's cached evaluation (``report.seeds`` order), keyed as ``claim_list``."""
    a, b = report.models
    rows = []

    def add(claim: str, statistic: str, side: str, extract, results) -> None:
        result = paired_bootstrap(_stack(results, a, extract), _stack(results, b, extract), report.bootstrap,
                                  report.eval_seed)  # fmt: skip
        rows.append({"claim": claim, "statistic": statistic, "side": side, **result,
                     "verdict": verdict(result, side)})  # fmt: skip

    for key, kind, claim in claim_list(report):
        if kind == "missing" and key in evaluations:
            sizes = "-".join(map(str, claim.small_sizes))
            add(f"1 missing modalities ({claim.figure})", f"{claim.spec}: neg. ELBO at {sizes} modalities minus at "
                "the training rule (nats/dim)", "less", lambda r: np.subtract(r["small"], r["rule"]),
                evaluations[key])  # fmt: skip
    if "density" in evaluations:
        for text in report.density.directions:
            def cross(r, text=text):  # (source counts, target counts, scenes) -> per scene, 0 target views
                return np.asarray(r["values"][text])[:, 0].mean(0)

            def excess(r, text=text):  # the 0-view value minus the mean over the other target counts
                v = np.asarray(r["values"][text])
                return v[:, 0].mean(0) - v[:, 1:].mean((0, 1))

            add("2a cross-modal density (Fig. 3)", f"{text}: IWAE log-lik., 0 target views (nats/dim)", "greater",
                cross, evaluations["density"])  # fmt: skip
            others = "/".join(map(str, report.density.target_counts[1:]))
            add("2b cross-modal density (Fig. 3)", f"{text}: 0-view log-lik. minus {others}-view log-lik.", "greater",
                excess, evaluations["density"])  # fmt: skip
    if "classification" in evaluations:
        first = evaluations["classification"][a][0]["records"]
        masks = list(dict.fromkeys(rec["mask"] for recs in first.values() for rec in recs))
        for mask in masks:
            def correct(r, mask=mask):  # per held-out object (all sizes), top-1 correctness averaged over contexts
                per_size = []
                for records in r["records"].values():
                    rows_ = [rec["correct"] for rec in records if rec["mask"] == mask and rec["orientation"] == "paper"]
                    per_size.append(np.mean(rows_, axis=0))
                return np.concatenate(per_size)

            add("3 classification (Fig. 4)", f"top-1 accuracy, context {mask}", "greater", correct,
                evaluations["classification"])  # fmt: skip
    return rows


def _format(x: float) -> str:
    return f"{x:+.4f}" if abs(x) < 100 else f"{x:+.1f}"


def write_report(directory: Path, report: ReportSpec, runs: dict[str, list[PlannedRun]],
                 evaluations: dict[str, dict[str, list[dict]]], rows: list[dict], figures: list[Path],
                 command: str, trend: dict[str, dict[int, list[dict]]] | None = None,
                 power: dict[str, list[tuple[PlannedRun, dict]]] | None = None,
                 partial: list[tuple[PlannedRun, int]] | None = None) -> Path:  # fmt: skip
    """``OUT/report/report.md`` and ``claims.json``; returns the markdown's path. ``power``: {spec file: [(run, its
    cached ``PowerCheck`` evaluation)]}; ``partial``: the runs found short of their steps before evaluation, with
    their step (default: looked up now)."""
    out = Path(report.out) / "report"
    a, b = report.models
    lines = [f"# Reproduction report: {report.name}", "",
             f"Made by `{command}`. Model A = {a}, model B = {b}; training seeds {report.seeds}; evaluated on the "
             f"`{report.split}` split with evaluation seed {report.eval_seed}; 95 % paired-bootstrap intervals of "
             f"A - B over training seeds and evaluation units ({report.bootstrap} replicates).", ""]  # fmt: skip
    partial = _partial_runs(runs) if partial is None else partial
    if partial:
        total = sum(len(group) for group in runs.values())
        lines += [f"**Interim report**: {len(partial)} of {total} runs have not reached their spec's `train.steps` ("
                  + ", ".join(f"`{p.out}` at step {step} of {p.spec.train.steps}" for p, step in partial)
                  + "); each is read at its last checkpoint.", ""]  # fmt: skip
    lines += ["## Claims", "", f"| claim | statistic | {a} | {b} | {a} - {b} [95 % interval] | per seed | verdict |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        per_seed = ", ".join(_format(x) for x in r["per_seed"])
        claimed = ">" if r["side"] == "greater" else "<"
        lines.append(f"| {r['claim']} (claimed: A - B {claimed} 0) | {r['statistic']} | {_format(r['a'])} | "
                     f"{_format(r['b'])} | {_format(r['difference'])} [{_format(r['low'])}, {_format(r['high'])}] | "
                     f"{per_seed} | **{r['verdict']}** |")  # fmt: skip
    for key, kind, claim in claim_list(report):
        if kind == "missing" and key in evaluations:
            lines += _missing_by_size(report, claim, evaluations[key])
    if power:
        lines += _power_lines(report, power)
    if trend:
        lines += ["", "## Trend over kept checkpoints", "", f"{a} - {b} [95 % interval] at each checkpoint that every "
                  "run of a spec kept, verdict initial (h: holds, x: does not hold, ?: not distinguishable)."]
        mark = {"holds": "h", "does not hold": "x", "not distinguishable": "?"}
        for spec_file, by_step in trend.items():
            lines += ["", f"`{spec_file}`:", "",
                      "| claim | statistic | " + " | ".join(f"step {step}" for step in by_step) + " |",
                      "|---|---|" + "---|" * len(by_step)]  # fmt: skip
            for j, r in enumerate(next(iter(by_step.values()))):
                cells = [f"{_format(t[j]['difference'])} [{_format(t[j]['low'])}, {_format(t[j]['high'])}] "
                         f"{mark[t[j]['verdict']]}" for t in by_step.values()]  # fmt: skip
                lines.append(f"| {r['claim']} | {r['statistic']} | " + " | ".join(cells) + " |")
    lines += ["", "## Cost", "", "Evaluation minutes (one process, as measured when each cached result was made):", "",
              "| claim | " + " | ".join(f"{p.model} seed {p.seed}" for p in next(iter(runs.values()))) + " |",
              "|---|" + "---|" * len(next(iter(runs.values())))]  # fmt: skip
    for name, by_model in evaluations.items():
        cells = [f"{r.get('seconds', float('nan')) / 60:.1f}" for model in report.models for r in by_model[model]]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "## Runs", "", "| spec | model | train.seed | steps | last val -ELBO (nats/dim) | run directory |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for spec_file, planned in runs.items():
        for p in planned:
            val = _last_val(p.out)
            lines.append(f"| {spec_file} | {p.model} | {p.seed} | {_checkpoint_step(p.out)} | "
                         f"{'-' if val is None else f'{val:.4f}'} | `{p.out}` |")  # fmt: skip
    lines += ["", "## Figures", ""]
    lines += [f"![{f.stem}]({f.name})" for f in figures]
    lines += ["", "`training-SPEC.png`: each run's validation curve (the trend over checkpoints); each run's own "
              "`loss.png` and `val.jsonl` hold the rest.", ""]  # fmt: skip
    text = "\n".join(lines)
    atomic_write(out / "report.md", lambda f: f.write(text.encode()))
    write_json(out / "claims.json", {"report": attrs.asdict(report), "claims": rows,
                                     "partial": {str(p.out): step for p, step in partial},
                                     "power": {spec_file: [{"model": p.model, "seed": p.seed, **_power_summary(r)}
                                                           for p, r in planned] for spec_file, planned in
                                               (power or {}).items()},
                                     "trend": {spec_file: {str(step): r for step, r in by_step.items()}
                                               for spec_file, by_step in (trend or {}).items()}})  # fmt: skip
    return out / "report.md"


def claims_overview(sources: list[str]) -> str:
    """One markdown table of the claims of several reports (issue 29: claim x recipe x verdict). Each source is a
    report directory (its ``report.toml``'s ``OUT/report/claims.json``, ``OUT`` relative to the working directory)
    or a ``claims.json``, optionally as ``LABEL=SOURCE``; the recipe column is LABEL, else the report's ``recipe``,
    else its ``name``, with " (interim)" when some of its runs were short of their steps. Rows: by claim number,
    then in the order of the sources. Raises ``SpecError`` (one line)."""
    rows = []
    for order, source in enumerate(sources):
        label, _, given = source.rpartition("=") if "=" in source and not Path(source).exists() else ("", "", source)
        path = Path(given)
        if not path.exists():
            raise SpecError(f"{path}: no such report directory or claims.json")
        if path.is_dir():
            path = Path(load_report_spec(path).out) / "report" / "claims.json"
            if not path.is_file():
                raise SpecError(f"{path}: no such file (run `gmn-eval report {given} --no-train` first, from the "
                                "directory the runs live in)")  # fmt: skip
        try:
            stored = json.loads(path.read_text())
            claims, spec = stored["claims"], stored["report"]
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise SpecError(f"{path}: not a report's claims.json ({type(exc).__name__}: {exc})") from None
        label = label or spec.get("recipe") or spec.get("name") or str(path)
        label += " (interim)" if stored.get("partial") else ""  # some runs short of their steps
        a, b = spec["models"]
        rows += [(r["claim"].split(" ")[0], order, label, f"{a} - {b}", r) for r in claims]
    rows.sort(key=lambda row: (row[0], row[1]))  # stable: each report's own order within a claim and source
    lines = ["| claim | statistic | recipe | seeds × units | models (A - B) | A - B [95 % interval] | per seed "
             "| verdict |", "|---|---|---|---|---|---|---|---|"]
    for _, _, label, models, r in rows:
        claimed = ">" if r["side"] == "greater" else "<"
        lines.append(f"| {r['claim']} (claimed {claimed} 0) | {r['statistic']} | {label} | {r['seeds']} × "
                     f"{r['units']} | {models} | {_format(r['difference'])} [{_format(r['low'])}, "
                     f"{_format(r['high'])}] | {', '.join(_format(x) for x in r['per_seed'])} | **{r['verdict']}** |")
    return "\n".join(lines) + "\n"


def _power_summary(result: dict) -> dict:
    """A run's ``PowerCheck`` evaluation in brief: the mean log-likelihood gain per modality, and per colour
    modality the chroma correlations of the prior and the posterior."""
    order = [name for name in result["modalities"] if name in result["colour"]]
    return {"gain": {name: float(np.mean(result["gain"][name])) for name in result["modalities"]},
            "colour": {name: {k: result["colour"][name][f"chroma_corr_{k}"] for k in ("prior", "prior_swapped",
                                                                                       "posterior")}
                       for name in order}}  # fmt: skip


def _power_lines(report: ReportSpec, power: dict[str, list[tuple[PlannedRun, dict]]]) -> list[str]:
    check = report.power
    fewer, more = check.counts
    lines = ["", "## Context use", "", f"How much each run uses what it observes. Gain: the IWAE log-likelihood "
             f"(nats/dim) of a modality's last views with {more} of its own views as context minus with {fewer}, "
             f"mean over {check.scenes} {report.split} scenes (near 0: the context is ignored). Colour: the chroma "
             f"correlation of the renders with the truth's from {check.colour_views} views of a 3-channel image "
             "(prior / the same after swapping the context's channels / posterior; near 0: no colour carried; "
             "`gmn_plugins.evaluation.colour`)."]  # fmt: skip
    for spec_file, planned in power.items():
        summaries = [(p, _power_summary(r)) for p, r in planned]
        names = list(summaries[0][1]["gain"])
        colours = list(summaries[0][1]["colour"])
        lines += ["", f"`{spec_file}`:", "",
                  "| model | train.seed | " + " | ".join(f"gain {n}" for n in names)
                  + "".join(f" | colour {n}" for n in colours) + " |",
                  "|---|---|" + "---|" * (len(names) + len(colours))]  # fmt: skip
        for p, summary in summaries:
            cells = [_format(summary["gain"][n]) for n in names]
            cells += [" / ".join(f"{summary['colour'][n][k]:.2f}" for k in ("prior", "prior_swapped", "posterior"))
                      for n in colours]  # fmt: skip
            lines.append(f"| {p.model} | {p.seed} | " + " | ".join(cells) + " |")
    return lines


def _missing_by_size(report: ReportSpec, claim: MissingClaim, results: dict[str, list[dict]]) -> list[str]:
    """Claim 1's statistic split by the size of each test scene's small combination, and into its KL and NLL parts:
    mean per model and seed."""
    sizes = sorted({int(k) for model in report.models for r in results[model] for k in r["small_sizes"]})
    lines = ["", f"### Claim 1 by combination size ({claim.figure}, `{claim.spec}`)", "", "Negative ELBO at the "
             "scored combination minus at the "
             "training rule (nats/dim), mean over the test scenes whose combination has that many modalities, and "
             "its parts: the KL's difference and the reconstruction NLL's difference (the rest).", "",
             "| model | train.seed | " + " | ".join(f"{k} modalit{'y' if k == 1 else 'ies'}" for k in sizes) + " |",
             "|---|---|" + "---|" * len(sizes)]  # fmt: skip
    for model in report.models:
        for seed, r in zip(report.seeds, results[model]):
            gap, size = np.subtract(r["small"], r["rule"]), np.asarray(r["small_sizes"])
            kl = np.subtract(r["small_kl"], r["rule_kl"])
            cells = [f"{_format(gap[size == k].mean())} = KL {_format(kl[size == k].mean())} + NLL "
                     f"{_format((gap - kl)[size == k].mean())} (n = {(size == k).sum()})" for k in sizes]  # fmt: skip
            lines.append(f"| {model} | {seed} | " + " | ".join(cells) + " |")
    return lines


def _val_rows(out: Path) -> list[dict]:
    path = out / "val.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def _last_val(out: Path) -> float | None:
    rows = _val_rows(out)
    return rows[-1]["val_missing"] if rows else None


def make_report(directory: str | Path, registry, train_missing: bool = True, progress: bool = True,
                command: str = "gmn-eval report") -> dict:  # fmt: skip
    """Train what is missing (resuming what is partial), evaluate every run for its claims, and write the report.
    Returns ``{"report", "claims"}``. Raises ``SpecError``, ``DataError``, ``CheckpointError`` (one line each);
    with ``train_missing=False`` a run without a checkpoint is a ``CheckpointError``, and a run short of its
    spec's ``train.steps`` is read at its last checkpoint, the report then marked interim (and ``claims.json``'s
    ``partial`` naming it)."""
    from ..training.trainer import train
    from .runs import load_run
    from .plots import (plot_report_classification, plot_report_density, plot_report_missing,
                        plot_report_training, plot_report_trend)

    directory = Path(directory)
    report = load_report_spec(directory)
    runs = plan(directory, report)
    for planned in [p for group in runs.values() for p in group]:
        if train_missing:
            print(f"report: training {planned.out} ({planned.model}, train.seed {planned.seed})", file=sys.stderr)
            train(planned.spec, planned.spec_file, registry, progress=progress)
    partial = _partial_runs(runs)  # looked up before evaluating: a run that finishes meanwhile still counts as short
    for planned, step in partial:  # --no-train on runs still training: an interim report, said so
        print(f"report: {planned.out} is at step {step} of {planned.spec.train.steps}; the report is interim",
              file=sys.stderr)  # fmt: skip
    claims = claim_list(report)
    evaluations: dict[str, dict[str, list[dict]]] = {key: {m: [] for m in report.models} for key, _, _ in claims}
    out = Path(report.out) / "report"
    out.mkdir(parents=True, exist_ok=True)
    figures, power = [], {}
    for spec_file, planned_runs in runs.items():
        for planned in planned_runs:  # one run at a time, loaded once for all its claims
            loaded = []

            def open_run(planned=planned, loaded=loaded):
                if not loaded:
                    loaded.append(load_run(planned.out, registry))
                return loaded[0]

            for key, kind, claim in claims:
                if claim.spec == spec_file:
                    print(f"report: evaluating {planned.out} for {key}", file=sys.stderr)
                    evaluations[key][planned.model].append(_evaluate(planned, kind, claim, report, open_run))
            if report.power is not None:
                print(f"report: evaluating {planned.out} for its context use", file=sys.stderr)
                power.setdefault(spec_file, []).append(
                    (planned, _evaluate(planned, "power", report.power, report, open_run)))
            if planned.seed == report.seeds[0]:
                figures += _generation_figure(open_run(), planned, spec_file, report, out)
    rows = claims_table(report, evaluations)
    trend = _trend(report, runs, claims, registry) if report.trend else {}
    if trend:
        figures.append(plot_report_trend(trend, out / "trend.png"))
    if "density" in evaluations:
        figures.append(plot_report_density(evaluations["density"], report.density, out / "fig3-density.png"))
    if "classification" in evaluations:
        figures.append(plot_report_classification(evaluations["classification"], out / "fig4-classification.png"))
    for key, kind, claim in claims:
        if kind == "missing":
            figures.append(plot_report_missing(evaluations[key], out / f"fig5-missing-{Path(claim.spec).stem}.png",
                                               f"{claim.figure}: {claim.spec}"))  # fmt: skip
    for spec_file, planned_runs in runs.items():
        curves = {f"{p.model} seed {p.seed}": _val_rows(p.out) for p in planned_runs}
        if any(curves.values()):
            figures.append(plot_report_training({k: v for k, v in curves.items() if v},
                                                out / f"training-{Path(spec_file).stem}.png", spec_file))  # fmt: skip
    path = write_report(directory, report, runs, evaluations, rows, figures, command, trend, power, partial)
    return {"report": str(path), "claims": rows}


def _trend(report: ReportSpec, runs: dict[str, list[PlannedRun]], claims, registry) -> dict[str, dict[int, list[dict]]]:
    """{spec file: {step: ``claims_table`` rows of the claims on that spec}} at every step whose checkpoint all runs
    of the spec kept (``train.keep_every``); specs may keep different steps. A kept step equal to a run's last step
    reuses the last checkpoint's evaluation instead of repeating it."""
    from ..training.trainer import kept_checkpoints
    from .runs import load_run

    trend: dict[str, dict[int, list[dict]]] = {}
    for spec_file, planned_runs in runs.items():
        spec_claims = [(key, kind, claim) for key, kind, claim in claims if claim.spec == spec_file]
        kept = {p.out: dict(kept_checkpoints(p.out)) for p in planned_runs}
        if not spec_claims or not kept:
            continue
        for step in sorted(set.intersection(*(set(steps) for steps in kept.values()))):
            evaluations = {key: {m: [] for m in report.models} for key, _, _ in spec_claims}
            for planned in planned_runs:
                loaded = []

                def open_run(planned=planned, loaded=loaded, step=step):
                    if not loaded:
                        loaded.append(load_run(planned.out, registry, checkpoint=kept[planned.out][step]))
                    return loaded[0]

                last = step == _checkpoint_step(planned.out)
                for key, kind, claim in spec_claims:
                    if not last:
                        print(f"report: evaluating {planned.out} step {step} for {key}", file=sys.stderr)
                    evaluations[key][planned.model].append(_evaluate(
                        planned, kind, claim, report, open_run, None if last else (step, kept[planned.out][step])))
            trend.setdefault(spec_file, {})[step] = claims_table(report, evaluations)
    return trend


def _generation_figure(run, planned: PlannedRun, spec_file: str, report: ReportSpec, out: Path) -> list[Path]:
    """Fig. 1-style generation by ``run`` (one image view and every haptic view of a test scene as context, samples
    at the 4x4 viewpoint grid); none when the run has no camera image modality."""
    from .generation import default_context, generation_figure

    scenes = run.scenes(report.split)
    scene = min(report.generation_scene, scenes.num_scenes - 1)
    path = out / f"fig1-generation-{Path(spec_file).stem}-{planned.model}.png"
    grids = generation_figure(run.model, scenes, scene, default_context(scenes), 3, report.eval_seed, path,
                              f"{planned.model} (train.seed {planned.seed}, step {run.step}), {report.split} scene {scene}")  # fmt: skip
    if not grids:
        return []
    return [path]
