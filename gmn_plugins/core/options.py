"""Every named option's allowed values, torch- and mujoco-free: the one place they are defined.

``gmn_plugins.core.spec`` builds each option's ``Literal`` type from these tuples (a spec file loads without torch or
MuJoCo), and the code that implements an option, in whatever layer above, imports the same tuple and validates
against it. An implementation that keeps a table keyed by the values (``mese.physics.PHYSICS_PRESETS``,
``mese.scene.SATURATION``, ``models.presets.PRESETS``) has keys equal to the tuple, in its order
(tests/test_options.py). Defining them here, below everything, is what lets the spec name them without importing a
higher layer (tests/test_layers.py). The first value is not necessarily the spec's default.
"""

# ---------------------------------------------------------------------------------------------------------------
# data (MESE)

# data.physics: the keys of mese.physics.PHYSICS_PRESETS, implemented by mese.hand.Hand and its MuJoCo model.
PHYSICS = ("faithful", "fast")

# data.saturation: the keys of mese.scene.SATURATION, the blocks' HSV saturation range (mese.scene.SceneMaker;
# mese.generate checks a dataset's config against it).
SATURATIONS = ("code", "paper")

# data.hand.wrist_lock of an MJCF hand: implemented by mese.hand.mpl_file_xml (measurements in mese/physics.py).
WRIST_LOCKS = ("contact", "equality")

# data.hand.hull_vertices: 0 (full hulls) or at least a tetrahedron's 4 vertices, and at most MAX (gmn-run's
# data.hand.hull_vertices, gmn-data's --hull-vertices); implemented by mese.hand.mpl_file_xml.
MIN_HULL_VERTICES = 4
MAX_HULL_VERTICES = 100000

# ---------------------------------------------------------------------------------------------------------------
# model

# model.preset: the keys of models.presets.PRESETS (training.experiment.build_model: PRESETS[model.preset]).
PRESET_NAMES = ("v4", "small", "tiny")

# model.inference: implemented by GMN (models/gmn.py), which builds APoE, PoE or Baseline (models/inference.py).
INFERENCES = ("apoe", "poe", "baseline")

# model.experts: implemented by inference._Product (models/inference.py), the base of APoE and PoE.
EXPERTS = ("present", "all")

# model.first_step_prior: implemented by ConvDraw (models/convdraw.py).
FIRST_STEP_PRIORS = ("bias", "context")

# model.vector_projection: the vector family's option (core/families.py), implemented by models.encoders.VectorEncoder:
# the authors' dense 512 -> r*h*w projection, or the light spatial broadcast (reference §9.1 item 3).
VECTOR_PROJECTIONS = ("dense", "light")

# model.init: implemented by GMN (models/gmn.py, init_relu_layers). "default" is torch's, as the authors' code draws it
# (every ConvLSTM's gate convolution as one nn.Conv2d, models/convlstm.py); "kaiming" re-initialises the encoders'
# layers (He normal, fan-in, zero bias) and leaves every ConvLSTM at the default.
INITS = ("default", "kaiming")

# model.aggregate: implemented by encoders.Encoder.aggregate_sets. "sum" over a scene's points (paper §3, the
# authors' code); "mean" over them (beyond the paper: keeps r in range whatever the number of views, issue 28).
AGGREGATES = ("sum", "mean")

# model.target_encoder: implemented by GMN (models/gmn.py). "shared": the posterior reads the targets through each
# modality's encoder, as the context (paper, authors' code); "shallow": through the family's shallow target encoder
# (``Family.target_encoder``; images: 4 x 4 pixel blocks and a per-cell MLP), GQN's short path from target pixels to
# the inference core (beyond the paper, issue 28).
TARGET_ENCODERS = ("shared", "shallow")

# model.renderer_context: implemented by GMN (models/gmn.py). "none": each renderer reads z and the query (paper
# Eq. 1, authors' code); "mean": it also reads the mean over modalities of the context representations r_m, projected
# by a 1 x 1 convolution (GQN's generator reads r; beyond the paper, issue 28).
RENDERER_CONTEXTS = ("none", "mean")

# ---------------------------------------------------------------------------------------------------------------
# train

# train.clip_mode: implemented by training.trainer.clip_gradients.
CLIP_MODES = ("value", "norm")

# train.missing_mode: implemented by data.episodes.SceneSet.episodes (training/trainer.py and training/validation.py
# pass the run's value on to it).
MISSING_MODES = ("paper", "code")

# train.context_mask: implemented by data.loader.TrainingBatches (data.masks.context_masks, passed to
# data.episodes.SceneSet.plan). "none": every shown modality draws its context size (the paper's text); "code": a
# random combination of modalities may have context, the others only targets (the authors' code).
CONTEXT_MASKS = ("none", "code")

# train.loss_reduction: implemented by training.trainer.training_loss. "mean" over the step's episodes; "sum" over
# them (the authors' code).
LOSS_REDUCTIONS = ("mean", "sum")

# train.precision: implemented by training.trainer.train_step (torch.autocast around the forward pass; fp32 master
# weights, the likelihood and KL in float32).
PRECISIONS = ("fp32", "bf16")

# train.memory_format: implemented by training.trainer.to_memory_format (the model's 4-d weights, hence every
# convolution's output, in torch.channels_last layout; the values are the same, only the speed differs).
MEMORY_FORMATS = ("contiguous", "channels_last")

# train.compile: implemented by training.trainer.compile_model ("cells": every ConvLSTM's gate update through
# torch.compile).
COMPILES = ("off", "cells")

# train.adam: implemented by training.trainer.make_optimizer (torch.optim.Adam's implementation: one fused kernel per
# parameter group, multi-tensor ops over all parameters, or a loop over the parameters; the same update up to
# rounding, tests/test_precision.py).
ADAMS = ("fused", "foreach", "for-loop")

# train.malloc: implemented by runtime.allocator.configure ("retain": glibc keeps freed memory for the next step).
MALLOCS = ("retain", "default")
