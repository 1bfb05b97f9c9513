"""Plots of the evaluations, laid out like the paper's figures (matplotlib, PNG)."""

from __future__ import annotations

import textwrap
from pathlib import Path

LINE_STYLES = (":", "--", "-.", "-")  # the paper's Fig. 3: dotted = no target-modality context, then 1 / 5 / 10


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> Path:
    """Lay out, write as PNG and close ``fig``."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return Path(path)


def plot_density(records: list[dict], path: str | Path, title: str = "") -> Path:
    """Paper Fig. 3: one panel per (source -> target) record; x = number of source context views, one line per
    number of the target modality's own context views (dotted: none, the fully cross-modal setting)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(records), figsize=(3.6 * len(records), 3.2), squeeze=False)
    for ax, rec in zip(axes[0], records):
        counts, grid = rec["counts"], rec["grid"]
        xs = counts[: len(grid)] if rec["source"] else [0]
        for b, k in enumerate(counts):
            ax.plot(xs, [row[b] for row in grid], LINE_STYLES[min(b, 3)], marker="o", ms=3,
                    label=f"{k} {rec['target']} ctx")  # fmt: skip
        target = f"{rec['target']} (GRAY)" if rec["gray"] else rec["target"]
        ax.set_title(f"{rec['source'] or '-'} -> {target}", fontsize=9)
        ax.set_xlabel(f"# {rec['source']} context views" if rec["source"] else "")
        ax.set_ylabel("log-likelihood (nats/dim)")
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def plot_classification(results: dict[str, list[dict]], path: str | Path, orientation: str = "paper") -> Path:
    """Paper Fig. 4: top-1 accuracy against the number of context views, one line per context mask, one panel per
    held-out set; chance (1/K) dashed."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(results), figsize=(3.8 * len(results), 3.2), squeeze=False)
    for ax, (name, records) in zip(axes[0], results.items()):
        records = [r for r in records if r["orientation"] == orientation]
        for mask in dict.fromkeys(r["mask"] for r in records):
            rows = [r for r in records if r["mask"] == mask]
            ax.plot([r["c"] for r in rows], [r["top1"] for r in rows], marker="o", ms=3, label=mask)
        if records:
            ax.axhline(1 / records[0]["k"], ls="--", lw=0.8, color="grey", label="chance")
        ax.set_title(f"{name} (Eq. 6{'' if orientation == 'paper' else ', code orientation'})", fontsize=9)
        ax.set_xlabel("# context views per modality")
        ax.set_ylabel("top-1 accuracy")
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=7)
    return _save(fig, path)


def plot_missing(result: dict, path: str | Path, title: str = "") -> Path:
    """Paper Fig. 5 at one checkpoint: negative ELBO per dimension for each number of shown modalities (val_full),
    with the training-rule combinations (val_missing) and the all-combinations mean (val_full) as lines."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.8, 3.2))
    sizes = sorted(result["val_full_by_size"], key=int)
    lo, hi = (result["sizes"] or [None, None])[:2]
    colours = ["tab:blue" if lo is not None and lo <= int(s) <= hi else "tab:orange" for s in sizes]
    ax.bar([int(s) for s in sizes], [result["val_full_by_size"][s] for s in sizes], color=colours)
    ax.axhline(result["val_missing"], color="tab:blue", ls="--", lw=1, label="val_missing (training rule)")
    ax.axhline(result["val_full"], color="black", ls=":", lw=1, label="val_full (all combinations)")
    ax.set_xlabel("# modalities shown (orange: never in training)" if lo is not None else "# modalities shown")
    ax.set_ylabel("negative ELBO (nats/dim)")
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    return _save(fig, path)


MODEL_COLOURS = ("tab:red", "tab:blue", "tab:green", "tab:purple")


def plot_report_density(evaluations: dict[str, list[dict]], claim, path: str | Path) -> Path:
    """Paper Fig. 3 for a report: one panel per direction, x = number of source context views, one colour per model
    (mean over seeds and scenes, nats/dim), one line style per number of target-modality views (dotted: none)."""
    import numpy as np

    plt = _pyplot()
    directions = claim.directions
    fig, axes = plt.subplots(1, len(directions), figsize=(3.8 * len(directions), 3.3), squeeze=False)
    for ax, text in zip(axes[0], directions):
        for colour, (model, results) in zip(MODEL_COLOURS, evaluations.items()):
            values = np.mean([np.asarray(r["values"][text]).mean(-1) for r in results], axis=0)  # (sources, targets)
            for b, k in enumerate(claim.target_counts):
                ax.plot(claim.source_counts, values[:, b], LINE_STYLES[min(b, 3)], color=colour, marker="o", ms=3,
                        label=f"{model}, {k} target views")  # fmt: skip
        ax.set_title(text.replace("->", " -> ").replace(":gray", " (GRAY)"), fontsize=9)
        ax.set_xlabel("# source context views")
        ax.set_ylabel("IWAE log-likelihood (nats/dim)")
    axes[0][0].legend(fontsize=6)
    return _save(fig, path)


def plot_report_classification(evaluations: dict[str, list[dict]], path: str | Path) -> Path:
    """Paper Fig. 4 for a report: top-1 accuracy (Eq. 6) per context mask, one bar per model (mean over seeds,
    held-out sizes and context sizes), each seed a dot; chance dashed."""
    import numpy as np

    plt = _pyplot()
    models = list(evaluations)
    first = evaluations[models[0]][0]["records"]
    masks = list(dict.fromkeys(rec["mask"] for recs in first.values() for rec in recs))
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(masks), 3.3))
    width = 0.8 / len(models)
    k = None
    for j, (colour, model) in enumerate(zip(MODEL_COLOURS, models)):
        per_seed = []
        for r in evaluations[model]:
            recs = [rec for recs in r["records"].values() for rec in recs if rec["orientation"] == "paper"]
            k = recs[0]["k"]
            per_seed.append([np.mean([rec["top1"] for rec in recs if rec["mask"] == mask]) for mask in masks])
        per_seed = np.asarray(per_seed)
        xs = np.arange(len(masks)) + (j - (len(models) - 1) / 2) * width
        ax.bar(xs, per_seed.mean(0), width, color=colour, alpha=0.7, label=model)
        for row in per_seed:
            ax.plot(xs, row, "k.", ms=4)
    if k:
        ax.axhline(1 / k, ls="--", lw=0.8, color="grey", label="chance")
    ax.set_xticks(np.arange(len(masks)), masks)
    ax.set_ylabel("top-1 accuracy (Eq. 6)")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7)
    return _save(fig, path)


def plot_report_missing(evaluations: dict[str, list[dict]], path: str | Path, title: str = "") -> Path:
    """Paper Fig. 5 for a report: val_full negative ELBO by number of shown modalities, one bar per model (mean
    over seeds), with each model's val_missing (the training rule) as a dashed line."""
    import numpy as np

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.4, 3.3))
    models = list(evaluations)
    width = 0.8 / len(models)
    for j, (colour, model) in enumerate(zip(MODEL_COLOURS, models)):
        figures = [r["figure"] for r in evaluations[model]]
        sizes = sorted({int(s) for f in figures for s in f["val_full_by_size"]})
        means = [np.mean([f["val_full_by_size"][str(s)] for f in figures if str(s) in f["val_full_by_size"]])
                 for s in sizes]  # fmt: skip
        ax.bar(np.asarray(sizes) + (j - (len(models) - 1) / 2) * width, means, width, color=colour, alpha=0.7,
               label=f"{model} val_full")  # fmt: skip
        ax.axhline(np.mean([f["val_missing"] for f in figures]), color=colour, ls="--", lw=1,
                   label=f"{model} val_missing")  # fmt: skip
    ax.set_xlabel("# modalities shown")
    ax.set_ylabel("negative ELBO (nats/dim)")
    if title:
        ax.set_title(title, fontsize=8)
    ax.legend(fontsize=7)
    return _save(fig, path)


def plot_report_training(curves: dict[str, list[dict]], path: str | Path, title: str = "") -> Path:
    """The trend over checkpoints: validation negative ELBO (``val_missing``, nats/dim) against the step, one line per
    run (``curves``: {"MODEL seed S": rows of its val.jsonl}), one colour per model."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.4, 3.3))
    colours: dict[str, str] = {}
    for label, rows in curves.items():
        model = label.split()[0]
        colour = colours.setdefault(model, MODEL_COLOURS[len(colours) % len(MODEL_COLOURS)])
        ax.plot([r["step"] for r in rows], [r["val_missing"] for r in rows], color=colour, marker=".", ms=3,
                label=label)  # fmt: skip
    ax.set_xlabel("training step")
    ax.set_ylabel("val negative ELBO (nats/dim)")
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    return _save(fig, path)


def plot_report_trend(trend: dict[str, dict[int, list[dict]]], path: str | Path) -> Path:
    """Each claim statistic's A - B difference with its 95 % interval against the training step of its spec's kept
    checkpoints (one panel per statistic), the claimed side shaded: does a claim appear, or vanish, with more
    steps? ``trend``: {spec file: {step: claims_table rows}}."""
    plt = _pyplot()
    panels = [(by_step, j, row) for by_step in trend.values() for j, row in enumerate(next(iter(by_step.values())))]
    cols = min(len(panels), 4)
    lines = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(lines, cols, figsize=(3.4 * cols, 2.8 * lines), squeeze=False)
    for ax, (by_step, j, row) in zip(axes.flat, panels):
        steps = list(by_step)
        diffs = [by_step[s][j]["difference"] for s in steps]
        lows = [by_step[s][j]["low"] for s in steps]
        highs = [by_step[s][j]["high"] for s in steps]
        ax.fill_between(steps, lows, highs, alpha=0.3)
        ax.plot(steps, diffs, marker="o", ms=3)
        ax.axhline(0, color="black", lw=0.8)
        lo, hi = ax.get_ylim()
        claimed = (0, hi) if row["side"] == "greater" else (lo, 0)
        ax.axhspan(*claimed, color="tab:green", alpha=0.06)
        ax.set_title("\n".join(textwrap.wrap(f"{row['claim'][:2].strip()} {row['statistic']}", 48)[:3]), fontsize=7)
        ax.set_xlabel("step", fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    return _save(fig, path)
