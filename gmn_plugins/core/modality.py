"""What a sensor and a modality are: the interfaces plugins fill in (design.md, layer 3).

A **sensor** is what the environment records per view (``camera.rgb``: a (3, 64, 64) uint8 image; ``hand.haptic``:
the (132,) MPL sensordata). A **modality** is a declarative slice of one sensor (``rgb``, ``haptic``, an image
quadrant, a finger group) with a query kind and model families. The engine never names a modality in code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Literal

import attrs
import numpy as np

from .family import Family  # noqa: F401  (re-exported: plugins import it from here)
from .modality_spec import ModalitySpec

MINMAX_FLOOR = 0.1  # smallest min-max range width, in the sensor's units (mese_environment_reference.md §3.5)
# ``minmax`` model inputs are clipped to [-INPUT_CLIP, INPUT_CLIP] (this project's choice, issue 10). Training data
# lies in [-1, 1], and so does every value inside a sensor's physical range where the statistics lie inside it; 3
# keeps values up to one whole range width beyond either end (a shifted but plausible hand) and bounds whatever else
# an unseen hand or a glitch feeds the encoder.
INPUT_CLIP = 3.0


def _pairs(value, sensor: Sensor) -> tuple[tuple[float, float], ...] | None:
    """A sensor of shape S takes one (lo, hi) pair per value: an array of shape (*S, 2), or flattened (prod(S), 2)
    in C order; stored flattened, as a tuple of float pairs. ``ValueError`` for any other shape."""
    if value is None:
        return None
    size, shape = int(np.prod(sensor.shape)), tuple(sensor.shape)
    allowed = sorted({(size, 2), (*shape, 2)}, key=len)
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        array = None  # ragged, or not numbers
    if array is None or array.shape not in allowed:
        what = f"shape {array.shape}" if array is not None else "ragged or non-numeric values"
        raise ValueError(f"{sensor.name}: physical_range has {what}; shape {shape} needs "
                         f"{' or '.join(map(str, allowed))}: one (lo, hi) pair per value")
    return tuple((float(lo), float(hi)) for lo, hi in array.reshape(size, 2))


def _check_physical_range(sensor: Sensor, attribute, value) -> None:
    if value is None:
        return
    bad = [i for i, (lo, hi) in enumerate(value) if not lo < hi]
    if bad:
        raise ValueError(f"{sensor.name}: physical_range needs lo < hi, not so at dimensions {bad[:10]}")


@attrs.frozen
class Sensor:
    """A per-view recording of the environment.

    ``record(rig) -> np.ndarray`` is called once per view after the rig of its query kind was posed
    (``QueryKind.rig``): the ``gmn_plugins.mese.camera.CameraRig`` for ``query = "camera"``, the
    ``gmn_plugins.mese.hand.Hand`` after its grasp for ``query = "wrist"``, a plugin kind's own rig. It returns an
    array of ``shape`` and ``dtype``.
    ``normalization`` (see ``normalize``): ``"uint8"`` maps 0..255 to [0, 1]; ``"minmax"`` maps the per-dimension
    training-split min/max to [-1, 1] (mese_environment_reference.md §3.5), floored by ``physical_range`` and clipped
    to ±``INPUT_CLIP``; ``"none"`` keeps the values.
    ``physical_range``: None, or one (lo, hi) pair per value of ``shape``, as an array (*shape, 2) or flattened in
    C order (prod(shape), 2), in the sensor's ``units``, lo < hi: the span the quantity can physically take (joint
    limits, force limits, ...). It floors the width of a ``minmax`` range, so a dimension that barely varies in the
    training data cannot blow up an input that varies elsewhere. Stored flattened, as a tuple of float pairs
    (hashable; ``ValueError`` for any other shape, or lo >= hi).
    ``index_names``: None, or one name per value of the flattened ``shape`` (what each index is, e.g. the 132
    haptic values' joint, actuator and site names), shown by ``gmn-plugins sensors NAME``.
    ``step``: None, or ``step(rig, k)``, called after every physics step k of a view's simulation by a rig that
    simulates (its ``step_hooks``: the hand, once per env step of the closing grasp, k = 0..24, rejected grasps
    included), before ``record(rig)``; for senses of the motion itself (gmn-trajectory). It must not change the
    rig's state.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    units: str
    query: str  # a registered query kind (gmn_plugins.core.query.QueryKind): "camera", "wrist", a plugin's
    record: Callable[[Any], np.ndarray] = attrs.field(eq=False, repr=False)
    normalization: Literal["uint8", "minmax", "none"] = "none"
    description: str = ""
    physical_range: tuple[tuple[float, float], ...] | None = attrs.field(
        default=None, converter=attrs.Converter(_pairs, takes_self=True), validator=_check_physical_range,
        repr=False
    )
    index_names: tuple[str, ...] | None = attrs.field(default=None, converter=lambda v: None if v is None else tuple(v),
                                                      repr=False)  # fmt: skip
    step: Callable[[Any, int], None] | None = attrs.field(default=None, eq=False, repr=False)


class SensorRecordError(ValueError):
    """A sensor's ``record()`` raised, or returned something other than it declared (shape, dtype) or non-finite values:
    ``SensorRecordError(sensor_name, problem[, scene])``, one line naming the sensor, what was declared and what came
    (``modality.record_problem``), or what ``record()`` raised (``raised``). Picklable, so it crosses from a
    generation worker."""

    def __str__(self) -> str:
        return f"sensor {self.args[0]}: {self.args[1]}"


def raised(call: str, exc: BaseException, function: Callable | None = None) -> str:
    """``CALL raised TYPE: MESSAGE (FILE:LINE)``, one line: what a plugin's ``function`` raised and the innermost
    place in the plugin's own files (those beside ``function``'s; FILE relative to its ``sys.path`` entry)."""
    import os
    import sys
    import traceback

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith("<")]
    code = getattr(function, "__code__", None)
    home = os.path.dirname(code.co_filename) + os.sep if code is not None else ""
    frames = [f for f in frames if f.filename.startswith(home)] or frames
    where = ""
    if frames:
        roots = [r for r in (os.path.abspath(e or ".").rstrip(os.sep) + os.sep for e in sys.path)
                 if frames[-1].filename.startswith(r)]  # fmt: skip
        name = os.path.relpath(frames[-1].filename, max(roots, key=len)) if roots else Path(frames[-1].filename).name
        where = f" ({name}:{frames[-1].lineno})"
    message = " ".join(str(exc).split())
    return f"{call} raised {type(exc).__name__}{': ' if message else ''}{message[:300]}{where}"


def record_problem(sensor: Sensor, value: Any) -> str | None:
    """What is wrong with one value returned by ``sensor.record`` (one view), or None: it must be a numpy array of
    exactly ``sensor.shape``, of ``sensor.dtype`` or a dtype of the same kind that casts to it (float64 for float32;
    not float for uint8), with finite values. The text says what was declared and what came."""
    declared = f"declared {tuple(sensor.shape)} {sensor.dtype}"
    if not isinstance(value, np.ndarray):
        return f"record() returned {type(value).__name__}, {declared}"
    if tuple(value.shape) != tuple(sensor.shape) or not np.can_cast(value.dtype, sensor.dtype, casting="same_kind"):
        return f"record() returned shape {tuple(value.shape)} {value.dtype}, {declared}"
    if value.dtype.kind in "fc" and not np.isfinite(value).all():
        bad = int((~np.isfinite(value)).sum())
        return f"record() returned {bad} non-finite value(s) (NaN or inf) of {value.size}"
    return None


def minmax_range(sensor: Sensor, stats: dict) -> tuple[np.ndarray, np.ndarray]:
    """The per-dimension range ``minmax`` maps to [-1, 1]: ``(lo, width)``, float32 arrays of ``sensor.shape``.

    Start: the training-split min/max of the dataset manifest, ``stats[sensor.name]["min" / "max"]``
    (mese_environment_reference.md §3.5). Floor (this project's choice, issue 10): where the statistics are narrower
    than the sensor's ``physical_range`` (plo, phi), the range becomes that physical interval, slid just far enough to
    contain the statistics: width phi - plo, lo = clip(plo, max - (phi - plo), min), i.e. the physical interval itself
    whenever the statistics lie inside it. Dimensions whose statistics are at least as wide keep them unchanged.
    Last, the reference's floor: width >= ``MINMAX_FLOOR`` (0.1), anchored at lo, which alone applies to sensors
    without a physical range. Raises ``KeyError`` when the manifest has no statistics for the sensor.
    """
    lo = np.asarray(stats[sensor.name]["min"], np.float32)
    hi = np.asarray(stats[sensor.name]["max"], np.float32)
    if sensor.physical_range is not None:
        plo, phi = np.asarray(sensor.physical_range, np.float32).T.reshape(2, *sensor.shape)
        narrow = hi - lo < phi - plo
        lo = np.where(narrow, np.clip(plo, hi - (phi - plo), lo), lo)
        hi = np.where(narrow, lo + (phi - plo), hi)
    return lo, np.maximum(np.float32(MINMAX_FLOOR), hi - lo)


def normalize(raw: np.ndarray, sensor: Sensor, stats: dict | None) -> np.ndarray:
    """Sensor array (..., *sensor.shape) -> float32 model input, by ``sensor.normalization``.

    ``"uint8"``: x / 255, in [0, 1]. ``"minmax"``: x' = (x - lo) / (0.5 · width) - 1 with ``minmax_range``'s
    (lo, width), then clipped to [-``INPUT_CLIP``, ``INPUT_CLIP``] = [-3, 3]: training data lands in [-1, 1], and so
    does any value inside the sensor's physical range where the statistics lie inside it (the range is then that
    physical interval, or the statistics if wider). ``"none"``: the values as float32, not clipped (the plugin
    declared them model-ready, e.g. depth in metres). Raises ``KeyError`` when a ``minmax`` sensor has no statistics
    in the dataset manifest.
    """
    if sensor.normalization == "uint8":
        return raw.astype(np.float32) / 255.0
    if sensor.normalization == "minmax":
        lo, width = minmax_range(sensor, stats)
        scaled = (raw.astype(np.float32) - lo) / (0.5 * width) - 1.0
        return np.clip(scaled, -INPUT_CLIP, INPUT_CLIP).astype(np.float32)
    return raw.astype(np.float32)


def denormalize(senses: np.ndarray, sensor: Sensor, stats: dict | None, cut: Callable = lambda a: a) -> np.ndarray:
    """``normalize``'s inverse: model-scale ``senses`` (..., *shape) -> the sensor's units and dtype. ``"uint8"``:
    x · 255 rounded and clipped to 0..255; ``"minmax"``: (x + 1) · 0.5 · width + lo (the model's [-1, 1] is the
    training range); ``"none"``: as they are. ``cut``: the modality's slice of a (*sensor.shape) array, for senses
    of a modality cut from the sensor (``Modality.slice``). Raises ``KeyError`` as ``normalize``."""
    x = np.asarray(senses, np.float32)
    if sensor.normalization == "uint8":
        return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
    if sensor.normalization == "minmax":
        lo, width = minmax_range(sensor, stats)
        return ((x + 1.0) * (0.5 * cut(width)) + cut(lo)).astype(sensor.dtype)
    return x.astype(sensor.dtype)


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
    query_kind: Any = attrs.field(default=None, eq=False, repr=False)  # its gmn_plugins.core.query.QueryKind

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.spec.shape)

    def slice(self, sense: np.ndarray) -> np.ndarray:
        """Cut this modality out of sensor arrays: (..., *sensor.shape) -> (..., *self.shape), as its family cuts
        (``Family.slice``). Pure numpy."""
        return self.family.slice(self.spec.slice, sense)

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
            "legacy_spec_hash": self.spec.legacy_spec_hash(),  # what checkpoints before 0.2 stored
        }
