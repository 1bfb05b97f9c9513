"""Cross-modal generation (paper §4 "Cross-Modal Generation", Fig. 1, appendix D; reference §6.4).

The model is conditioned on a few views of some modalities of a held-out scene (by default: every view of each
non-image modality, and one view of each image modality, as in Fig. 1) and renders each image modality from a
fixed 4 x 4 grid of viewpoints (MESE's predefined views: pitch in linspace(-π/4, π/4, 4), yaw in
linspace(π/5, 9π/5, 4)), several samples of z ~ P(z | C) each. The true views are rendered by MuJoCo from the
scene's stored object (its walk and colours) through the modality's own sensor, so they exist for any viewpoint.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..api import Run
from ..data.episodes import SceneSet
from ..training.figures import drawable, image_tile
from ..mese.queries import BUILTIN as QUERY_KINDS
from ..mese.shapes import block_centres
from ..models.gmn import GMN
from ..core.modality import normalize

def render_sensors(scenes: SceneSet, scene: int, sensors: list, queries: np.ndarray, kind=None) -> dict[str, np.ndarray]:
    """Raw recordings {sensor name: (len(queries), *sensor.shape)} of scene ``scene``'s stored object at
    ``queries`` (N, dim), by each sensor in ``sensors`` (all of one query kind that can pose its rig anywhere,
    ``QueryKind.can_pose``: the camera), with one rig for all of them. ``kind``: that ``QueryKind`` (default: the
    built-in one the sensors name)."""
    kind = kind or QUERY_KINDS[sensors[0].query]
    walk, colours = scenes.objects["walk"][scene], scenes.objects["colours"][scene]
    raw: dict[str, list] = {sensor.name: [] for sensor in sensors}
    rig = kind.open_rig(blocks=len(walk) + 1, physics="fast", hand="builtin")
    try:
        rig.set_object(block_centres(walk.astype(np.int64)), colours)
        for q in queries:
            kind.pose_rig(rig, q)
            for sensor in sensors:
                raw[sensor.name].append(sensor.record(rig))
    finally:
        rig.close()
    return {name: np.stack(views) for name, views in raw.items()}


def true_views(scenes: SceneSet, scene: int, modality: int, queries: np.ndarray, raw: np.ndarray | None = None):
    """(len(queries), *shape) float32: modality ``modality`` of scene ``scene`` recorded at ``queries`` by its
    sensor (of a kind that can pose its rig), normalised and sliced as the model sees it. ``raw``: that sensor's
    recordings from ``render_sensors`` when already made (several modalities cut from one sensor render it once)."""
    m = scenes.modalities[modality]
    if raw is None:
        raw = render_sensors(scenes, scene, [m.sensor], queries, m.query_kind)[m.sensor.name]
    return m.slice(normalize(raw, m.sensor, scenes.stats))


def default_context(scenes: SceneSet) -> list[int]:
    """Context views per modality, as each one's family says (``Family.figure_context``): by default as in Fig. 1,
    one view of each drawn modality (``Family.draw``: the images), every view of the others (haptics)."""
    return [min(max(0, int(m.family.figure_context(m.shape, scenes.views))), scenes.views) for m in scenes.modalities]


def generated_modalities(modalities) -> list[int]:
    """The indices of the modalities a generation figure shows: drawn by their family (``Family.draw``) and of a
    query kind that can pose its rig anywhere (``QueryKind.can_pose``: the camera)."""
    return [i for i, m in enumerate(modalities) if drawable(m) and _kind(m).can_pose]


def _kind(m):
    return m.query_kind or QUERY_KINDS[m.sensor.query]


@torch.no_grad()
def generate_grid(model: GMN, scenes: SceneSet, scene: int, context: list[int], samples: int = 3,
                  seed: int = 0) -> dict[str, np.ndarray]:  # fmt: skip
    """For each ``generated_modalities`` modality: (1 + samples, Q, *shape) float32, row 0 the truth, then
    ``samples`` renders from z ~ P(z | C) at the Q figure queries of its kind (``QueryKind.figure_queries``; the
    camera's 16 grid viewpoints); C = the first ``context[i]`` views of modality i of ``scene``. All modalities are
    rendered from the same z per sample."""
    run = Run(model, scenes.modalities, scenes.stats)
    observed = run.observe(scenes.observations(scene, [np.arange(k) for k in context]))
    shown = generated_modalities(scenes.modalities)
    out, asked = {}, {}
    for kind_name in dict.fromkeys(scenes.modalities[i].sensor.query for i in shown):
        members = [i for i in shown if scenes.modalities[i].sensor.query == kind_name]
        kind = _kind(scenes.modalities[members[0]])
        queries = kind.grid()
        sensors = list({scenes.modalities[i].sensor.name: scenes.modalities[i].sensor for i in members}.values())
        raw = render_sensors(scenes, scene, sensors, queries, kind)
        for i in members:
            m = scenes.modalities[i]
            out[m.name] = [true_views(scenes, scene, i, queries, raw[m.sensor.name])]
            asked[m.name] = queries
    if asked and samples:
        for name, rendered in observed.render_all(asked, samples, seed, scale="model").items():
            out[name].extend(rendered)
    return {name: np.stack(rows) for name, rows in out.items()}


def reassemble(grids: dict[str, np.ndarray], modalities: list) -> dict[str, np.ndarray]:
    """Image modalities cut from the same sensor (quadrants, halves, colour channels), put back together:
    ``{"SENSOR (reassembled)": (rows, 16, C, H, W)}`` for every camera sensor behind two or more of ``grids``'
    modalities; parts no modality covers stay 0 (black). Needs slices given by ``channels`` / ``rows`` / ``cols``."""
    out = {}
    by_sensor: dict[str, list] = {}
    for m in modalities:
        if m.name in grids:
            by_sensor.setdefault(m.sensor.name, []).append(m)
    for sensor, members in by_sensor.items():
        if len(members) < 2:
            continue
        first = grids[members[0].name]
        whole = np.zeros((*first.shape[:2], *members[0].sensor.shape), np.float32)
        for m in members:
            cut = m.spec.slice
            channels = slice(None) if cut.channels is None else cut.channels
            rows = slice(None) if cut.rows is None else slice(*cut.rows)
            cols = slice(None) if cut.cols is None else slice(*cut.cols)
            whole[:, :, channels, rows, cols] = grids[m.name]
        out[f"{sensor} (reassembled)"] = whole
    return out


def save_grid(grids: dict[str, np.ndarray], context_images: dict[str, np.ndarray], path, title: str,
              draw: dict | None = None, labels: dict | None = None) -> None:  # fmt: skip
    """One block per entry of ``grids`` (a modality, or a reassembled sensor): its context views at the left,
    then the figure queries as columns (the camera's 4 x 4 viewpoints: 16), row "truth" above the sampled rows; each
    block at its own tile size. ``draw``: {name: callable sense -> picture (C, H, W) in [0, 1]} (``Family.draw``);
    unnamed entries are pictures already. ``labels``: {name: what the columns are} (``QueryKind.figure_label``)."""
    draw, labels = draw or {}, labels or {}

    def tile(name, sense):
        return image_tile(draw[name](sense) if name in draw else sense)

    size = {name: tile(name, g[0, 0]).size for name, g in grids.items()}  # (w, h) of one tile
    label_w, gap, header = 60, 2, 14
    ctx_w = max((size[n][0] + gap) * len(c) for n, c in context_images.items()) + 10 if context_images else 10
    columns = max(g.shape[1] for g in grids.values())
    width = label_w + ctx_w + columns * (max(w for w, _ in size.values()) + gap)
    height = 20 + sum(header + len(g) * (size[n][1] + gap) for n, g in grids.items())
    canvas = Image.new("RGB", (max(width, 8 + 6 * len(title)), height), (40, 40, 40))
    drawing = ImageDraw.Draw(canvas)
    drawing.text((4, 4), title, fill="white")
    y = 20
    for name, grid in grids.items():
        tw, th = size[name]
        drawing.text((4, y), f"{name}   context | {labels.get(name) or f'{grid.shape[1]} figure queries'}", fill="white")
        y += header
        for c, image in enumerate(context_images.get(name, [])):
            canvas.paste(tile(name, image), (label_w + c * (tw + gap), y))
        for r, row in enumerate(grid):
            drawing.text((4, y + th // 2 - 6), "truth" if r == 0 else f"z{r}", fill="white")
            for c, image in enumerate(row):
                canvas.paste(tile(name, image), (label_w + ctx_w + c * (tw + gap), y))
            y += th + gap
    canvas.save(path)


def generation_figure(model: GMN, scenes: SceneSet, scene: int, context: list[int], samples: int, seed: int,
                      path, title: str) -> dict[str, np.ndarray]:  # fmt: skip
    """``generate_grid``'s grids for scene ``scene`` with ``context`` views per modality, drawn to ``path`` (PNG:
    the context views, then the reassembled sensors and each modality, row "truth" above the samples). Returns
    the grids, {} (and no file) when no drawn camera modality exists."""
    grids = generate_grid(model, scenes, scene, context, samples=samples, seed=seed)
    if not grids:
        return {}
    modalities = scenes.modalities
    shown = {m.name: scenes.senses(m, np.full(k, scene), np.arange(k))
             for m, k in zip(modalities, context) if m.name in grids}  # fmt: skip
    whole = reassemble(grids, modalities)
    draw = {m.name: m.family.draw for m in modalities if m.name in grids}
    labels = {m.name: _kind(m).figure_label for m in modalities if m.name in grids}
    for name in whole:
        member = next(m for m in modalities if name.startswith(f"{m.sensor.name} "))
        draw[name], labels[name] = member.family.draw, _kind(member).figure_label
    save_grid({**whole, **grids}, shown, path, title, draw, labels)  # whole images first, then each modality
    return grids
