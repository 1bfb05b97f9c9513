"""What a sensor and a modality are: the interfaces plugins fill in (design.md, layer 3).

A **sensor** is what the environment records per view (``camera.rgb``: a (3, 64, 64) uint8 image; ``hand.haptic``:
the (132,) MPL sensordata). A **modality** is a declarative slice of one sensor (``rgb``, ``haptic``, an image
quadrant, a finger group) with a query kind and model families. The engine never names a modality in code.
"""

from __future__ import annotations

from typing import Any, Callable, Literal

import attrs
import numpy as np

from .modality_spec import ModalitySpec

QUERY_KINDS = ("camera", "wrist")


@attrs.frozen
class Sensor:
    """A per-view recording of the environment.

    ``record(rig) -> np.ndarray`` is called once per view after the rig was posed: ``rig`` is the
    ``gmn_plugins.mese.camera.CameraRig`` for ``query = "camera"`` and the ``gmn_plugins.mese.hand.Hand`` after its grasp
    for ``query = "wrist"``. It returns an array of ``shape`` and ``dtype``.
    ``normalization``: ``"uint8"`` maps 0..255 to [0, 1]; ``"minmax"`` maps the per-dimension training-split min/max
    to [-1, 1] with a 0.1 range floor (mese_environment_reference.md §3.5); ``"none"`` keeps the values.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    units: str
    query: Literal["camera", "wrist"]
    record: Callable[[Any], np.ndarray] = attrs.field(eq=False, repr=False)
    normalization: Literal["uint8", "minmax", "none"] = "none"
    description: str = ""


def normalize(raw: np.ndarray, sensor: Sensor, stats: dict | None) -> np.ndarray:
    """Sensor array (..., *sensor.shape) -> float32 model input, by ``sensor.normalization``.

    Raises ``KeyError`` when a ``minmax`` sensor has no statistics in the dataset manifest.
    """
    if sensor.normalization == "uint8":
        return raw.astype(np.float32) / 255.0
    if sensor.normalization == "minmax":
        lo = np.asarray(stats[sensor.name]["min"], np.float32)
        hi = np.asarray(stats[sensor.name]["max"], np.float32)
        return (raw.astype(np.float32) - lo) / (0.5 * np.maximum(0.1, hi - lo)) - 1.0
    return raw.astype(np.float32)


@attrs.frozen
class Family:
    """A model family: the encoder and renderer classes every modality of that family instantiates.

    ``dims``: 3 for senses (C, H, W), 1 for (D,). ``encoder(shape, preset, grid)`` is a
    ``gmn_plugins.models.encoders.Encoder``: ``forward(senses (N, *shape), queries (N, 7)) -> (N, r, h, w)``;
    ``renderer(shape, preset, grid)`` is a ``gmn_plugins.models.renderers.Renderer``:
    ``forward(z (B, T*z, h, w), queries (N, 7), scene (N,)) -> (N, *shape)`` (design.md, layer 3).
    """

    name: str
    dims: int
    encoder: type = attrs.field(eq=False)
    renderer: type = attrs.field(eq=False)
    description: str = ""


@attrs.frozen
class Modality:
    """A registered modality: its spec, its sensor, its model family, and where it came from (listings, checkpoints)."""

    spec: ModalitySpec
    sensor: Sensor
    family: Family
    distribution: str
    version: str
    source: str  # "built-in" or "entry point"
    spec_path: str = ""

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.spec.shape)

    def slice(self, sense: np.ndarray) -> np.ndarray:
        """Cut this modality out of sensor arrays: (..., *sensor.shape) -> (..., *self.shape). Pure numpy."""
        return self.spec.slice.apply(sense, len(self.sensor.shape))

    def check(self) -> None:
        """Raise ``ValueError`` if the slice of this sensor does not give the declared shape or query kind."""
        if self.spec.query != self.sensor.query:
            raise ValueError(f"query {self.spec.query!r} differs from sensor {self.sensor.name}'s {self.sensor.query!r}")
        got = self.slice(np.zeros(self.sensor.shape, dtype=np.float32)).shape
        if tuple(got) != self.shape:
            raise ValueError(f"slice of {self.sensor.name} {self.sensor.shape} gives {tuple(got)}, spec says {self.shape}")

    def identity(self) -> dict:
        """What a checkpoint stores to recognise this modality later: name, plugin, version, spec hash."""
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "spec_hash": self.spec.spec_hash(),
        }
