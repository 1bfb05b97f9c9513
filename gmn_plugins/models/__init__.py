"""Model layer of gmn-plugins: GMN with APoE or the C-GQN baseline (Lim et al., NeurIPS 2019).
Holds the networks of the built-in families "image" (C, H, W) and "vector" (D,); the GMN builds every modality's
through its ``gmn_plugins.core.family.Family``, a plugin's as well.

The names below are imported on first use (PEP 562), so that importing a torch-free submodule (``presets``) imports
no torch. The models' named options' values are ``gmn_plugins.core.options``'s."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..core.points import Points
    from .gmn import GMN, ModalityInfo
    from .presets import PRESETS, Preset

__all__ = ["GMN", "ModalityInfo", "Points", "PRESETS", "Preset"]

_LAZY = {"GMN": ".gmn", "ModalityInfo": ".gmn", "Points": "..core.points", "PRESETS": ".presets", "Preset": ".presets"}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
