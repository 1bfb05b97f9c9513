"""Pictures people would rather look at than read: the loss curve and generated-vs-true image grids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..core.points import Points
from ..models.convdraw import sampling_temperature

CONTEXT_VIEWS = 5
SHOWN_VIEWS = 6
SCALE = 2


def plot_losses(history: list[dict], path: str | Path, val_history: list[dict] = ()) -> None:
    """Training loss and per-dimension NLL against step (matplotlib, PNG); with ``val_history`` (rows of
    ``val.jsonl``) the validation negative ELBO of the training rule's modality combinations (val_missing) and of
    all combinations (val_full) is drawn on the left panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not history:
        return
    steps = [row["step"] for row in history]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    if val_history:
        for key, style, colour in (("val_missing", "o-", "black"), ("val_full", "s--", "tab:red")):
            axes[0].plot([r["step"] for r in val_history], [r[key] for r in val_history], style, ms=3, lw=1,
                         color=colour, label=f"{key} (validation)", zorder=3)  # fmt: skip
    for ax, key, title in ((axes[0], "neg_elbo_per_dim", "negative ELBO (nats per target dimension)"),
                           (axes[1], "nll_per_dim", "target NLL (nats per dimension)")):  # fmt: skip
        ax.plot(steps, [row[key] for row in history], lw=0.6, alpha=0.4, color="tab:blue")
        window = max(1, len(steps) // 25)
        smooth = np.convolve([row[key] for row in history], np.ones(window) / window, mode="valid")
        ax.plot(steps[window - 1 :], smooth, lw=1.5, color="tab:blue", label="training (smoothed)")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def drawable(modality) -> bool:
    """Whether the modality's family draws its senses (``Family.draw`` is not None)."""
    return modality.family.draw(np.zeros(modality.shape, np.float32)) is not None


def image_tile(image: np.ndarray) -> Image.Image:
    """A picture (C, H, W) float in [0, 1] with C in {1, 3} (what ``Family.draw`` returns) -> RGB PIL image,
    upscaled ×SCALE."""
    arr = (np.clip(image, 0, 1) * 255).astype(np.uint8)
    arr = np.repeat(arr, 3, axis=0) if arr.shape[0] == 1 else arr
    img = Image.fromarray(arr.transpose(1, 2, 0))
    return img.resize((img.width * SCALE, img.height * SCALE), Image.NEAREST)


@torch.no_grad()
def sample_grid(model, scenes, path: str | Path, seed: int = 0, num_scenes: int = 4) -> Path | None:
    """For held-out scenes: ``CONTEXT_VIEWS`` (at most views - 1) context views of every modality, then for each
    modality its family draws (``Family.draw``) the true target views (row "truth") above the model's generations
    from the prior P(z | C): a sample (row "model") and the prior's means (row "model t=0", temperature 0,
    ``models.convdraw.sampling_temperature``: what the model infers without the noise of a draw), and its renders
    from the posterior Q(z | C, O), which also saw these target views (row "posterior"; a diagnostic: sharp posterior
    rows beside blurred prior rows say that the renderer can draw the scene and the prior has not caught up).
    Returns the PNG path, or None if no modality is drawn."""
    image_ids = [i for i, m in enumerate(scenes.modalities) if drawable(m)]
    if not image_ids:
        return None
    torch.manual_seed(seed)
    ids = np.arange(min(num_scenes, scenes.num_scenes))
    k = min(CONTEXT_VIEWS, scenes.views - 1)
    shown = min(SHOWN_VIEWS, scenes.views - k)
    context, episode_targets = scenes.episodes(ids, np.random.default_rng(seed), max_targets=1,
                                               context_sizes=[k] * len(scenes.modalities))  # fmt: skip
    targets = [Points(t.senses[:0], t.queries[:0], t.scene[:0]) for t in episode_targets]  # the drawn views only
    slots = np.repeat(ids, shown)
    views = np.tile(np.arange(k, k + shown), len(ids))
    queries = [None] * len(scenes.modalities)
    scene_index = [None] * len(scenes.modalities)
    for i in image_ids:
        m = scenes.modalities[i]
        queries[i] = torch.from_numpy(scenes.queries[m.sensor.query][slots, views].astype(np.float32))
        scene_index[i] = torch.from_numpy(np.repeat(np.arange(len(ids)), shown))
        targets[i] = Points(torch.as_tensor(scenes.senses(m, slots, views)), queries[i], scene_index[i])
    generated = model.generate(context, queries, scene_index, len(ids))
    reconstructed = model.reconstruct(context, targets, len(ids))
    with sampling_temperature(0.0):
        means = model.generate(context, queries, scene_index, len(ids))
    rows = []
    for i in image_ids:
        m = scenes.modalities[i]
        truth = targets[i].senses.numpy()  # the drawn views, read once above
        fake, mean, posterior = (x[i].cpu().numpy() for x in (generated, means, reconstructed))
        for b in range(len(ids)):
            for label, source in (("truth", truth), ("model", fake), ("model t=0", mean), ("posterior", posterior)):
                rows.append((f"{m.name} {label}" if b == 0 else label,
                             [m.family.draw(source[b * shown + v]) for v in range(shown)]))  # fmt: skip
    sizes = [image_tile(images[0]).size for _, images in rows]  # (w, h) of each row's tiles: sizes may differ
    label_w, gap = 80, 2
    title = (f"{k} context views per modality; targets rendered from the prior (model: a sample, t=0: its means) "
             "and the posterior")
    width = max(label_w + shown * (max(w for w, _ in sizes) + gap), 8 + 6 * len(title))
    height = sum(h + gap for _, h in sizes) + 18
    canvas = Image.new("RGB", (width, height), (40, 40, 40))
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 3), title, fill="white")
    y = 18
    for (label, images), (tile_w, tile_h) in zip(rows, sizes):
        draw.text((4, y + tile_h // 2 - 6), label, fill="white")
        for c, image in enumerate(images):
            canvas.paste(image_tile(image), (label_w + c * (tile_w + gap), y))
        y += tile_h + gap
    canvas.save(path)
    return Path(path)
