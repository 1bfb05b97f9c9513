"""Cross-modal generation (paper §4 "Cross-Modal Generation", Fig. 1, appendix D; reference §6.4).

The model is conditioned on a few views of some modalities of a held-out scene (by default: every view of each
non-image modality, and one view of each image modality, as in Fig. 1) and renders each image modality from a
fixed 4 x 4 grid of viewpoints (MESE's predefined views: pitch in linspace(-π/4, π/4, 4), yaw in
linspace(π/5, 9π/5, 4)), several samples of z ~ P(z | C) each. The true views are rendered by MuJoCo from the
scene's stored object (its walk and colours) through the modality's own sensor, so they exist for any viewpoint.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..data.episodes import SceneSet
from ..figures import drawable, image_tile
from ..mese.camera import CAMERA_RADIUS, CameraRig
from ..mese.shapes import block_centres
from ..models.gmn import GMN
from ..modality import normalize

GRID_PITCH = np.linspace(-math.pi / 4, math.pi / 4, 4)  # radians (reference §6.4)
GRID_YAW = np.linspace(math.pi / 5, 9 * math.pi / 5, 4)


def grid_queries() -> np.ndarray:
    """(16, 5) float32 camera queries (x, y, z metres, pitch wrapped to [0, 2π), yaw radians) of the 4 x 4 grid,
    on the radius-1 sphere looking at the origin, in the dataset's own convention (``camera.sample_viewpoint``)."""
    rows = []
    for pitch in GRID_PITCH:
        for yaw in GRID_YAW:
            pos = -CAMERA_RADIUS * np.array([math.cos(pitch) * math.cos(yaw), math.cos(pitch) * math.sin(yaw),
                                             math.sin(pitch)])  # fmt: skip
            rows.append([*pos, pitch % (2 * math.pi), yaw])
    return np.array(rows, np.float32)


def render_sensors(scenes: SceneSet, scene: int, sensors: list, queries: np.ndarray) -> dict[str, np.ndarray]:
    """Raw recordings {sensor name: (len(queries), *sensor.shape)} of scene ``scene``'s stored object at
    ``queries`` (N, 5), by each ``camera`` sensor in ``sensors``, with one camera rig for all of them."""
    walk, colours = scenes.objects["walk"][scene], scenes.objects["colours"][scene]
    raw: dict[str, list] = {sensor.name: [] for sensor in sensors}
    with CameraRig(len(walk) + 1) as rig:
        rig.set_object(block_centres(walk.astype(np.int64)), colours)
        for q in queries:
            rig.look_from(q.astype(np.float64))
            for sensor in sensors:
                raw[sensor.name].append(sensor.record(rig))
    return {name: np.stack(views) for name, views in raw.items()}


def true_views(scenes: SceneSet, scene: int, modality: int, queries: np.ndarray, raw: np.ndarray | None = None):
    """(len(queries), *shape) float32: modality ``modality`` of scene ``scene`` rendered at ``queries`` by its
    sensor (a ``camera`` one), normalised and sliced as the model sees it. ``raw``: that sensor's recordings from
    ``render_sensors`` when already made (several modalities cut from one sensor render it once)."""
    m = scenes.modalities[modality]
    if raw is None:
        raw = render_sensors(scenes, scene, [m.sensor], queries)[m.sensor.name]
    return m.slice(normalize(raw, m.sensor, scenes.stats))


def default_context(scenes: SceneSet) -> list[int]:
    """Context views per modality as in Fig. 1: one view of each drawn modality (``Family.draw``: the images), every
    view of the others (haptics)."""
    return [1 if drawable(m) else scenes.views for m in scenes.modalities]


@torch.no_grad()
def generate_grid(model: GMN, scenes: SceneSet, scene: int, context: list[int], samples: int = 3,
                  seed: int = 0) -> dict[str, np.ndarray]:  # fmt: skip
    """For each drawn (``Family.draw``) camera modality: (1 + samples, 16, *shape) float32, row 0 the truth, then
    ``samples`` renders from z ~ P(z | C) at the 16 grid viewpoints; C = the first ``context[i]`` views of modality
    i of ``scene``."""
    plan = [[((scene, np.arange(k)), (scene, np.arange(0))) for k in context]]
    ctx, _ = scenes.assemble(plan)
    queries = grid_queries()
    images = [i for i, m in enumerate(scenes.modalities) if drawable(m) and m.sensor.query == "camera"]
    sensors = list({scenes.modalities[i].sensor.name: scenes.modalities[i].sensor for i in images}.values())
    raw = render_sensors(scenes, scene, sensors, queries) if images else {}
    out = {scenes.modalities[i].name: [true_views(scenes, scene, i, queries, raw[scenes.modalities[i].sensor.name])]
           for i in images}  # fmt: skip
    torch.manual_seed(seed)
    q = [torch.from_numpy(queries) if i in images else None for i in range(len(scenes.modalities))]
    s = [torch.zeros(len(queries), dtype=torch.int64) if i in images else None for i in range(len(scenes.modalities))]
    for _ in range(samples):
        rendered = model.generate(ctx, q, s, 1)
        for i in images:
            out[scenes.modalities[i].name].append(rendered[i].cpu().numpy())
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
              draw: dict | None = None) -> None:
    """One block per entry of ``grids`` (a modality, or a reassembled sensor): its context views at the left,
    then the 4 x 4 viewpoints as 16 columns, row "truth" above the sampled rows; each block at its own tile size.
    ``draw``: {name: callable sense -> picture (C, H, W) in [0, 1]} (``Family.draw``); unnamed entries are pictures
    already."""
    draw = draw or {}

    def tile(name, sense):
        return image_tile(draw[name](sense) if name in draw else sense)

    size = {name: tile(name, g[0, 0]).size for name, g in grids.items()}  # (w, h) of one tile
    label_w, gap, header = 60, 2, 14
    ctx_w = max((size[n][0] + gap) * len(c) for n, c in context_images.items()) + 10 if context_images else 10
    width = label_w + ctx_w + 16 * (max(w for w, _ in size.values()) + gap)
    height = 20 + sum(header + len(g) * (size[n][1] + gap) for n, g in grids.items())
    canvas = Image.new("RGB", (max(width, 8 + 6 * len(title)), height), (40, 40, 40))
    drawing = ImageDraw.Draw(canvas)
    drawing.text((4, 4), title, fill="white")
    y = 20
    for name, grid in grids.items():
        tw, th = size[name]
        drawing.text((4, y), f"{name}   context | 16 viewpoints: pitch -45..45 deg (4 blocks of 4), yaw 36..324 deg",
                     fill="white")  # fmt: skip
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
    draw.update({name: next(m.family.draw for m in modalities if name.startswith(f"{m.sensor.name} "))
                 for name in whole})  # fmt: skip
    save_grid({**whole, **grids}, shown, path, title, draw)  # whole images first, then each modality
    return grids
