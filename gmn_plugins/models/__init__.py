"""Model layer of gmn-plugins: GMN with APoE or the C-GQN baseline (Lim et al., NeurIPS 2019).
Knows only the sense families "image" (C, H, W) and "vector" (D,)."""

from .gmn import GMN, ModalityInfo, Points
from .presets import PRESETS, Preset

__all__ = ["GMN", "ModalityInfo", "Points", "PRESETS", "Preset"]
