"""Experiment and modality specs: attrs classes read from TOML with a strict cattrs converter.

Every problem with a spec is reported as one line ``FILE: dotted.field: what is wrong`` (``SpecError``); the CLIs
print it and exit with code 2. Values are never coerced: TOML already types them, so ``"4"`` for an int or
``"false"`` for a bool is an error, not a silent conversion (the only widening allowed is int -> float).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

import attrs
import cattrs
from cattrs.errors import ForbiddenExtraKeysError


class SpecError(Exception):
    """A spec problem; ``str(err)`` is one or more lines ``FILE: dotted.field: what is wrong``."""


# ----------------------------------------------------------------------------------------------------------------
# experiment specs (specs/*.toml)


@attrs.frozen
class HandFileSpec:
    """A hand read from an MJCF file (``hand = {mjcf = "PATH"}``), e.g. the real MPL ``mpl_right.xml``; PATH is
    relative to the working directory. Its sensordata must be the 132-value MPL layout (reference §3.4)."""

    mjcf: str


@attrs.frozen
class DataSpec:
    """MESE dataset of a run: generated into ``dir`` if missing (reference: mese_environment_reference.md).

    ``hand``: ``"builtin"`` (the project's own MPL-kinematics hand) or ``{mjcf = "PATH"}``. ``physics``: grasp
    simulation preset (``faithful`` = the authors' 0.002 s x 20, ``fast`` = 0.004 s x 10). ``saturation``: block
    colour saturation range, ``code`` = U(0.75, 1) as the authors' code (default), ``paper`` = U(0, 0.75) as the
    paper's text (reference §1, §5). Held-out 4/6-block sets are separate datasets with ``blocks = 4`` / ``6``.
    """

    dir: str = "data/default"
    train_scenes: int = 256
    val_scenes: int = 16
    blocks: int = 5
    views: int = 15
    shard_size: int = 32
    hand: str | HandFileSpec = "builtin"
    physics: Literal["faithful", "fast"] = "fast"
    saturation: Literal["code", "paper"] = "code"
    workers: int = 0  # 0 = one per CPU core


@attrs.frozen
class ModelSpec:
    """Model choices (gmn_model_reference.md §3–4, §8.2), each a named option; paper by default where it speaks.

    ``inference``: ``apoe`` (paper), ``poe``, ``baseline`` (C-GQN). ``preset``: ``v4`` (the authors' sizes) or
    ``small`` (CPU). ``experts``: ``present`` (paper Eq. 2/5 with a N(0, I) expert) or ``all`` (code).
    ``sigma``: fixed likelihood std (1 in the paper's runs). ``first_step_prior``: ``bias`` (code; the paper is
    silent) or ``context``. ``stochastic_representation``: r_m as a latent with its own KL (paper Eq. 3).
    ``vector_projection``: ``dense`` (v4's 512 -> r·h·w layer) or ``light`` (learned spatial broadcast).
    """

    inference: Literal["apoe", "poe", "baseline"] = "apoe"
    preset: Literal["v4", "small"] = "small"
    experts: Literal["present", "all"] = "present"
    sigma: float = 1.0
    first_step_prior: Literal["bias", "context"] = "bias"
    stochastic_representation: bool = False
    vector_projection: Literal["dense", "light"] = "dense"


@attrs.frozen
class TrainSpec:
    """Optimisation (paper appendix; code differences in gmn_model_reference.md §8.2).

    ``clip_mode``: ``value`` clips every gradient element to ±clip (paper), ``norm`` clips the global L2 norm (code).
    β is annealed linearly from ``beta_start`` to ``beta`` over ``beta_anneal_steps`` steps (paper: 0.1 -> 1 over the
    first epoch; code: constant 1, i.e. beta_start = 1). ``add_opposite`` also trains on every episode with context and
    target swapped (the authors' code; the paper is silent), doubling the episodes per step.
    ``missing_sizes = [A, B]`` (paper §4 "Missing-modality Problem", Fig. 5; reference §6.5): every training scene
    gets one fixed combination of A..B modalities (P(combination) ∝ 1/size, as the authors' code draws it); empty =
    all modalities always. Every ``eval_every`` steps the negative ELBO of ``eval_scenes`` validation scenes is
    logged to ``val.jsonl``: ``val_missing`` (the training rule's combinations; all modalities without
    ``missing_sizes``) and ``val_full`` (any combination), the curves of the paper's Fig. 5. ``missing_mode``: ``paper`` removes the other modalities from the scene (context and
    target); ``code`` only keeps them out of the context, all their views becoming targets (the authors' code).
    """

    out: str = "runs/default"
    steps: int = 1000
    batch_scenes: int = 8
    lr: float = 1e-3
    clip: float = 0.25
    clip_mode: Literal["value", "norm"] = "value"
    beta: float = 1.0
    beta_start: float = 0.1
    beta_anneal_steps: int = 100
    max_targets: int = 15
    add_opposite: bool = True
    checkpoint_every: int = 100
    log_every: int = 10
    threads: int = 0  # 0 = torch default
    tensorboard: bool = False  # also log scalars and the sample grid to RUN/tensorboard (pip install "gmn-plugins[tensorboard]")
    device: str = "auto"  # "auto" (cuda when available, else cpu), "cpu", "cuda", "cuda:N", "mps"
    eval_every: int = 0  # steps between validations (val.jsonl, loss.png); 0 = never
    eval_scenes: int = 32  # validation scenes per validation
    missing_sizes: list[int] = attrs.Factory(list)
    missing_mode: Literal["paper", "code"] = "paper"


@attrs.frozen
class ExperimentSpec:
    """A whole experiment: ordered modality names (their order is the modality id), data, model, training."""

    name: str
    modalities: list[str]
    seed: int = 0
    data: DataSpec = attrs.Factory(DataSpec)
    model: ModelSpec = attrs.Factory(ModelSpec)
    train: TrainSpec = attrs.Factory(TrainSpec)


# ----------------------------------------------------------------------------------------------------------------
# strict converter


def _strict(kind: type):
    def structure(value: Any, _type: type) -> Any:
        ok = type(value) is kind or (kind is float and type(value) is int)
        if not ok:
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__} {value!r}")
        return float(value) if kind is float else value

    return structure


converter = cattrs.Converter(forbid_extra_keys=True)
for _kind in (int, float, str, bool):
    converter.register_structure_hook(_kind, _strict(_kind))


def _structure_hand(value: Any, _type: Any) -> str | HandFileSpec:  # DataSpec.hand: "builtin" or {mjcf = PATH}
    if type(value) is str and value == "builtin":
        return value
    if isinstance(value, dict):
        return converter.structure(value, HandFileSpec)
    raise ValueError(f"expected \"builtin\" or a table {{mjcf = \"PATH\"}}, got {value!r}")


converter.register_structure_hook(str | HandFileSpec, _structure_hand)


def _format(exc: BaseException, _type: Any) -> str:
    if isinstance(exc, ForbiddenExtraKeysError):
        known = [a.name for a in attrs.fields(exc.cl)]
        hints = []
        for name in sorted(exc.extra_fields):
            close = difflib.get_close_matches(name, known, n=1)
            hints.append(f"{name}|unknown field" + (f" (did you mean {close[0]!r}?)" if close else ""))
        return "\x00".join(hints)
    if isinstance(exc, KeyError):
        return "required field missing"
    text = str(exc)
    if " not in literal " in text:
        value, _, choices = text.partition(" not in literal ")
        return f"{value!r} is not one of {choices.removeprefix('typing.Literal')}"
    return text


def _lines(exc: Exception, file: str) -> list[str]:
    lines = []
    for message in cattrs.transform_error(exc, path="$", format_exception=_format):
        text, _, where = message.rpartition(" @ ")
        field = where.removeprefix("$").lstrip(".")
        for problem in text.split("\x00"):
            name, bar, what = problem.partition("|")
            if bar:  # an unknown key: name it in the dotted path
                lines.append(f"{file}: {'.'.join(filter(None, [field, name]))}: {what}")
            else:
                lines.append(f"{file}: {field or '(top level)'}: {problem}")
    return lines


def structure(data: dict, cls: type, file: str):
    """Structure ``data`` into ``cls`` strictly; raise ``SpecError`` with one line per problem."""
    try:
        return converter.structure(data, cls)
    except (cattrs.BaseValidationError, TypeError, ValueError) as exc:
        if isinstance(exc, cattrs.BaseValidationError):
            raise SpecError("\n".join(_lines(exc, file))) from None
        raise SpecError(f"{file}: {exc}") from None


def read_toml(path: str | os.PathLike) -> dict:
    """Read a TOML file with ``tomllib``; raise ``SpecError`` naming the file for a missing or malformed one."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise SpecError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: invalid TOML: {exc}") from None


# ----------------------------------------------------------------------------------------------------------------
# overrides and validation


def parse_override(text: str, file: str) -> tuple[list[str], Any]:
    """Parse ``a.b.c=VALUE``; VALUE is read as a TOML value, bare words as strings."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise SpecError(f"{file}: override {text!r}: expected dotted.field=value")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return key.strip().split("."), value


def apply_overrides(data: dict, overrides: list[str], file: str) -> dict:
    """Return a copy of ``data`` with dotted overrides applied (validated later like the file itself)."""
    data = json.loads(json.dumps(data))
    for text in overrides:
        path, value = parse_override(text, file)
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise SpecError(f"{file}: {'.'.join(path)}: {part!r} is not a table")
            node = child
        node[path[-1]] = value
    return data


def _check_ranges(spec: ExperimentSpec, file: str) -> None:
    problems = []

    def at_least(value: float, minimum: float, field: str) -> None:
        if value < minimum:
            problems.append(f"{file}: {field}: must be >= {minimum}, got {value}")

    at_least(len(spec.modalities), 1, "modalities")
    if len(set(spec.modalities)) != len(spec.modalities):
        problems.append(f"{file}: modalities: names repeat: {spec.modalities}")
    for field in ("train_scenes", "views", "shard_size"):
        at_least(getattr(spec.data, field), 1, f"data.{field}")
    at_least(spec.data.val_scenes, 0, "data.val_scenes")
    at_least(spec.data.blocks, 2, "data.blocks")
    at_least(spec.data.workers, 0, "data.workers")
    for field in ("steps", "batch_scenes", "max_targets", "checkpoint_every", "log_every"):
        at_least(getattr(spec.train, field), 1, f"train.{field}")
    if spec.model.sigma <= 0:
        problems.append(f"{file}: model.sigma: must be > 0, got {spec.model.sigma}")
    for field in ("lr", "clip", "beta", "beta_start"):
        at_least(getattr(spec.train, field), 0.0, f"train.{field}")
    at_least(spec.train.beta_anneal_steps, 0, "train.beta_anneal_steps")
    at_least(spec.train.eval_every, 0, "train.eval_every")
    at_least(spec.train.eval_scenes, 1, "train.eval_scenes")
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", spec.train.device):
        problems.append(f"{file}: train.device: expected auto, cpu, cuda, cuda:N or mps, got {spec.train.device!r}")
    sizes = spec.train.missing_sizes
    if sizes and not (len(sizes) == 2 and 1 <= sizes[0] <= sizes[1] <= len(spec.modalities)):
        problems.append(f"{file}: train.missing_sizes: expected [A, B] with 1 <= A <= B <= {len(spec.modalities)} "
                        f"(the number of modalities), got {sizes}")  # fmt: skip
    if isinstance(spec.data.hand, HandFileSpec) and not Path(spec.data.hand.mjcf).is_file():
        problems.append(f"{file}: data.hand.mjcf: no such file {spec.data.hand.mjcf!r}")
    if problems:
        raise SpecError("\n".join(problems))


def load_spec(path: str | os.PathLike, overrides: list[str] = ()) -> ExperimentSpec:
    """Read an experiment spec from TOML, apply ``a.b=value`` overrides, structure and validate it.

    Raises ``SpecError`` (one line per problem, ``FILE: dotted.field: what is wrong``). Modality names are
    resolved against the registry later (``registry.Registry.resolve``).
    """
    file = str(path)
    data = apply_overrides(read_toml(path), list(overrides), file)
    spec = structure(data, ExperimentSpec, file)
    _check_ranges(spec, file)
    return spec


def to_dict(spec: Any) -> dict:
    """Plain-dict form of any spec (JSON/TOML-safe), as stored in checkpoints."""
    return converter.unstructure(spec)
