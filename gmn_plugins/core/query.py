"""What a query kind is: where a view is taken from, registered through ``register_query_kinds`` like a sensor.

A **query kind** (``camera``: a viewpoint on the sphere; ``wrist``: a grasp pose; a plugin's ``point`` in space)
brings everything the engine must not decide by itself:

- ``dim`` and ``units`` of its raw queries, as stored in a dataset (``query.KIND``, (scenes, views, dim) float32);
- ``encode``: its encoding for the model, (N, dim) -> (N, encoded_dim) (torch), replacing a fixed 5 -> 7;
- ``rig``: the environment rig its sensors' ``record(rig)`` receives, opened once per process as
  ``rig(blocks=, physics=, hand=)``, with ``set_object(centres, colours)`` per scene and ``close()``;
- ``views``: a seeded sampler that poses the rig at ``views`` queries of one scene and calls ``record(rig)`` at each
  accepted one, returning ``{"queries": (views, dim) float32, ...}`` plus any per-scene arrays it keeps;
- optionally ``pose(rig, query)`` and ``figure_queries()``: pose the rig at any query, and the queries of the
  generation figure (the camera's 4 x 4 viewpoint grid, described by ``figure_label``), so that true views can be
  rendered anywhere; and ``describe_sensor(sensor) -> dict``: what a dataset manifest records about its sensors
  beyond shape and units (the camera: resolution and field of view).

Functions and classes may be given as ``"module:attribute"`` strings and are imported on first use, so that
registering a kind imports neither torch nor MuJoCo. Built-ins: ``gmn_plugins.mese.queries``.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from .family import resolve


@attrs.frozen
class QueryKind:
    """A query kind (see the module docstring).

    ``stream``: the index of this kind's random stream among a scene's ``SeedSequence`` children (``mese.scene``:
    0 is the object; the built-ins use 1 camera and 2 wrist; a plugin picks any other number, so its draws never
    share a stream with another kind). ``views(rig, rng, views, record)`` gets a ``numpy.random.Generator`` of
    that stream. ``pose`` and ``figure_queries`` are None when the kind cannot pose its rig at an arbitrary query.
    """

    name: str
    dim: int
    units: str
    encoded_dim: int
    encode: Any = attrs.field(eq=False, repr=False)
    rig: Any = attrs.field(eq=False, repr=False)
    views: Any = attrs.field(eq=False, repr=False)
    stream: int
    description: str = ""
    pose: Any = attrs.field(default=None, eq=False, repr=False)
    figure_queries: Any = attrs.field(default=None, eq=False, repr=False)
    figure_label: str = ""
    describe_sensor: Any = attrs.field(default=None, eq=False, repr=False)

    def __attrs_post_init__(self):
        if self.dim < 1 or self.encoded_dim < 1:
            raise ValueError(f"query kind {self.name!r}: dim and encoded_dim must be >= 1")
        if self.stream < 1:
            raise ValueError(f"query kind {self.name!r}: stream must be >= 1 (0 is the scene's object)")

    def sensor_entry(self, sensor) -> dict:
        """Extra manifest fields for one of this kind's sensors (``describe_sensor``; {} without it)."""
        return {} if self.describe_sensor is None else dict(resolve(self.describe_sensor)(sensor))

    def encode_queries(self, queries):
        """(N, dim) raw queries (torch) -> (N, encoded_dim) model input. Raises ``ValueError`` for another shape."""
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise ValueError(f"{self.name} queries must have shape (N, {self.dim}), got {tuple(queries.shape)}")
        return resolve(self.encode)(queries)

    def open_rig(self, blocks: int, physics: str, hand):
        """A new rig for objects of ``blocks`` blocks (close it with ``close()``)."""
        return resolve(self.rig)(blocks=blocks, physics=physics, hand=hand)

    def sample_views(self, rig, rng: np.random.Generator, views: int, record) -> dict[str, np.ndarray]:
        """``{"queries": (views, dim) float32, ...}`` of one scene, ``record(rig)`` called at each accepted view."""
        out = resolve(self.views)(rig, rng, views, record)
        queries = out["queries"]
        if queries.shape != (views, self.dim) or queries.dtype != np.float32:
            raise ValueError(f"query kind {self.name!r}: views() returned queries {queries.shape} {queries.dtype}, "
                             f"expected ({views}, {self.dim}) float32")  # fmt: skip
        return out

    @property
    def can_pose(self) -> bool:
        """Whether the rig can be posed at any query (``pose`` and ``figure_queries`` given)."""
        return self.pose is not None and self.figure_queries is not None

    def pose_rig(self, rig, query: np.ndarray) -> None:
        """Pose ``rig`` at one raw query (dim,). Raises ``ValueError`` when the kind cannot (``can_pose``)."""
        if self.pose is None:
            raise ValueError(f"query kind {self.name!r} cannot pose its rig at an arbitrary query")
        resolve(self.pose)(rig, query)

    def grid(self) -> np.ndarray:
        """(Q, dim) float32: the queries of the generation figure (``figure_queries``)."""
        if self.figure_queries is None:
            raise ValueError(f"query kind {self.name!r} has no figure queries")
        return np.asarray(resolve(self.figure_queries)(), np.float32)
