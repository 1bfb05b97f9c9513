"""Modality specs: the TOML a modality plugin ships, one modality or a whole family declared once and expanded.

A single modality (``modalities/rgb.toml``)::

    name = "rgb"
    sensor = "camera.rgb"      # what the environment records per view
    query = "camera"           # camera viewpoint or wrist pose
    family = "image"           # model family: encoder + renderer (image: (C, H, W); vector: (D,))
    [slice]                    # optional; channels / rows / cols for images, indices / ranges for vectors

A family: ``axes`` expand into the product of their values, first axis outermost, and ``name`` is a template::

    name = "rgb-{v}{h}"
    sensor = "camera.rgb"
    query = "camera"
    family = "image"
    axes = [
      { key = "v", split = "rows", names = ["u", "l"] },   # split the rows into 2 equal parts named u, l
      { key = "h", split = "cols", names = ["l", "r"] },
    ]

An axis either ``split``s channels, rows or cols into ``parts`` equal pieces (named by ``names`` or 0, 1, ...), or
lists explicit ``values``: name -> slice (e.g. named haptic index groups). ``shape`` is derived from the sensor and
the slice; when given it is checked.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from typing import Literal, Optional

import attrs
import numpy as np

from .spec import SpecError, converter, read_toml, structure


@attrs.frozen
class SliceSpec:
    """How a modality's sense is cut out of its sensor's per-view array (declarative, numpy only).

    Image sensor (C, H, W): ``channels`` (indices), ``rows`` and ``cols`` ([start, stop) pixels).
    Vector sensor (D,): ``indices`` (0-based, in order) and/or ``ranges`` ([start, stop) pairs), concatenated as
    indices then ranges. Omitted fields keep everything.
    """

    channels: Optional[list[int]] = None
    rows: Optional[list[int]] = None
    cols: Optional[list[int]] = None
    indices: Optional[list[int]] = None
    ranges: Optional[list[list[int]]] = None

    def vector_indices(self) -> list[int] | None:
        """The selected vector dimensions in order, or None for all."""
        if self.indices is None and self.ranges is None:
            return None
        return list(self.indices or []) + [i for start, stop in (self.ranges or []) for i in range(start, stop)]

    def cut_image(self, sense: np.ndarray) -> np.ndarray:
        """``channels`` / ``rows`` / ``cols`` of the trailing (C, H, W) axes of ``sense``; views, no copies where
        possible (the image family's ``slice``). Raises ``ValueError`` if ``indices`` / ``ranges`` are set."""
        if self.vector_indices() is not None:
            raise ValueError("an image slice takes channels / rows / cols, not indices / ranges")
        out = sense
        if self.channels is not None:
            out = out[..., self.channels, :, :]
        if self.rows is not None:
            out = out[..., self.rows[0] : self.rows[1], :]
        if self.cols is not None:
            out = out[..., self.cols[0] : self.cols[1]]
        return out

    def merge(self, other: "SliceSpec", where: str) -> "SliceSpec":
        """This slice refined by ``other`` (an axis value); a field set in both is an error."""
        fields = {}
        for f in attrs.fields(SliceSpec):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if mine is not None and theirs is not None:
                raise SpecError(f"{where}: slice.{f.name}: set both in the base slice and by an axis")
            fields[f.name] = theirs if theirs is not None else mine
        return SliceSpec(**fields)


@attrs.frozen
class AxisSpec:
    """One expansion axis of a modality family (see the module docstring)."""

    key: str
    split: Optional[Literal["channels", "rows", "cols"]] = None
    parts: Optional[int] = None
    names: Optional[list[str]] = None
    values: Optional[dict[str, SliceSpec]] = None


@attrs.frozen
class ModalityFile:
    """What a modality TOML file holds: one modality, or a family when ``axes`` are given."""

    name: str
    sensor: str
    query: str
    family: str
    shape: Optional[list[int]] = None
    description: str = ""
    slice: SliceSpec = attrs.Factory(SliceSpec)
    axes: list[AxisSpec] = attrs.Factory(list)


@attrs.frozen
class ModalitySpec:
    """One resolved modality: sensor, slice, query kind, model family and sense ``shape``
    ((C, H, W) for an image family, (D,) for a vector family)."""

    name: str
    sensor: str
    query: str
    family: str
    shape: list[int]
    description: str = ""
    slice: SliceSpec = attrs.Factory(SliceSpec)

    def spec_hash(self) -> str:
        """Short sha256 of what defines the modality for a model and its data (name, sensor, query, family, shape,
        slice), stored in checkpoints to detect a changed modality; the ``description`` is left out, so editing
        it keeps every checkpoint valid."""
        data = converter.unstructure(self)
        data.pop("description")
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]

    def legacy_spec_hash(self) -> str:
        """The spec hash of checkpoints written before 0.2 (it covered the description too): accepted on resume."""
        text = json.dumps(converter.unstructure(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def read_modality_file(path) -> ModalityFile:
    """Read and strictly structure a modality TOML; raises ``SpecError`` (``FILE: field: problem``)."""
    return structure(read_toml(path), ModalityFile, str(path))


def _axis_values(axis: AxisSpec, base_shape: tuple[int, ...], where: str, family) -> list[tuple[str, SliceSpec]]:
    if (axis.split is None) == (axis.values is None):
        raise SpecError(f"{where}: axes.{axis.key}: give exactly one of split or values")
    if axis.values is not None:
        return list(axis.values.items())
    splits = tuple(family.split_axes())
    if axis.split not in splits or len(base_shape) != len(splits):
        can = f"splits {', '.join(splits)} of (C, H, W)-like shapes" if splits else "has no split axes (use values)"
        raise SpecError(f"{where}: axes.{axis.key}: cannot split {axis.split} of shape {base_shape}: family "
                        f"{family.name!r} {can}")  # fmt: skip
    size = base_shape[splits.index(axis.split)]
    parts = axis.parts or (len(axis.names) if axis.names else 0)
    names = axis.names or [str(i) for i in range(parts)]
    if parts < 1 or len(names) != parts or size % parts:
        raise SpecError(f"{where}: axes.{axis.key}: cannot split {axis.split} of size {size} into {parts} parts "
                        f"named {names}")  # fmt: skip
    step = size // parts
    if axis.split == "channels":
        return [(n, SliceSpec(channels=list(range(i * step, (i + 1) * step)))) for i, n in enumerate(names)]
    return [(n, SliceSpec(**{axis.split: [i * step, (i + 1) * step]})) for i, n in enumerate(names)]


def _offset(base: SliceSpec, part: SliceSpec) -> SliceSpec:
    """Express an axis slice of the base-sliced array in sensor coordinates."""
    fields = {}
    for name in ("rows", "cols"):
        b, p = getattr(base, name), getattr(part, name)
        if b is not None and p is not None:
            fields[name] = [b[0] + p[0], b[0] + p[1]]
    if base.channels is not None and part.channels is not None:
        fields["channels"] = [base.channels[i] for i in part.channels]
    return attrs.evolve(part, **fields), attrs.evolve(base, **{k: None for k in fields})


def expand(file: ModalityFile, sensor_shape: tuple[int, ...], where: str, family) -> list[ModalitySpec]:
    """The modalities a file declares, with shapes derived from ``sensor_shape`` by ``family.slice(slice_spec,
    array)`` and split along ``family.split_axes()`` (a ``Family``), checked against ``shape``.

    Raises ``SpecError`` for an impossible split, a template that does not name every axis, a slice the family
    refuses, or a wrong shape.
    """

    def shape_of(slice_: SliceSpec) -> tuple[int, ...]:
        try:
            return family.slice(slice_, np.empty(sensor_shape, np.uint8)).shape
        except (ValueError, IndexError) as exc:
            raise SpecError(f"{where}: slice: {exc}") from None

    base_shape = shape_of(file.slice)
    axes = [[(axis.key, name, s) for name, s in _axis_values(axis, base_shape, where, family)] for axis in file.axes]
    out = []
    for combo in itertools.product(*axes) if axes else [()]:
        keys = {key: name for key, name, _ in combo}
        try:
            name = file.name.format(**keys)
            description = file.description.format(**keys)
        except (KeyError, IndexError) as exc:
            raise SpecError(f"{where}: name: template {file.name!r} uses an unknown axis {exc}") from None
        if axes and name == file.name:
            raise SpecError(f"{where}: name: a family's name must be a template using its axes, e.g. 'x-{{key}}'")
        slice_ = file.slice
        for _, _, part in combo:
            part, slice_ = _offset(slice_, part)
            slice_ = slice_.merge(part, where)
        shape = list(shape_of(slice_))
        if file.shape is not None and not axes and list(file.shape) != shape:
            raise SpecError(f"{where}: shape: declared {list(file.shape)}, the slice of {file.sensor} "
                            f"{list(sensor_shape)} gives {shape}")  # fmt: skip
        out.append(ModalitySpec(name, file.sensor, file.query, file.family, shape, description, slice_))
    if len({m.name for m in out}) != len(out):
        raise SpecError(f"{where}: name: template {file.name!r} gives repeated names")
    return out
