"""Checkpoints: model and optimizer state_dicts, the resolved spec and the ordered modality list; never pickled modules.

Written atomically (temp file + rename) and read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .mese.shards import atomic_write

FORMAT_VERSION = 1
# training fields that may change between a run and its resumption
RESUMABLE_TRAIN_FIELDS = {"steps", "checkpoint_every", "log_every", "threads", "out", "eval_every", "eval_scenes", "device",
                          "tensorboard"}


class CheckpointError(Exception):
    """A checkpoint that cannot be used; ``str(err)`` is one line saying what differs."""


def save_checkpoint(path: str | os.PathLike, payload: dict) -> None:
    """Write ``payload`` (state_dicts, step, spec dict, modality identities, metrics) atomically with ``torch.save``."""
    atomic_write(Path(path), lambda f: torch.save({"format": FORMAT_VERSION, **payload}, f))


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint with ``weights_only=True``; raises ``CheckpointError`` naming the file if unreadable."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable gmn-plugins checkpoint ({type(exc).__name__}: {exc})") from None


def check_compatible(ckpt: dict, spec: dict, modalities: list[dict], path: str | os.PathLike) -> None:
    """Raise ``CheckpointError`` ``PATH: FIELD: checkpoint has X, spec has Y`` if ``ckpt`` is of another model or run."""
    have_names = [m["name"] for m in ckpt["modalities"]]
    want_names = [m["name"] for m in modalities]
    if have_names != want_names:
        raise CheckpointError(f"{path}: modalities: checkpoint has {have_names}, spec has {want_names}")
    for have, want in zip(ckpt["modalities"], modalities):
        for key in ("spec_hash", "distribution"):
            if have[key] != want[key]:
                raise CheckpointError(f"{path}: modality {want['name']}: {key} differs "
                                      f"(checkpoint {have[key]}, installed {want[key]})")  # fmt: skip
    old = ckpt["spec"]
    for section in ("model",):
        for key in sorted(set(old[section]) | set(spec[section])):
            if old[section].get(key) != spec[section].get(key):
                raise CheckpointError(f"{path}: {section}.{key}: checkpoint has {old[section].get(key)!r}, "
                                      f"spec has {spec[section].get(key)!r}")  # fmt: skip
    if old["seed"] != spec["seed"]:
        raise CheckpointError(f"{path}: seed: checkpoint has {old['seed']}, spec has {spec['seed']}")
    for key in sorted(set(old["train"]) - RESUMABLE_TRAIN_FIELDS):
        if old["train"][key] != spec["train"].get(key):
            raise CheckpointError(f"{path}: train.{key}: checkpoint has {old['train'][key]!r}, "
                                  f"spec has {spec['train'].get(key)!r}")  # fmt: skip
