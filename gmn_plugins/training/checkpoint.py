"""Checkpoints: model and optimizer state_dicts, the resolved spec, the ordered modality list and the identity of
the training data; never pickled modules.

Written atomically (temp file + rename) and read with ``torch.load(weights_only=True)``. Format 2 embeds a sha256 of
the whole payload (every tensor's dtype, shape and bytes, and every other value), checked on load, so a flipped bit
or a partial copy is one clear line instead of NaNs later. Format 1 checkpoints (no checksum, no data identity)
still load and resume.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

from ..runtime.faults import cannot_write
from ..runtime.files import CheckpointError, atomic_write
from ..core.spec import DataSpec, ModelSpec, TrainSpec, to_dict
from ..models.presets import PRESETS

FORMAT_VERSION = 2  # 2: payload sha256, data identity
# training fields that may change between a run and its resumption
RESUMABLE_TRAIN_FIELDS = {"steps", "checkpoint_every", "log_every", "threads", "out", "eval_every", "eval_scenes", "device",
                          "tensorboard", "keep_every", "precision", "memory_format", "compile",
                          "adam", "malloc"}
# data fields that may change: where the dataset lives and how many processes make it (a moved dataset resumes)
RESUMABLE_DATA_FIELDS = {"dir", "workers", "loader_workers"}


# every section's default values: what a field that a newer version added meant for an older checkpoint
_DEFAULTS = {section: to_dict(cls()) for section, cls in (("model", ModelSpec), ("data", DataSpec), ("train", TrainSpec))}


def payload_sha256(payload: dict) -> str:
    """sha256 hex digest of a checkpoint payload (without its ``sha256`` entry): nested dicts in sorted key order,
    lists in order, tensors by dtype, shape and raw bytes, other values by their JSON text."""
    h = hashlib.sha256()

    def feed(obj) -> None:
        if isinstance(obj, torch.Tensor):
            t = obj.detach().cpu().contiguous()
            h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(obj, dict):
            h.update(b"{")
            for key in sorted(obj, key=repr):
                if key != "sha256":
                    h.update(repr(key).encode())
                    feed(obj[key])
            h.update(b"}")
        elif isinstance(obj, (list, tuple)):
            h.update(b"[")
            for item in obj:
                feed(item)
            h.update(b"]")
        else:
            h.update(json.dumps(obj).encode())

    feed(payload)
    return h.hexdigest()


def save_checkpoint(path: str | os.PathLike, payload: dict) -> None:
    """Write ``payload`` (state_dicts, step, spec dict, modality identities, data identity) atomically with
    ``torch.save``, with its ``payload_sha256``. Raises ``MachineError`` (one line: what failed, and that the
    previous checkpoint is intact) when the disk is full or the directory cannot be written."""
    payload = {"format": FORMAT_VERSION, **payload}
    payload["sha256"] = payload_sha256(payload)
    try:
        atomic_write(Path(path), lambda f: torch.save(payload, f))
    except Exception as exc:  # OSError, or RuntimeError from torch's zip writer on a full disk
        then = "the previous checkpoint is intact; free space and re-run to resume from it"
        raise cannot_write(path, exc, then) from None


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint with ``weights_only=True`` and check its sha256 (format 2). Raises ``CheckpointError``
    naming the file if it is unreadable or its contents differ from its checksum."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable gmn-plugins checkpoint ({type(exc).__name__}: "
                              f"{' '.join(str(exc).split())[:200]}); restore it, or delete it to train from step 0")  # fmt: skip
    if not isinstance(ckpt, dict) or not {"model", "spec", "modalities", "step"} <= set(ckpt):
        raise CheckpointError(f"{path}: not a gmn-plugins checkpoint (no model, spec, modalities and step)")
    if ckpt.get("format", 1) >= 2 and payload_sha256(ckpt) != ckpt.get("sha256"):
        raise CheckpointError(f"{path}: corrupted: its contents differ from the sha256 it was written with (a "
                              f"flipped bit or a partial copy); restore it, or delete it to train from step 0")  # fmt: skip
    return ckpt


def _differs(path, field: str, have, want) -> CheckpointError:
    return CheckpointError(f"{path}: {field}: checkpoint has {have!r}, spec has {want!r}; a resumed run must keep "
                           f"it (or set another train.out)")  # fmt: skip


def _as_built(section: str, values: dict) -> dict:
    """A spec section with each size left unset replaced by the one the model is built with (``model.decoder_width``:
    the preset's), so that a run resumes whether its spec leaves it unset or writes it out."""
    if section == "model" and values.get("decoder_width") is None and values.get("preset") in PRESETS:
        return {**values, "decoder_width": PRESETS[values["preset"]].decoder_width}
    return values


def check_compatible(ckpt: dict, spec: dict, modalities: list[dict], path: str | os.PathLike,
                     data: dict | None = None) -> None:  # fmt: skip
    """Raise ``CheckpointError`` ``PATH: FIELD: checkpoint has X, spec has Y`` if ``ckpt`` is of another model, run
    or dataset. ``data``: the identity of the dataset about to be used (``{"manifest_sha256": ...}``); it must
    equal the checkpoint's (format 2; the dataset's directory may differ, so a moved dataset resumes)."""
    have_names = [m["name"] for m in ckpt["modalities"]]
    want_names = [m["name"] for m in modalities]
    if have_names != want_names:
        raise CheckpointError(f"{path}: modalities: checkpoint has {have_names}, spec has {want_names}")
    for have, want in zip(ckpt["modalities"], modalities):
        for key in ("spec_hash", "distribution"):
            if have[key] != want[key] and not (key == "spec_hash" and have[key] == want.get("legacy_spec_hash")):
                raise CheckpointError(f"{path}: modality {want['name']}: {key} differs "
                                      f"(checkpoint {have[key]}, installed {want[key]})")  # fmt: skip
    old = ckpt["spec"]
    for section, free in (("model", set()), ("data", RESUMABLE_DATA_FIELDS), ("train", RESUMABLE_TRAIN_FIELDS)):
        defaults = _DEFAULTS[section]  # a field added after the checkpoint was written had its default value then
        keys = sorted((set(old.get(section, {})) | set(spec[section])) - free)
        have, want = (_as_built(section, {k: values.get(k, defaults.get(k)) for k in keys})
                      for values in (old.get(section, {}), spec[section]))  # fmt: skip
        for key in keys:
            if have[key] != want[key]:
                raise _differs(path, f"{section}.{key}", have[key], want[key])
    if old["seed"] != spec["seed"]:
        raise _differs(path, "seed", old["seed"], spec["seed"])
    have_data = (ckpt.get("data") or {}).get("manifest_sha256")
    want_data = (data or {}).get("manifest_sha256")
    if have_data and want_data and have_data != want_data:
        raise CheckpointError(f"{path}: data: the checkpoint was trained on another dataset (manifest sha256 "
                              f"{have_data[:12]}, {spec['data'].get('dir')} has {want_data[:12]}); point data.dir at "
                              f"the run's dataset or set another train.out")  # fmt: skip
