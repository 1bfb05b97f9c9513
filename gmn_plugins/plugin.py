"""Everything a plugin author imports, from one place: ``from gmn_plugins.plugin import hookimpl, Sensor, ...``.

The hooks a plugin implements are in ``gmn_plugins.core.hookspecs``; the walk-through is
docs/writing-a-modality-plugin.md, and ``gmn-plugins new NAME`` writes a package that uses only this module.

Registering (torch- and mujoco-free, imported with this module):
    hookimpl                 the marker of a hook implementation (``@hookimpl def register_sensors(register)``)
    Sensor, SensorRecordError  a sensor: what a rig records at a query; the error its ``record`` may raise
    QueryKind                a place views are taken from, with its rig (section 14 of the tutorial)
    Family                   a kind of sense: shapes, latent grid, likelihood, drawing, its networks by name
    ModalityFile             a modality file read in Python (``register(ModalityFile(...))``)
    Points                   what the data hands the networks: senses (N, *shape), queries (N, Q), scene (N,)
    load_registry            every installed plugin, loaded; ``registry.modalities``, ``.sensors``, ``.plugins``

Imported on first use (they import torch or MuJoCo):
    Encoder, Renderer        the bases of a family's networks; ImageEncoder, VectorEncoder, ImageRenderer,
                             VectorRenderer the built-in families' ones; broadcast_query (N, Q) -> (N, Q, h, w)
    Hand, GRASP_STEPS, haptic_index_names, haptic_physical_range
                             MESE's hand as a sensor's ``record``/``step`` gets it: its MuJoCo ``model``/``data``,
                             the 25 env steps of a grasp, the names and physical ranges of the 132 haptic values
    CameraRig, SceneMaker    the camera rig a camera sensor reads (``rig.render``); one MESE scene, as the
                             dataset generator makes it (a plugin's own tests record through it)
    check_modality, ConformanceError   what ``gmn-plugins check NAME`` runs on a registered modality

``import gmn_plugins.plugin`` imports neither torch nor MuJoCo (tests/test_plugin_surface.py).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from . import hookimpl
from .core.family import Family
from .core.modality import Sensor, SensorRecordError
from .core.modality_spec import ModalityFile
from .core.plugins import load_registry
from .core.points import Points
from .core.query import QueryKind

# name -> the module that defines it; imported on first access (torch or MuJoCo)
_LAZY = {
    **dict.fromkeys(("Encoder", "ImageEncoder", "VectorEncoder", "broadcast_query"), "gmn_plugins.models.encoders"),
    **dict.fromkeys(("Renderer", "ImageRenderer", "VectorRenderer"), "gmn_plugins.models.renderers"),
    **dict.fromkeys(("Hand", "GRASP_STEPS", "haptic_index_names", "haptic_physical_range"), "gmn_plugins.mese.hand"),
    "CameraRig": "gmn_plugins.mese.camera",
    "SceneMaker": "gmn_plugins.mese.scene",
    **dict.fromkeys(("check_modality", "ConformanceError"), "gmn_plugins.authoring.conformance"),
}

if TYPE_CHECKING:  # what type checkers and editors see; at run time, __getattr__ imports them on first use
    from .authoring.conformance import ConformanceError, check_modality
    from .mese.camera import CameraRig
    from .mese.hand import GRASP_STEPS, Hand, haptic_index_names, haptic_physical_range
    from .mese.scene import SceneMaker
    from .models.encoders import Encoder, ImageEncoder, VectorEncoder, broadcast_query
    from .models.renderers import ImageRenderer, Renderer, VectorRenderer

__all__ = ["hookimpl", "Sensor", "SensorRecordError", "QueryKind", "Family", "ModalityFile", "Points",
           "load_registry", *_LAZY]  # fmt: skip


def __getattr__(name: str):
    """A name of ``_LAZY``, imported from its module on first access (then kept here). Raises ``AttributeError`` for
    any other name."""
    if name not in _LAZY:
        raise AttributeError(f"module 'gmn_plugins.plugin' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
