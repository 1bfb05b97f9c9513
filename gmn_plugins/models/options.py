"""The allowed values of the model's named options, torch-free: ``gmn_plugins.spec`` builds its ``Literal`` types
from these tuples (spec files must load without torch), and the modules that implement the options validate against
the same tuples. Each is defined only here; the first value is not necessarily the spec's default.

The model's other named options are defined where they are implemented, torch-free too: ``model.preset`` by the
keys of ``presets.PRESETS``, ``model.vector_projection`` by ``gmn_plugins.families.VECTOR_PROJECTIONS``.
"""

# model.inference: implemented by GMN (gmn.py), which builds APoE, PoE or Baseline (inference.py).
INFERENCES = ("apoe", "poe", "baseline")

# model.experts: implemented by inference._Product (inference.py), the base of APoE and PoE.
EXPERTS = ("present", "all")

# model.first_step_prior: implemented by ConvDraw (convdraw.py).
FIRST_STEP_PRIORS = ("bias", "context")

# model.init: implemented by GMN (gmn.py, init_relu_layers). "default" is torch's, as the authors' code draws it
# (every ConvLSTM's gate convolution as one nn.Conv2d, convlstm.py); "kaiming" re-initialises the encoders' layers
# (He normal, fan-in, zero bias) and leaves every ConvLSTM at the default.
INITS = ("default", "kaiming")

# model.aggregate: implemented by encoders.Encoder.aggregate_sets. "sum" over a scene's points (paper §3, the
# authors' code); "mean" over them (beyond the paper: keeps r in range whatever the number of views, issue 28).
AGGREGATES = ("sum", "mean")

# model.target_encoder: implemented by GMN (gmn.py). "shared": the posterior reads the targets through each modality's
# encoder, as the context (paper, authors' code); "shallow": through the family's shallow target encoder
# (``Family.target_encoder``; images: 4 x 4 pixel blocks and a per-cell MLP), GQN's short path from target pixels to
# the inference core (beyond the paper, issue 28).
TARGET_ENCODERS = ("shared", "shallow")

# model.renderer_context: implemented by GMN (gmn.py). "none": each renderer reads z and the query (paper Eq. 1,
# authors' code); "mean": it also reads the mean over modalities of the context representations r_m, projected by
# a 1 x 1 convolution (GQN's generator reads r; beyond the paper, issue 28).
RENDERER_CONTEXTS = ("none", "mean")
