"""The built-in query kinds, registered through the same ``register_query_kinds`` hook a plugin uses.

``camera``: a viewpoint on the radius-1 sphere looking at the object, (x, y, z, pitch, yaw) in metres and radians;
its rig is the ``CameraRig`` and it can be posed anywhere (the generation figure's 4 x 4 grid).
``wrist``: a grasp pose, (x, y, z, pitch, yaw) in metres and radians; its rig is the ``Hand``, and a view is
accepted only when the closing grasp touched the object (``grasp.grasp_views``).

Both are encoded for the model as [x, y, z, cos pitch, sin pitch, cos yaw, sin yaw] (reference §1.2), 5 -> 7.
"""

from __future__ import annotations

import math

import numpy as np

from gmn_plugins import hookimpl

from ..core.query import QueryKind
from .camera import CAMERA_RADIUS, CameraRig, sample_viewpoint

GRID_PITCH = np.linspace(-math.pi / 4, math.pi / 4, 4)  # radians (reference §6.4)
GRID_YAW = np.linspace(math.pi / 5, 9 * math.pi / 5, 4)
POSE_UNITS = "x, y, z in metres; pitch, yaw in radians"


class RigError(ValueError):
    """A rig that cannot be opened: one line naming what is wrong (e.g. the hand's MJCF file)."""


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


def open_camera(blocks: int, physics: str, hand) -> CameraRig:
    """The camera's rig: a ``CameraRig`` for objects of ``blocks`` blocks (``physics`` and ``hand`` unused)."""
    return CameraRig(blocks)


def camera_views(rig: CameraRig, rng: np.random.Generator, views: int, record) -> dict[str, np.ndarray]:
    """``views`` viewpoints ~ ``sample_viewpoint``; every one is recorded."""
    queries = []
    for _ in range(views):
        query = sample_viewpoint(rng)
        rig.look_from(query)
        record(rig)
        queries.append(query)
    return {"queries": np.array(queries, np.float32)}


def look_from(rig: CameraRig, query: np.ndarray) -> None:
    """Pose the camera at a (5,) query (x, y, z metres, pitch, yaw radians), looking at the origin."""
    rig.look_from(np.asarray(query, np.float64))


def describe_camera_sensor(sensor) -> dict:
    """Resolution and vertical field of view (degrees) of a camera image sensor (``sensors.OPTICS``, else the
    13.84° camera); {} for a camera sensor of fewer than 2 dimensions."""
    from .camera import FOVY_DEGREES
    from .sensors import OPTICS

    if len(sensor.shape) < 2:
        return {}
    return {"resolution": list(sensor.shape[-2:]), "fovy_degrees": round(OPTICS.get(sensor.name, FOVY_DEGREES), 6)}


def open_hand(blocks: int, physics: str, hand):
    """The MESE hand (``"builtin"`` or ``{"mjcf": PATH}``). Raises ``RigError`` (one line) for a bad setting, a
    missing file or an MJCF that cannot be the MESE hand."""
    from .hand import Hand
    from .scene import hand_options

    try:
        options = hand_options(hand)
    except ValueError as exc:
        raise RigError(f"hand: {exc}") from None
    mjcf = options["mjcf"]
    where = f"hand.mjcf {mjcf}" if mjcf else "hand (builtin)"
    try:
        return Hand(blocks, physics=physics, **options)
    except FileNotFoundError:
        raise RigError(f"{where}: no such file") from None
    except Exception as exc:  # mujoco compile errors (ValueError), bad XML (ParseError), a wrong sensor layout
        text = " ".join(str(exc).split())
        raise RigError(f"{where}: cannot be used as the MESE hand: {text[:300]}") from None


def wrist_views(hand, rng: np.random.Generator, views: int, record) -> dict[str, np.ndarray]:
    """Grasps at wrist poses ~ ``grasp.sample_wrist_pose`` until ``views`` are accepted (at most
    ``MAX_GRASP_ATTEMPTS_PER_VIEW`` per view); also keeps ``grasp_attempts`` () int64."""
    from .grasp import grasp_views
    from .scene import MAX_GRASP_ATTEMPTS_PER_VIEW

    _, queries, attempts = grasp_views(hand, rng, views, MAX_GRASP_ATTEMPTS_PER_VIEW * views, on_accept=record)
    return {"queries": queries, "grasp_attempts": np.int64(attempts)}


_ENCODE = "gmn_plugins.models.encoders:encode_query"
CAMERA = QueryKind("camera", 5, POSE_UNITS, 7, _ENCODE, open_camera, camera_views, stream=1,
                   description="a viewpoint on the radius-1 sphere, looking at the object",
                   pose=look_from, figure_queries=grid_queries, describe_sensor=describe_camera_sensor,
                   figure_label="16 viewpoints: pitch -45..45 deg (4 blocks of 4), yaw 36..324 deg")  # fmt: skip
WRIST = QueryKind("wrist", 5, POSE_UNITS, 7, _ENCODE, open_hand, wrist_views, stream=2,
                  description="a wrist pose of the closing grasp")  # fmt: skip
BUILTIN = {k.name: k for k in (CAMERA, WRIST)}


@hookimpl
def register_query_kinds(register):
    register(CAMERA)
    register(WRIST)
