"""The built-in model families, registered through the same ``register_families`` hook a plugin uses.

``image``: the GQN tower encoder and the ConvLSTM + deconvolution renderer (gmn_model_reference.md §2.1, §4.1).
``vector``: the MLP encoder projected onto the latent grid and the ConvLSTM + MLP renderer (§2.2, §4.2).
"""

from gmn_plugins import hookimpl

from .modality import Family
from .models.gmn import FAMILIES

IMAGE = Family("image", 3, *FAMILIES["image"], "senses (C, H, W); latent grid H/4 x W/4")
VECTOR = Family("vector", 1, *FAMILIES["vector"], "senses (D,)")


@hookimpl
def register_families(register):
    register(IMAGE)
    register(VECTOR)
