"""What flows between the data layer and the models: the observations of one modality, packed over a batch.

Its own module so that data code needs no model code to build a batch (issue 12: layers that hold).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:  # annotations only: the core layer imports no torch (tests/test_layers.py)
    import torch


@attrs.frozen(eq=False)
class Points:
    """The observations of ONE modality, packed over all scenes of a batch (N may be 0).
    senses (N, *shape) float32 (images in [0, 1], vectors roughly in [-1, 1]); queries (N, Q) raw, in the units of
    the modality's query kind (camera and wrist: Q = 5, x, y, z in metres, pitch, yaw in radians); scene (N,) int64
    index of the scene in [0, B)."""

    senses: torch.Tensor
    queries: torch.Tensor
    scene: torch.Tensor

    def pin_memory(self) -> "Points":
        """The same points in page-locked memory (``DataLoader(pin_memory=True)`` calls it), for fast CUDA copies."""
        return Points(self.senses.pin_memory(), self.queries.pin_memory(), self.scene.pin_memory())

    def to(self, device: torch.device) -> "Points":
        """The same points on ``device`` (self when already there)."""
        if self.senses.device == device:
            return self
        return Points(self.senses.to(device), self.queries.to(device), self.scene.to(device))
