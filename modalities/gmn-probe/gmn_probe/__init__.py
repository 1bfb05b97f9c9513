"""gmn-probe: a new query kind ``point`` and a touch-like probe of shape, without touching gmn-plugins.

A view of this sense is one point in space, (x, y, z) in metres around the object, and what is recorded there is
the **signed distance** to the object's surface: negative inside a block, positive outside, in metres (sensor
``probe.occupancy``; ``sign`` gives occupancy). The modality ``probe`` reads it with the built-in vector family.

Everything the engine needs to know about the new query kind is in ``POINT``: its dimension and units, how the model
sees a point (``encode``), the rig its sensor reads (``ProbeRig``: the block centres of the scene), and a seeded
sampler of points per scene.
"""

from importlib.resources import files

import numpy as np

from gmn_plugins.plugin import QueryKind, Sensor, hookimpl

BLOCK_HALF_SIZE = 0.0175  # metres: MESE's blocks are 3.5 cm cubes on a lattice of the same pitch
SPREAD = 0.06  # metres: points are drawn within +-SPREAD of a random block's centre (about 3.4 block half-sizes)
SCALE = 0.05  # metres: the model sees x / SCALE, so that its inputs are about unit-sized


class ProbeRig:
    """The rig of the ``point`` kind: the scene's blocks, and the point last probed. No MuJoCo: the probe reads the
    geometry exactly."""

    def __init__(self, blocks: int, physics=None, hand=None):
        self.centres = np.zeros((blocks, 3))
        self.point = np.zeros(3)

    def set_object(self, centres: np.ndarray, colours: np.ndarray) -> None:
        self.centres = np.asarray(centres, np.float64)

    def pose(self, point: np.ndarray) -> None:
        self.point = np.asarray(point, np.float64)

    def signed_distance(self) -> float:
        """Signed distance (metres) from the point to the union of the axis-aligned blocks (exact box SDF)."""
        d = np.abs(self.point - self.centres) - BLOCK_HALF_SIZE  # (blocks, 3)
        outside = np.linalg.norm(np.maximum(d, 0.0), axis=1)
        inside = np.minimum(d.max(axis=1), 0.0)
        return float((outside + inside).min())

    def close(self) -> None:
        pass


def open_rig(blocks: int, physics: str, hand) -> ProbeRig:
    return ProbeRig(blocks)


def sample_points(rig: ProbeRig, rng: np.random.Generator, views: int, record) -> dict:
    """``views`` points, each uniform within +-``SPREAD`` of a block centre drawn uniformly: about a quarter lie
    inside the object. ``record(rig)`` at each."""
    points = []
    for _ in range(views):
        centre = rig.centres[rng.integers(len(rig.centres))]
        point = centre + rng.uniform(-SPREAD, SPREAD, 3)
        rig.pose(point)
        record(rig)
        points.append(point)
    return {"queries": np.array(points, np.float32)}


def encode(points):
    """(N, 3) metres -> (N, 3) in units of ``SCALE`` (torch)."""
    return points / SCALE


POINT = QueryKind("point", 3, "x, y, z in metres (the object's centroid at the origin)", 3, encode, open_rig,
                  sample_points, stream=7, description="a point in space around the object")  # fmt: skip

PROBE = Sensor(
    name="probe.occupancy",
    shape=(1,),
    dtype="float32",
    units="metres (signed distance: negative inside a block)",
    query="point",
    record=lambda rig: np.array([rig.signed_distance()], np.float32),
    normalization="minmax",  # the training split's range to [-1, 1], floored by the physical range below
    physical_range=[(-BLOCK_HALF_SIZE, SPREAD * 3**0.5)],
    description="signed distance from the probed point to the object's surface",
)


@hookimpl
def register_query_kinds(register):
    register(POINT)


@hookimpl
def register_sensors(register):
    register(PROBE)


@hookimpl
def register_modalities(register):
    register(files(__name__) / "probe.toml")
