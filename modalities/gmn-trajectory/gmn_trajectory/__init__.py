"""gmn-trajectory: a new model family ``sequence`` (senses (T, D), Conv1d networks) and the sense it was made for,
the hand's joint angles over the closing phase of each grasp, without touching gmn-plugins.

The sensor ``hand.trajectory`` uses the hand's per-physics-step hook (``Sensor.step``): after each of the grasp's
25 env steps it keeps the 22 joint angles, and ``record`` returns the (25, 22) trajectory of the accepted grasp.
The family's networks live in ``gmn_trajectory.nets`` and are named lazily, so registering imports no torch.
"""

from importlib.resources import files

import numpy as np

from gmn_plugins.plugin import GRASP_STEPS, Family, Sensor, haptic_index_names, hookimpl

JOINTS = tuple(name.split(":", 1)[1] for name in haptic_index_names() if name.startswith("jointpos:"))  # 22


class SequenceFamily(Family):
    """(T, D) sequences: D channels over T steps. Sliced by ``indices`` / ``ranges`` of the channels (the default),
    not drawn, Gaussian likelihood (the default); no preference for the latent grid."""

    def check_shape(self, shape):
        super().check_shape(shape)
        if shape[0] < 2:
            raise ValueError(f"family {self.name!r}: a sequence needs T >= 2 steps, got {tuple(shape)}")


SEQUENCE = SequenceFamily("sequence", 2, "gmn_trajectory.nets:SequenceEncoder", "gmn_trajectory.nets:SequenceRenderer",
                          "senses (T, D): D channels over T steps; Conv1d encoder and renderer")  # fmt: skip


class _Trace:
    """The per-step hook and the record of ``hand.trajectory``: joint angles after every env step of the current
    grasp (restarted at k = 0, so a rejected grasp leaves nothing behind)."""

    def __init__(self):
        self.rows: list[np.ndarray] = []
        self.addresses: dict[int, np.ndarray] = {}

    def step(self, hand, k: int) -> None:
        if k == 0:
            self.rows = []
        key = id(hand.model)
        if key not in self.addresses:
            self.addresses[key] = np.array([hand.model.joint(name).qposadr[0] for name in JOINTS])
        self.rows.append(hand.data.qpos[self.addresses[key]].astype(np.float32))

    def record(self, hand) -> np.ndarray:
        return np.stack(self.rows) if len(self.rows) == GRASP_STEPS else np.full((GRASP_STEPS, len(JOINTS)), np.nan)


_TRACE = _Trace()

TRAJECTORY = Sensor(
    name="hand.trajectory",
    shape=(GRASP_STEPS, len(JOINTS)),
    dtype="float32",
    units="radians (joint angles after each 0.04 s env step of the closing grasp)",
    query="wrist",
    record=_TRACE.record,
    step=_TRACE.step,
    normalization="minmax",
    description="the hand's 22 joint angles over the 25 env steps of the closing grasp",
    index_names=[f"step{k}:{joint}" for k in range(GRASP_STEPS) for joint in JOINTS],
)


@hookimpl
def register_families(register):
    register(SEQUENCE)


@hookimpl
def register_sensors(register):
    register(TRAJECTORY)


@hookimpl
def register_modalities(register):
    register(files(__name__) / "trajectory.toml")
