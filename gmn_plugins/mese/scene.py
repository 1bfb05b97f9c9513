"""One MESE scene: a Shepard–Metzler object seen from ``views`` viewpoints and grasped at ``views`` wrist poses.

All randomness of a scene derives from (seed, split, scene index) alone, so a scene is the same whoever makes it.
"""

from __future__ import annotations

import numpy as np

from ..modality import Sensor, SensorRecordError, record_problem
from .camera import CameraRig, sample_viewpoint
from .grasp import grasp_views
from .hand import Hand
from .shapes import block_centres, class_label, sample_colours, sample_walk

SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
MAX_GRASP_ATTEMPTS_PER_VIEW = 20
# HSV saturation of the block colours: the authors' code (default; the paper's figures) or the paper's text (§1, §5)
SATURATION = {"code": (0.75, 1.0), "paper": (0.0, 0.75)}


def hand_mjcf(hand: str | dict) -> str | None:
    """The MJCF path of a hand setting (``"builtin"`` -> None, ``{"mjcf": PATH}`` -> PATH); ``ValueError`` otherwise."""
    if hand == "builtin":
        return None
    if isinstance(hand, dict) and set(hand) == {"mjcf"}:
        return hand["mjcf"]
    raise ValueError(f"hand must be 'builtin' or {{'mjcf': PATH}}, got {hand!r}")


def scene_rngs(seed: int, split: str, index: int) -> tuple[np.random.Generator, ...]:
    """Independent generators for the object, the camera views and the grasps of one scene."""
    seq = np.random.SeedSequence([seed, SPLIT_CODES[split], index])
    return tuple(np.random.default_rng(s) for s in seq.spawn(3))


class SceneMaker:
    """Owns the compiled rigs of one process (compiled once, reused for every scene) and makes scenes.

    ``sensors``: what to record per view; a camera rig is built iff a sensor has query ``camera``, a hand iff one has
    query ``wrist``. ``hand``: ``"builtin"`` or ``{"mjcf": PATH}`` (see ``hand.Hand``); ``saturation``: the (low,
    high) range of the block colours' HSV saturation (``SATURATION``). Close it with ``close()``.
    """

    def __init__(self, sensors: list[Sensor], blocks: int, views: int, physics: str, hand: str | dict = "builtin",
                 saturation: tuple[float, float] = SATURATION["code"]):  # fmt: skip
        self.sensors = sensors
        self.blocks, self.views = blocks, views
        self.saturation = tuple(saturation)
        kinds = {s.query for s in sensors}
        self.camera = CameraRig(blocks) if "camera" in kinds else None
        self.hand = Hand(blocks, physics=physics, mjcf=hand_mjcf(hand)) if "wrist" in kinds else None

    def make(self, seed: int, split: str, index: int) -> dict[str, np.ndarray]:
        """Arrays of one scene: each sensor (views, *shape), ``query.camera`` / ``query.wrist`` (views, 5) float32
        (x, y, z in metres, pitch, yaw in radians), ``walk`` (blocks-1,) int8, ``colours`` (blocks, 3) float32,
        ``label`` () int64 and ``grasp_attempts`` () int64.

        Raises ``RuntimeError`` if more than ``MAX_GRASP_ATTEMPTS_PER_VIEW × views`` grasps are needed, and
        ``SensorRecordError`` when a sensor records another shape or dtype than it declared, or non-finite values
        (every record is checked, so the first scene of a generation already says so).
        """
        object_rng, camera_rng, hand_rng = scene_rngs(seed, split, index)
        walk = sample_walk(object_rng, self.blocks)
        colours = sample_colours(object_rng, self.blocks, self.saturation)
        centres = block_centres(walk)
        out: dict[str, np.ndarray] = {
            "walk": walk.astype(np.int8),
            "colours": colours.astype(np.float32),
            "label": np.int64(class_label(walk)),
        }
        if self.camera is not None:
            self.camera.set_object(centres, colours)
            out.update(self._camera_views(camera_rng))
        if self.hand is not None:
            self.hand.set_object(centres, np.c_[colours, np.ones(self.blocks)])
            out.update(self._grasp_views(hand_rng))
        return out

    def _record(self, kind: str, rig, records: dict[str, list]) -> None:
        for sensor in self.sensors:
            if sensor.query == kind:
                value = sensor.record(rig)
                problem = record_problem(sensor, value)
                if problem:  # before anything is written: a wrong record never reaches a shard
                    raise SensorRecordError(sensor.name, problem)
                records[sensor.name].append(np.asarray(value, dtype=sensor.dtype))

    def _camera_views(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        records = {s.name: [] for s in self.sensors if s.query == "camera"}
        queries = []
        for _ in range(self.views):
            query = sample_viewpoint(rng)
            self.camera.look_from(query)
            self._record("camera", self.camera, records)
            queries.append(query)
        return {"query.camera": np.array(queries, np.float32), **{k: np.stack(v) for k, v in records.items()}}

    def _grasp_views(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        records = {s.name: [] for s in self.sensors if s.query == "wrist"}
        _, queries, attempts = grasp_views(self.hand, rng, self.views, MAX_GRASP_ATTEMPTS_PER_VIEW * self.views,
                                           on_accept=lambda hand: self._record("wrist", hand, records))  # fmt: skip
        return {"query.wrist": queries, "grasp_attempts": np.int64(attempts),
                **{k: np.stack(v) for k, v in records.items()}}  # fmt: skip

    def close(self) -> None:
        if self.camera is not None:
            self.camera.close()
        if self.hand is not None:
            self.hand.close()

    def __enter__(self) -> "SceneMaker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
