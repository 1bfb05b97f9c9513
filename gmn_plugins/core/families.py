"""The built-in model families, registered through the same ``register_families`` hook a plugin uses.

``image``: the GQN tower encoder and the ConvLSTM + deconvolution renderer (gmn_model_reference.md §2.1, §4.1);
senses (C, H, W), asking for an H/4 x W/4 latent grid, drawn as pictures.
``vector``: the MLP encoder projected onto the latent grid and the ConvLSTM + MLP renderer (§2.2, §4.2); senses (D,).

The encoder and renderer classes are named as ``"module:Class"``: importing this module imports no torch.
"""

from __future__ import annotations

import numpy as np

from gmn_plugins import hookimpl

from .family import Family
from .options import VECTOR_PROJECTIONS  # the authors' dense projection or the light broadcast (reference §9.1.3)


class ImageFamily(Family):
    """(C, H, W) images: sliced by channels / rows / cols, an H/4 x W/4 latent grid, drawn as they are."""

    def check_shape(self, shape):
        super().check_shape(shape)
        if shape[1] < 4 or shape[2] < 4:
            raise ValueError(f"family {self.name!r}: images need H, W >= 4 (two stride-2 layers), got {tuple(shape)}")

    def latent_grid(self, shape):
        return (max(1, shape[1] // 4), max(1, shape[2] // 4))

    def slice(self, cut, sense):
        return cut.cut_image(sense)

    def split_axes(self):
        return ("channels", "rows", "cols")

    def draw(self, sense):
        return np.clip(np.asarray(sense, np.float32), 0.0, 1.0)


IMAGE = ImageFamily("image", 3, "gmn_plugins.models.encoders:ImageEncoder", "gmn_plugins.models.renderers:ImageRenderer",
                    "senses (C, H, W); latent grid H/4 x W/4",
                    target_encoder="gmn_plugins.models.encoders:ShallowImageEncoder")  # fmt: skip
VECTOR = Family("vector", 1, "gmn_plugins.models.encoders:VectorEncoder", "gmn_plugins.models.renderers:VectorRenderer",
                "senses (D,)", options={"vector_projection": VECTOR_PROJECTIONS},
                target_encoder="gmn_plugins.models.encoders:ShallowVectorEncoder")  # fmt: skip
BUILTIN = {f.name: f for f in (IMAGE, VECTOR)}


@hookimpl
def register_families(register):
    register(IMAGE)
    register(VECTOR)
