"""Named options (issues 12, 32): each option's allowed values are one tuple of ``gmn_plugins.core.options``; the
spec schema reads them from there and the implementing code validates against the very same tuple (a table keyed by
the values has keys equal to it); the spec module and the plugin core import neither torch nor mujoco."""

import json
import subprocess
import sys
from typing import get_args, get_type_hints

import attrs
import pytest
import torch

from gmn_plugins.core import families, options
from gmn_plugins.core import spec as spec_module
from gmn_plugins.core.spec import DataSpec, ExperimentSpec, ModelSpec, SpecError, TrainSpec, load_spec
from gmn_plugins.data import loader
from gmn_plugins.mese import hand, physics, scene
from gmn_plugins.models import convdraw, encoders, gmn, inference, presets
from gmn_plugins.runtime import allocator
from gmn_plugins.training import trainer

# Every named option of an experiment spec -> the tuple the implementing code validates against (imported by it from
# core.options), or the table whose keys are the values.
IMPLEMENTED = {
    "data.physics": hand.PHYSICS_PRESETS,  # hand.py: Hand and its MuJoCo model
    "data.saturation": scene.SATURATION,  # scene.py (generate.py checks a dataset's config against it)
    "model.inference": gmn.INFERENCES,  # GMN
    "model.preset": presets.PRESETS,  # experiment.build_model: PRESETS[model.preset]
    "model.experts": inference.EXPERTS,  # APoE, PoE (gmn.py checks it too)
    "model.first_step_prior": convdraw.FIRST_STEP_PRIORS,  # ConvDraw
    "model.vector_projection": encoders.PROJECTIONS,  # VectorEncoder, the vector family's option
    "model.init": gmn.INITS,  # GMN: init_relu_layers
    "model.aggregate": encoders.AGGREGATES,  # encoders.Encoder.aggregate_sets
    "model.target_encoder": gmn.TARGET_ENCODERS,  # GMN
    "model.renderer_context": gmn.RENDERER_CONTEXTS,  # GMN.render_input
    "train.clip_mode": trainer.CLIP_MODES,  # trainer.clip_gradients
    "train.missing_mode": options.MISSING_MODES,  # data.episodes.SceneSet.episodes
    "train.precision": options.PRECISIONS,  # trainer.train_step: torch.autocast
    "train.memory_format": trainer.MEMORY_FORMATS,  # trainer.to_memory_format
    "train.compile": trainer.COMPILES,  # trainer.compile_model
    "train.adam": trainer.ADAMS,  # trainer.make_optimizer
    "train.malloc": allocator.MALLOCS,  # allocator.configure
    "train.context_mask": loader.CONTEXT_MASKS,  # data.loader.TrainingBatches
    "train.loss_reduction": trainer.LOSS_REDUCTIONS,  # trainer.training_loss
}
TABLES = {"data.physics": physics.PHYSICS_PRESETS, "data.saturation": scene.SATURATION, "model.preset": presets.PRESETS}
# The spec's defaults, unchanged since the options were written out as Literal[...] in core/spec.py.
DEFAULTS = {
    "data.physics": "fast", "data.saturation": "code", "model.inference": "apoe", "model.preset": "small",
    "model.experts": "present", "model.first_step_prior": "bias", "model.vector_projection": "dense",
    "model.init": "default",
    "train.clip_mode": "value", "train.missing_mode": "paper", "train.precision": "fp32",
    "train.memory_format": "contiguous", "train.compile": "off", "train.adam": "fused", "train.malloc": "retain",
    "train.context_mask": "none", "train.loss_reduction": "mean", "model.aggregate": "sum", "model.target_encoder": "shared",
    "model.renderer_context": "none",
}  # fmt: skip
SECTIONS = {"data": DataSpec, "model": ModelSpec, "train": TrainSpec}


def _annotated(field: str):
    """(spec class, field name) of a dotted field such as ``model.inference``."""
    section, name = field.split(".")
    return SECTIONS[section], name


def test_the_spec_module_and_the_plugin_core_import_neither_torch_nor_mujoco(quickstart_spec):
    """MESE data-generation workers load the plugin registry: they must stay torch-free. Loading a spec reads the
    option values from their modules, which must be torch- and mujoco-free as well. The console tools check their
    input before importing torch (a spec mistake is answered in 0.3 s, not the 2.3 s a torch import adds): their
    modules, and the registry resolving the spec's modalities, import no torch."""
    code = ("import sys, gmn_plugins.core.spec as s, gmn_plugins.core.plugins; "
            "heavy = lambda: [m for m in ('torch', 'mujoco') if m in sys.modules]; print(heavy()); "
            "spec = s.load_spec(sys.argv[1]); s.to_dict(spec); s.named_options(); print(heavy()); "
            "import gmn_plugins.cli.run, gmn_plugins.cli.data, gmn_plugins.cli.evaluate, gmn_plugins.cli.plugins; "
            "gmn_plugins.core.plugins.load_registry().resolve(spec.modalities); "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code, str(quickstart_spec)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[]", "[]", "[]"]


def test_each_option_of_the_spec_is_the_very_object_its_implementation_validates_against():
    assert spec_module.named_options() == {field: tuple(values) for field, values in IMPLEMENTED.items()}
    for field, values in IMPLEMENTED.items():
        cls, name = _annotated(field)
        reference = spec_module.OPTIONS[cls.__annotations__[name]]  # the annotation's name -> a core.options tuple
        assert reference in vars(options).values() and type(reference) is tuple, field
        assert (tuple(values) == reference) if field in TABLES else (values is reference), field
        assert get_args(get_type_hints(cls)[name]) == reference, field  # what the converter checks
        assert getattr(cls(), name) == DEFAULTS[field] and DEFAULTS[field] in values, field
    assert families.VECTOR.options["vector_projection"] is options.VECTOR_PROJECTIONS
    # data.hand.wrist_lock, a field of an MJCF hand's table (data.hand = {mjcf = PATH})
    assert hand.WRIST_LOCKS is options.WRIST_LOCKS is spec_module.OPTIONS["WristLock"]
    assert spec_module.HandFileSpec.__annotations__["wrist_lock"] == "WristLock"


@pytest.mark.parametrize("field", sorted(TABLES))
def test_a_table_keyed_by_an_option_has_exactly_its_values_in_order(field):
    """The presets' tables live with their implementation; their keys are the option's tuple, in its order (the
    order a bad value's message lists)."""
    cls, name = _annotated(field)
    assert tuple(TABLES[field]) == spec_module.OPTIONS[cls.__annotations__[name]], field


def test_every_tuple_of_core_options_is_a_named_option_of_the_spec():
    """core.options holds the options' values and nothing else (beyond the hull bounds): none is orphaned."""
    tuples = {name for name, value in vars(options).items() if type(value) is tuple}
    used = {name for name, value in vars(options).items() if any(value is v for v in spec_module.OPTIONS.values())}
    assert tuples == used


def test_no_option_of_the_spec_is_written_out_in_spec_py():
    """A named option is annotated with a name of spec.OPTIONS, never with Literal[...] values of its own."""
    for cls in SECTIONS.values():
        for name, annotation in cls.__annotations__.items():
            assert "Literal" not in annotation, f"{cls.__name__}.{name}: {annotation}"


@pytest.mark.parametrize("field", sorted(IMPLEMENTED))
def test_a_bad_value_is_one_line_naming_the_field_and_the_values(quickstart_spec, field):
    values = list(IMPLEMENTED[field])
    for bad in ("nope", True):
        with pytest.raises(SpecError) as err:
            load_spec(quickstart_spec, [f"{field}={json.dumps(bad)}"])
        assert str(err.value) == f"{quickstart_spec}: {field}: {bad!r} is not one of {values}"


def test_clip_gradients_refuses_an_unknown_mode():
    spec = ExperimentSpec(name="x", modalities=["rgb"])
    spec = attrs.evolve(spec, train=attrs.evolve(spec.train, clip_mode="elementwise"))
    with pytest.raises(ValueError, match="clip_mode must be one of"):
        trainer.clip_gradients(torch.nn.Linear(2, 2), spec)
