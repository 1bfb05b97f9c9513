"""The built-in model families, registered through the same ``register_families`` hook a plugin uses.

``image``: the GQN tower encoder and the ConvLSTM + deconvolution renderer (gmn_model_reference.md §2.1, §4.1);
senses (C, H, W), asking for an H/4 x W/4 latent grid, drawn as pictures; its likelihood's ``chroma_weight``
(``model.chroma_weight``) weighs the colour errors of 3-channel images (beyond the paper, issue 28).
``vector``: the MLP encoder projected onto the latent grid and the ConvLSTM + MLP renderer (§2.2, §4.2); senses (D,).

The encoder and renderer classes are named as ``"module:Class"``: importing this module imports no torch.
"""

from __future__ import annotations

import math

import numpy as np

from gmn_plugins import hookimpl

from .family import HALF_LOG_2PI, Family
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

    def nll(self, mean, senses, sigma, chroma_weight=1.0):
        """The Gaussian of ``Family.nll`` (paper, reference §4.3) with ``chroma_weight`` w = 1. With w != 1 and 3
        channels, the error is taken in the orthonormal colour basis (1, 1, 1)/sqrt 3 (luminance), (1, -1, 0)/sqrt 2
        and (1, 1, -2)/sqrt 6 (chroma), and the two chroma coordinates have std sigma / sqrt w: their squared
        errors weigh w times, luminance's as the paper's. Still a normalised density of the image (the basis is a
        rotation); elementwise (N, 3, H, W) with channel 0 luminance, 1 and 2 chroma. Images of other channel
        counts (a colour channel, a depth map) keep the paper's Gaussian. Beyond the paper (issue 28): on MESE the
        fast recipe's renders otherwise stay on one chroma axis in some seeds (docs/fast-recipe.md)."""
        if chroma_weight == 1.0 or senses.shape[1] != len(COLOUR_BASIS):
            return super().nll(mean, senses, sigma)
        basis = mean.new_tensor(COLOUR_BASIS)
        error = ((senses - mean).movedim(1, -1) @ basis.T).movedim(-1, 1)  # (N, 3, H, W): luminance, chroma, chroma
        chroma_std = sigma / math.sqrt(chroma_weight)
        std = mean.new_tensor([sigma, chroma_std, chroma_std]).view(1, 3, 1, 1)  # per coordinate of the basis
        return 0.5 * (error / std) ** 2 + std.log() + HALF_LOG_2PI


# The orthonormal colour basis of ImageFamily.nll's chroma_weight: rows luminance, red-green, yellow-blue.
COLOUR_BASIS = ((1 / math.sqrt(3),) * 3, (1 / math.sqrt(2), -1 / math.sqrt(2), 0.0),
                (1 / math.sqrt(6), 1 / math.sqrt(6), -2 / math.sqrt(6)))


IMAGE = ImageFamily("image", 3, "gmn_plugins.models.encoders:ImageEncoder", "gmn_plugins.models.renderers:ImageRenderer",
                    "senses (C, H, W); latent grid H/4 x W/4",
                    target_encoder="gmn_plugins.models.encoders:ShallowImageEncoder",
                    likelihood_options={"chroma_weight": 1.0})  # fmt: skip
VECTOR = Family("vector", 1, "gmn_plugins.models.encoders:VectorEncoder", "gmn_plugins.models.renderers:VectorRenderer",
                "senses (D,)", options={"vector_projection": VECTOR_PROJECTIONS},
                target_encoder="gmn_plugins.models.encoders:ShallowVectorEncoder")  # fmt: skip
BUILTIN = {f.name: f for f in (IMAGE, VECTOR)}


@hookimpl
def register_families(register):
    register(IMAGE)
    register(VECTOR)
