"""Named options (issue 12): each option's allowed values are defined once, by the code that implements it, and the
spec schema reads them from there; the spec module and the plugin core import neither torch nor mujoco."""

import json
import subprocess
import sys
from typing import get_args, get_type_hints

import attrs
import pytest
import torch

from gmn_plugins import allocator, families, train, train_options
from gmn_plugins import spec as spec_module
from gmn_plugins.family import resolve
from gmn_plugins.mese import hand, scene
from gmn_plugins.models import convdraw, encoders, gmn, inference, presets
from gmn_plugins.data import loader
from gmn_plugins.spec import DataSpec, ExperimentSpec, ModelSpec, SpecError, TrainSpec, load_spec

# Every named option of an experiment spec -> the object the implementing code validates against (a tuple, or a dict
# whose keys are the values).
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
    "train.clip_mode": train.CLIP_MODES,  # train.clip_gradients
    "train.missing_mode": train_options.MISSING_MODES,  # data.episodes.SceneSet.episodes
    "train.precision": train_options.PRECISIONS,  # train.train_step: torch.autocast
    "train.memory_format": train_options.MEMORY_FORMATS,  # train.to_memory_format
    "train.compile": train_options.COMPILES,  # train.compile_model
    "train.adam": train.ADAMS,  # train.make_optimizer
    "train.malloc": allocator.MALLOCS,  # allocator.configure
    "train.context_mask": loader.CONTEXT_MASKS,  # data.loader.TrainingBatches
    "train.loss_reduction": train.LOSS_REDUCTIONS,  # train.training_loss
}
# The spec's defaults, unchanged since the options were written out as Literal[...] in spec.py.
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


def test_the_spec_module_and_the_plugin_core_import_neither_torch_nor_mujoco(quickstart_spec):
    """MESE data-generation workers load the plugin registry: they must stay torch-free. Loading a spec reads the
    option values from their modules, which must be torch- and mujoco-free as well. The console tools check their
    input before importing torch (a spec mistake is answered in 0.3 s, not the 2.3 s a torch import adds): their
    modules, and the registry resolving the spec's modalities, import no torch."""
    code = ("import sys, gmn_plugins.spec as s, gmn_plugins.plugins; "
            "heavy = lambda: [m for m in ('torch', 'mujoco') if m in sys.modules]; print(heavy()); "
            "spec = s.load_spec(sys.argv[1]); s.to_dict(spec); s.named_options(); print(heavy()); "
            "import gmn_plugins.cli.run, gmn_plugins.cli.data, gmn_plugins.cli.evaluate, gmn_plugins.cli.plugins; "
            "gmn_plugins.plugins.load_registry().resolve(spec.modalities); "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code, str(quickstart_spec)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[]", "[]", "[]"]


def test_each_option_of_the_spec_is_the_very_object_its_implementation_validates_against():
    assert spec_module.named_options() == {field: tuple(values) for field, values in IMPLEMENTED.items()}
    for field, values in IMPLEMENTED.items():
        section, name = field.split(".")
        cls = SECTIONS[section]
        reference = spec_module.OPTIONS[cls.__annotations__[name]]  # the annotation's name, "module:attribute"
        assert resolve(reference) is values, field
        assert get_args(get_type_hints(cls)[name]) == tuple(values), field  # what the converter checks
        assert getattr(cls(), name) == DEFAULTS[field] and DEFAULTS[field] in values, field
    assert families.VECTOR.options["vector_projection"] == tuple(encoders.PROJECTIONS)


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
        train.clip_gradients(torch.nn.Linear(2, 2), spec)
