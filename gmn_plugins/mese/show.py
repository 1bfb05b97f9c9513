"""Look at a generated scene: its camera views, the hand at each grasp's end state and its haptic vectors.

The hand-view images follow reference §3.3: a free camera looking at the object centre from distance 1, azimuth
-80°, elevation -50°, with the 150-pixel crop's 13.84° field of view; the tendon lines are not drawn. The grasps are
re-simulated from the stored object and wrist poses with the dataset's hand and physics (deterministic, so the end
state is the recorded one; ``hand_views`` also returns the re-simulated sensordata to show it).
"""

from __future__ import annotations

import os

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")
import mujoco  # noqa: E402

from .camera import FOVY_DEGREES  # noqa: E402
from ..data.format import query_key  # noqa: E402
from .generate import DatasetConfig  # noqa: E402
from .hand import Hand  # noqa: E402
from .scene import hand_options  # noqa: E402
from .shapes import block_centres  # noqa: E402

HAND_VIEW = {"distance": 1.0, "azimuth": -80.0, "elevation": -50.0}  # reference §3.3
GROUPS = (  # (name, first, count) of the 132-d vector (reference §3.4)
    ("joint pos", 0, 22), ("joint vel", 22, 22), ("act pos", 44, 13), ("act vel", 57, 13), ("act force", 70, 13),
    ("accel", 83, 15), ("gyro", 98, 15), ("touch", 113, 19),
)  # fmt: skip


def hand_views(config: DatasetConfig, walk: np.ndarray, colours: np.ndarray, wrist_queries: np.ndarray,
               size: int = 150) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Re-run the grasps of one scene; return hand-view images (views, size, size, 3) uint8 and the sensordata
    (views, 132) float32 at each grasp's end state."""
    with Hand(config.blocks, physics=config.physics, **hand_options(config.hand)) as hand:
        hand.set_object(block_centres(np.asarray(walk, np.int64)), np.c_[colours, np.ones(len(colours))])
        hand.model.vis.global_.fovy = FOVY_DEGREES
        camera = mujoco.MjvCamera()
        camera.type = mujoco.mjtCamera.mjCAMERA_FREE
        camera.lookat[:] = 0.0
        camera.distance, camera.azimuth, camera.elevation = (HAND_VIEW[k] for k in ("distance", "azimuth", "elevation"))
        option = mujoco.MjvOption()
        option.flags[mujoco.mjtVisFlag.mjVIS_TENDON] = False
        renderer = mujoco.Renderer(hand.model, size, size)
        images, haptics = [], []
        try:
            for query in wrist_queries:
                haptics.append(hand.grasp(np.asarray(query, np.float64)).astype(np.float32))
                renderer.update_scene(hand.data, camera=camera, scene_option=option)
                images.append(renderer.render())
        finally:
            renderer.close()
    return np.array(images), np.array(haptics)


def scaled(haptic: np.ndarray, stats: dict | None) -> np.ndarray:
    """The haptic vector as the model sees it (``modality.normalize``: min-max to [-1, 1] with the physical-range
    floor, clipped; reference §3.5); unchanged without statistics."""
    from ..core.modality import normalize
    from .sensors import HAND_HAPTIC

    return normalize(haptic, HAND_HAPTIC, {HAND_HAPTIC.name: stats}) if stats else haptic


def show_scene(arrays: dict[str, np.ndarray], config: DatasetConfig, stats: dict, out: str, title: str,
               grasp: int = 0) -> None:  # fmt: skip
    """Write a PNG: camera views (row 1), hand views at the grasp end states (row 2, if the scene has grasps), a
    bar plot of grasp ``grasp``'s haptic vector, raw and scaled (row 3), then one row per other sensor of the
    dataset (plugin sensors included): its views as images when a record has 2 or more axes (3 channels as RGB,
    else the first channel), or a bar plot of view ``grasp``'s values. This shows raw sensor records, before any
    modality cuts them, so there is no family to ask (``Family.draw`` draws modalities in sample grids and
    generation figures); the rule by shape is this debugging view's alone."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images = arrays.get("camera.rgb")
    if images is None:
        images = next((v for k, v in arrays.items() if k.startswith("camera.") and v.ndim == 4 and v.shape[1] == 3), None)
    has_hand = query_key("wrist") in arrays
    shown = {"hand.haptic"} | {k for k, v in arrays.items() if v is images}
    others = [name for name in config.sensors if name in arrays and name not in shown]
    views = max(len(images) if images is not None else 0, len(arrays[query_key("wrist")]) if has_hand else 0,
                *(len(arrays[name]) for name in others))  # fmt: skip
    heights = [1] * ((images is not None) + has_hand) + [2.5] * has_hand + [
        1 if arrays[name].ndim >= 3 else 2 for name in others]  # fmt: skip
    fig = plt.figure(figsize=(max(12, 1.1 * views), 1.3 * sum(heights) + 0.5))
    grid = fig.add_gridspec(len(heights), views, height_ratios=heights)
    row = 0
    if images is not None:
        for v, image in enumerate(images):
            ax = fig.add_subplot(grid[row, v])
            ax.imshow(image.transpose(1, 2, 0))
            ax.set_axis_off()
        row += 1
    if has_hand:
        hand_images, haptics = hand_views(config, arrays["walk"], arrays["colours"], arrays[query_key("wrist")])
        for v, image in enumerate(hand_images):
            ax = fig.add_subplot(grid[row, v])
            ax.imshow(image)
            ax.set_axis_off()
        row += 1
        haptic = arrays["hand.haptic"][grasp] if "hand.haptic" in arrays else haptics[grasp]
        ax = fig.add_subplot(grid[row, :])
        values = scaled(haptic, stats.get("hand.haptic"))
        colors = plt.get_cmap("tab10")
        for i, (name, first, count) in enumerate(GROUPS):
            ax.bar(np.arange(first, first + count), values[first:first + count], color=colors(i), label=name)
        ax.set_xlim(-1, 132)
        ax.set_xlabel("sensordata index")
        ax.set_ylabel("scaled to [-1, 1]" if stats.get("hand.haptic") else "raw")
        ax.set_title(f"haptic vector of grasp {grasp} (re-simulated max |diff| to the stored one: "
                     f"{np.abs(haptics[grasp] - haptic).max():.2g})", fontsize=9)  # fmt: skip
        ax.legend(ncol=8, fontsize=7, loc="upper left")
        row += 1
    for name in others:
        records = arrays[name]
        if records.ndim >= 3:  # (views, ..., H, W): one image per view
            for v, record in enumerate(records):
                ax = fig.add_subplot(grid[row, v])
                image = record.transpose(1, 2, 0) if record.ndim == 3 and record.shape[0] == 3 else record.reshape(
                    -1, *record.shape[-2:])[0]  # fmt: skip
                ax.imshow(image, cmap=None if image.ndim == 3 else "viridis")
                ax.set_axis_off()
            fig.axes[-len(records)].set_title(name, fontsize=8, loc="left")
        else:
            ax = fig.add_subplot(grid[row, :])
            values = records[min(grasp, len(records) - 1)].reshape(-1)
            ax.bar(np.arange(len(values)), values)
            ax.set_title(f"{name}, view {min(grasp, len(records) - 1)}", fontsize=9)
        row += 1
    fig.suptitle(title, fontsize=10)
    fig.savefig(out, dpi=80)
    plt.close(fig)
