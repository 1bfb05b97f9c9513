"""The allowed values of the training options, torch-free: ``gmn_plugins.spec`` builds its ``Literal`` types from
these tuples (a spec file loads without torch), and the code that implements an option validates against the same
tuple. Each is defined only here; the first value is not necessarily the spec's default."""

# train.clip_mode: implemented by train.clip_gradients.
CLIP_MODES = ("value", "norm")

# train.missing_mode: implemented by data.episodes.SceneSet.episodes (train.py and evaluation/missing.py pass the
# run's value on to it).
MISSING_MODES = ("paper", "code")

# train.context_mask: implemented by data.loader.TrainingBatches (data.masks.context_masks, passed to
# data.episodes.SceneSet.plan). "none": every shown modality draws its context size (the paper's text); "code": a
# random combination of modalities may have context, the others only targets (the authors' code).
CONTEXT_MASKS = ("none", "code")

# train.loss_reduction: implemented by train.training_loss. "mean" over the step's episodes; "sum" over them (the
# authors' code).
LOSS_REDUCTIONS = ("mean", "sum")

# train.precision: implemented by train.train_step (torch.autocast around the forward pass; fp32 master weights, the
# likelihood and KL in float32).
PRECISIONS = ("fp32", "bf16")

# train.memory_format: implemented by train.to_memory_format (the model's 4-d weights, hence every convolution's
# output, in torch.channels_last layout; the values are the same, only the speed differs).
MEMORY_FORMATS = ("contiguous", "channels_last")

# train.compile: implemented by train.compile_model ("cells": every ConvLSTM's gate update through torch.compile).
COMPILES = ("off", "cells")

# train.adam: implemented by train.make_optimizer (torch.optim.Adam's implementation: one fused kernel per
# parameter group, multi-tensor ops over all parameters, or a loop over the parameters; the same update up to
# rounding, tests/test_precision.py).
ADAMS = ("fused", "foreach", "for-loop")

# train.malloc: implemented by allocator.configure ("retain": glibc keeps freed memory for the next step).
MALLOCS = ("retain", "default")
