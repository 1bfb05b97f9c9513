"""One MESE scene: a Shepard–Metzler object seen from ``views`` viewpoints and grasped at ``views`` wrist poses.

All randomness of a scene derives from (seed, split, scene index) alone, so a scene is the same whoever makes it.
"""

from __future__ import annotations

import numpy as np

from ..data.format import LABEL, SPLIT_CODES, query_key
from ..core.modality import Sensor, SensorRecordError, raised, record_problem
from .shapes import block_centres, class_label, sample_colours, sample_walk

MAX_GRASP_ATTEMPTS_PER_VIEW = 20
# HSV saturation of the block colours: the authors' code (default; the paper's figures) or the paper's text (§1, §5)
SATURATION = {"code": (0.75, 1.0), "paper": (0.0, 0.75)}


def hand_setting(mjcf: str | None, hull_vertices: int = 0, wrist_lock: str = "contact") -> str | dict:
    """The dataset config's hand: ``"builtin"`` (``mjcf`` None), ``{"mjcf": PATH}``, plus ``"hull_vertices": N``
    when N > 0 and ``"wrist_lock": "equality"`` when not ``"contact"`` (defaults are left out, so datasets made
    before the options keep their config)."""
    if mjcf is None:
        return "builtin"
    return {"mjcf": str(mjcf), **({"hull_vertices": int(hull_vertices)} if hull_vertices else {}),
            **({"wrist_lock": wrist_lock} if wrist_lock != "contact" else {})}  # fmt: skip


def hand_options(hand: str | dict) -> dict:
    """A hand setting (``hand_setting``'s) as ``Hand``'s keyword arguments: {"mjcf": PATH or None, "hull_vertices": N
    (0: full hulls), "wrist_lock": "contact" or "equality"}. Raises ``ValueError`` for anything but ``"builtin"`` or
    {"mjcf": PATH[, "hull_vertices": N][, "wrist_lock": LOCK]}."""
    if hand == "builtin":
        return {"mjcf": None, "hull_vertices": 0, "wrist_lock": "contact"}
    if isinstance(hand, dict) and "mjcf" in hand and set(hand) <= {"mjcf", "hull_vertices", "wrist_lock"}:
        return {"mjcf": hand["mjcf"], "hull_vertices": int(hand.get("hull_vertices", 0)),
                "wrist_lock": hand.get("wrist_lock", "contact")}  # fmt: skip
    raise ValueError(f"hand must be 'builtin' or {{'mjcf': PATH[, 'hull_vertices': N][, 'wrist_lock': LOCK]}}, "
                     f"got {hand!r}")


def scene_rng(seed: int, split: str, index: int, stream: int) -> np.random.Generator:
    """The generator of one stream of one scene: child ``stream`` of ``SeedSequence([seed, split code, index])``;
    stream 0 draws the object, each query kind draws its views from its own ``QueryKind.stream`` (camera 1,
    wrist 2), so adding a kind never changes another kind's draws."""
    return np.random.default_rng(np.random.SeedSequence([seed, SPLIT_CODES[split], index], spawn_key=(stream,)))


def scene_rngs(seed: int, split: str, index: int) -> tuple[np.random.Generator, ...]:
    """Independent generators for the object, the camera views and the grasps of one scene (streams 0, 1, 2)."""
    return tuple(scene_rng(seed, split, index, stream) for stream in range(3))


class SceneMaker:
    """Owns the rigs of one process (opened once, reused for every scene) and makes scenes.

    ``sensors``: what to record per view; one rig is opened per query kind they use (``QueryKind.rig``), in the
    order of ``kinds`` ({name: QueryKind}, default the built-in camera and wrist; pass the registry's). ``hand``:
    ``"builtin"`` or ``{"mjcf": PATH}`` (see ``hand.Hand``); ``saturation``: the (low, high) range of the block
    colours' HSV saturation (``SATURATION``). ``rigs``: {kind name: rig}. Close it with ``close()``.
    Raises ``KeyError`` for a sensor whose query kind is not in ``kinds``.
    """

    def __init__(self, sensors: list[Sensor], blocks: int, views: int, physics: str, hand: str | dict = "builtin",
                 saturation: tuple[float, float] = SATURATION["code"], kinds: dict | None = None):  # fmt: skip
        from .queries import BUILTIN

        kinds = BUILTIN if kinds is None else kinds
        self.sensors = sensors
        self.blocks, self.views = blocks, views
        self.saturation = tuple(saturation)
        used = {s.query for s in sensors}
        unknown = used - set(kinds)
        if unknown:
            raise KeyError(f"unknown query kind(s) {sorted(unknown)}; known: {sorted(kinds)}")
        self.kinds = [kind for name, kind in kinds.items() if name in used]
        self.rigs = {}
        try:
            for kind in self.kinds:
                self.rigs[kind.name] = kind.open_rig(blocks=blocks, physics=physics, hand=hand)
            for sensor in sensors:
                if sensor.step is not None:
                    rig = self.rigs[sensor.query]
                    if not hasattr(rig, "step_hooks"):
                        raise ValueError(f"sensor {sensor.name}: has a step hook, but the {sensor.query} rig "
                                         f"{type(rig).__name__} does not simulate steps (no step_hooks)")  # fmt: skip
                    rig.step_hooks.append(sensor.step)
        except BaseException:
            self.close()
            raise

    def make(self, seed: int, split: str, index: int) -> dict[str, np.ndarray]:
        """Arrays of one scene: ``walk`` (blocks-1,) int8, ``colours`` (blocks, 3) float32, ``label`` () int64, then
        per query kind: ``query.KIND`` (views, dim) float32 (camera and wrist: x, y, z in metres, pitch, yaw in
        radians), what else the kind keeps (wrist: ``grasp_attempts`` () int64) and each of its sensors
        (views, *shape).

        Raises ``RuntimeError`` if more than ``MAX_GRASP_ATTEMPTS_PER_VIEW × views`` grasps are needed, and
        ``SensorRecordError`` when a sensor records another shape or dtype than it declared, or non-finite values
        (every record is checked, so the first scene of a generation already says so).
        """
        return self.make_with(lambda stream: scene_rng(seed, split, index, stream))

    def make_with(self, rng) -> dict[str, np.ndarray]:
        """``make`` with the scene's random streams given: ``rng(stream)`` returns a new ``numpy.random.Generator``
        of that stream (0: the object, ``QueryKind.stream``: that kind's views); ``make`` passes ``scene_rng``'s.
        A scene made outside a dataset (``gmn_plugins.api.MeseScene``) passes its own. Same arrays and errors."""
        object_rng = rng(0)
        walk = sample_walk(object_rng, self.blocks)
        colours = sample_colours(object_rng, self.blocks, self.saturation)
        centres = block_centres(walk)
        out: dict[str, np.ndarray] = {
            "walk": walk.astype(np.int8),
            "colours": colours.astype(np.float32),
            LABEL: np.int64(class_label(walk)),
        }
        for kind in self.kinds:
            rig = self.rigs[kind.name]
            rig.set_object(centres, colours)
            records = {s.name: [] for s in self.sensors if s.query == kind.name}
            arrays = kind.sample_views(rig, rng(kind.stream), self.views,
                                       lambda rig, kind=kind, records=records: self._record(kind.name, rig, records))  # fmt: skip
            out[query_key(kind.name)] = arrays.pop("queries")
            out.update(arrays)
            out.update({k: np.stack(v) for k, v in records.items()})
        return out

    def _record(self, kind: str, rig, records: dict[str, list]) -> None:
        for sensor in self.sensors:
            if sensor.query == kind:
                try:
                    value = sensor.record(rig)
                except Exception as exc:  # the plugin's own code: one line naming it, where it raised and what
                    raise SensorRecordError(sensor.name, raised("record()", exc, sensor.record)) from None
                problem = record_problem(sensor, value)
                if problem:  # before anything is written: a wrong record never reaches a shard
                    raise SensorRecordError(sensor.name, problem)
                records[sensor.name].append(np.asarray(value, dtype=sensor.dtype))

    def close(self) -> None:
        rigs, self.rigs = self.rigs, {}
        for rig in rigs.values():
            rig.close()

    def __enter__(self) -> "SceneMaker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
