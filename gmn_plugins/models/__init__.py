"""Model layer of gmn-plugins: GMN with APoE or the C-GQN baseline (Lim et al., NeurIPS 2019).
Holds the networks of the built-in families "image" (C, H, W) and "vector" (D,); the GMN builds every modality's
through its ``gmn_plugins.family.Family``, a plugin's as well."""

from .gmn import GMN, ModalityInfo, Points
from .presets import PRESETS, Preset

__all__ = ["GMN", "ModalityInfo", "Points", "PRESETS", "Preset"]
