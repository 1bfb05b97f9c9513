"""Haptic queries and the grasp loop: wrist-pose sampling, the wrist's mocap pose, the acceptance rule and the
accepted grasps of one scene (mese_environment_reference.md §3.2–3.3)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable

import mujoco
import numpy as np

if TYPE_CHECKING:
    from .hand import Hand

MAX_SENSOR_VALUE = 150.0  # a grasp with any sensordata value above this is rejected (reference §3.3 step 4)
WRIST_OFFSET = np.array([0.0, 0.17, -0.05])  # metres; wrist position = -Rp · offset (reference §3.2)


def _rz(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _rx(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def wrist_pose(pitch: float, yaw: float) -> np.ndarray:
    """(5,) float64 haptic query (x, y, z metres, pitch, yaw radians) for given angles, as MESE stores it (reference
    §3.2): position = -Rp·(0, 0.17, -0.05) with Rp = Rz(yaw)·Rx(pitch), 0.177 m from the object centre; pitch wrapped
    to [0, 2π)."""
    pos = -(_rz(yaw) @ _rx(pitch) @ WRIST_OFFSET)
    return np.array([*pos, pitch % (2 * math.pi), yaw])


def sample_wrist_pose(rng: np.random.Generator) -> np.ndarray:
    """(5,) float64 random haptic query: ``wrist_pose`` of pitch ~ U(-π/2, π/2), yaw ~ U(0, 2π) (reference §3.2)."""
    pitch = rng.uniform(-math.pi / 2, math.pi / 2)
    yaw = rng.uniform(0.0, 2 * math.pi)
    return wrist_pose(pitch, yaw)


def wrist_mocap_pose(wrist_pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mocap pose of the forearm for a (5,) query: position (3,) metres = the query's x, y, z and orientation (4,)
    wxyz quaternion of Rp·Rz(π), Rp = Rz(yaw)·Rx(pitch), so the object centre sits at (0, -0.17, -0.05) in the hand
    frame, 17 cm out along the fingers on the palm side (reference §3.2)."""
    pitch, yaw = float(wrist_pose[3]), float(wrist_pose[4])
    rot = _rz(yaw) @ _rx(pitch) @ _rz(math.pi)
    quat = np.empty(4)
    mujoco.mju_mat2Quat(quat, rot.reshape(-1))
    return np.array(wrist_pose[:3], dtype=np.float64), quat


def accepted(sensordata: np.ndarray) -> bool:
    """True iff every sensordata value is <= 150 (reference §3.3 step 4: rejects teleport-into-object spikes)."""
    return bool(np.max(sensordata) <= MAX_SENSOR_VALUE)


def grasp_views(
    hand: Hand, rng: np.random.Generator, n_views: int = 15, max_attempts: int = 200,
    on_accept: Callable[[Hand], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Grasp the hand's current object at random wrist poses until ``n_views`` grasps are accepted.

    ``on_accept(hand)`` is called after each accepted grasp, with the hand still in its end state (the scene maker
    records its sensors there). Returns haptics (n_views, 132) float32 sensordata, queries (n_views, 5) float32 and
    the number of grasps made. (MESE's second rule, "hand-view image equal to the previous one", has no counterpart:
    no images are rendered.) Raises ``RuntimeError`` if ``max_attempts`` grasps do not give ``n_views`` accepted ones.
    """
    haptics, queries = [], []
    for attempt in range(1, max_attempts + 1):
        query = sample_wrist_pose(rng)
        sensordata = hand.grasp(query)
        if accepted(sensordata):
            if on_accept is not None:
                on_accept(hand)
            haptics.append(sensordata)
            queries.append(query)
            if len(queries) == n_views:
                return np.array(haptics, np.float32), np.array(queries, np.float32), attempt
    raise RuntimeError(f"only {len(queries)} of {n_views} grasps accepted in {max_attempts} attempts")
