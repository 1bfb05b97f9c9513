"""Plots of the evaluations, laid out like the paper's figures (matplotlib, PNG)."""

from __future__ import annotations

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
