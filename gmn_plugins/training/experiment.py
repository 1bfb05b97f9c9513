"""One place that turns an experiment spec into what runs it: the GMN, the dataset configuration and the device.

Training (``trainer.py``), evaluation (``evaluation/runs.py``) and ``gmn-run --dry-run`` all build them here, so a model
is the same whoever builds it (issue 12: layers that hold).
"""

from __future__ import annotations

import math

import attrs
import torch

from ..mese.generate import DatasetConfig
from ..mese.scene import hand_setting
from ..core.modality import Modality
from ..models.gmn import GMN, ModalityInfo, latent_grid_for
from ..models.presets import PRESETS
from ..core.spec import DEVICES, DEVICES_TEXT, MAX_LATENT_GRID, MAX_SENSE_VALUES, ExperimentSpec, SpecError


def dataset_config(spec: ExperimentSpec, modalities: list[Modality]) -> DatasetConfig:
    """The dataset a spec needs: the sensors of its modalities (in first-use order), its split sizes, the hand
    (``"builtin"`` or ``{"mjcf": PATH}``), physics preset and colour saturation option. The test split is listed
    only when ``data.test_scenes`` > 0, so datasets made before it existed keep their configuration."""
    sensors = tuple(dict.fromkeys(m.sensor.name for m in modalities))
    d = spec.data
    hand = d.hand if isinstance(d.hand, str) else hand_setting(d.hand.mjcf, d.hand.hull_vertices, d.hand.wrist_lock)
    return DatasetConfig(seed=spec.seed, blocks=d.blocks, views=d.views, physics=d.physics, hand=hand,
                         saturation=d.saturation, shard_size=d.shard_size, sensors=sensors,
                         splits={"train": d.train_scenes, "val": d.val_scenes,
                                 **({"test": d.test_scenes} if d.test_scenes else {})})  # fmt: skip


def check_sizes(spec: ExperimentSpec, modalities: list[Modality], spec_file: str = "spec") -> None:
    """Raise ``SpecError`` (one line) when a modality's senses exceed ``MAX_SENSE_VALUES`` values or the latent grid
    (``model.latent_grid``, or the one the modalities' families ask for) exceeds ``MAX_LATENT_GRID`` per side: what
    ``--dry-run`` and a run check before building the model, so that a plugin's huge image is refused at once."""
    for i, m in enumerate(modalities):
        values = math.prod(m.shape)
        if values > MAX_SENSE_VALUES:
            raise SpecError(f"{spec_file}: modalities[{i}]: {m.name}: senses of shape {m.shape} have {values:,} "
                            f"values, more than the {MAX_SENSE_VALUES:,} a modality may have (a 1024x1024 RGB image "
                            f"has 3,145,728)")  # fmt: skip
    grid = latent_grid_for(modalities, spec.model.latent_grid)
    if max(grid) > MAX_LATENT_GRID:
        asking = [m.name for m in modalities if tuple(m.family.latent_grid(m.shape) or ()) == tuple(grid)]
        raise SpecError(f"{spec_file}: model.latent_grid: the modalities ask for a {grid[0]}x{grid[1]} latent grid"
                        f"{' (' + ', '.join(asking) + ')' if asking else ''}, more than {MAX_LATENT_GRID} per side; "
                        f"set model.latent_grid = [h, w] within it, or use smaller senses")  # fmt: skip


def build_model(spec: ExperimentSpec, modalities: list[Modality], device: str | torch.device = "cpu") -> GMN:
    """The GMN of a spec, modality ids in the spec's order. Raises ``SpecError`` (one line) when a family's encoder
    or renderer class cannot be imported."""
    for family in {id(m.family): m.family for m in modalities}.values():
        try:
            family.import_classes()
        except ValueError as exc:  # a misspelt class path or a missing dependency: one line, not a traceback
            raise SpecError(f"{exc} (modalities: {', '.join(m.name for m in modalities if m.family is family)})") \
                from None  # fmt: skip
    infos = [ModalityInfo(m.name, m.family, m.shape, m.query_kind) for m in modalities]
    s = spec.model
    preset = PRESETS[s.preset]
    if s.decoder_width is not None:
        preset = attrs.evolve(preset, decoder_width=s.decoder_width)
    with torch.device(device):
        return GMN(infos, preset, inference=s.inference, experts=s.experts, sigma=s.sigma,
                   first_step_prior=s.first_step_prior, stochastic_representation=s.stochastic_representation,
                   vector_projection=s.vector_projection, latent_grid=s.latent_grid, init=s.init,
                   aggregate=s.aggregate, target_encoder=s.target_encoder,
                   renderer_context=s.renderer_context, likelihood_options={"chroma_weight": s.chroma_weight})


def resolve_device(spec: ExperimentSpec, spec_file: str = "spec") -> torch.device:
    """``train.device`` as a torch device: ``auto`` is cuda when available, else cpu. Raises ``SpecError`` when the
    requested backend is not available in this torch build or on this machine."""
    return torch_device(spec.train.device, f"{spec_file}: train.device", "train.device=")


def torch_device(name: str, where: str = "train.device", fix: str = "train.device=") -> torch.device:
    """The torch device of a ``train.device``-style ``name`` (``spec.DEVICES``); ``where`` starts the one-line
    ``SpecError`` for a malformed or unavailable device (``FILE: train.device``, ``--device``) and ``fix`` spells
    the setting in its remedy."""
    if not DEVICES.fullmatch(name):
        raise SpecError(f"{where}: expected {DEVICES_TEXT}, got {name!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SpecError(f"{where}: {name!r} requested, but torch.cuda.is_available() is False "
                        f"(torch {torch.__version__}); use {fix}cpu or auto")  # fmt: skip
    if name.startswith("cuda:") and int(name[5:]) >= torch.cuda.device_count():
        raise SpecError(f"{where}: {name!r} requested, but there are {torch.cuda.device_count()} GPUs")
    if name == "mps" and not torch.backends.mps.is_available():
        raise SpecError(f"{where}: 'mps' requested, but torch.backends.mps.is_available() is False")
    return torch.device(name)
