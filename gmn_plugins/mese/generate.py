"""Generate a MESE dataset: shards as pure functions of (seed, split, shard index), in parallel, resumable.

Layout of a dataset directory::

    config.json                 what was asked for (written first; a re-run with other settings is refused)
    train/shard-00000.npz ...   ``shard_size`` scenes each (the last may hold fewer)
    val/shard-00000.npz ...
    manifest.json               counts, shapes, sensors, per-shard sha256, statistics (written last)

Each scene's randomness comes from (seed, split, scene index) alone, so the bytes are the same for any number of
workers. Every file is written atomically, so a killed run resumes with nothing lost: finished shards are kept.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path

import attrs
import numpy as np
from tqdm import tqdm

from .shards import file_sha256, read_json, read_shard, write_json, write_shard

GENERATOR_VERSION = 1
SPLITS = ("train", "val", "test")


class DataError(Exception):
    """A dataset problem; ``str(err)`` is one line naming the file and what is wrong."""


@attrs.frozen
class DatasetConfig:
    """What a dataset holds. ``splits`` maps split name -> number of scenes; ``sensors`` are sensor names."""

    seed: int = 0
    blocks: int = 5
    views: int = 15
    physics: str = "fast"
    hand: str = "builtin"
    shard_size: int = 32
    sensors: tuple[str, ...] = ("camera.rgb", "hand.haptic")
    splits: dict[str, int] = attrs.Factory(lambda: {"train": 256, "val": 16})

    def to_json(self) -> dict:
        return {**attrs.asdict(self), "sensors": list(self.sensors), "generator_version": GENERATOR_VERSION}


def shard_tasks(config: DatasetConfig) -> list[tuple[str, int, int, int]]:
    """(split, shard index, first scene, number of scenes) for every shard of the dataset."""
    tasks = []
    for split, scenes in config.splits.items():
        for shard, first in enumerate(range(0, scenes, config.shard_size)):
            tasks.append((split, shard, first, min(config.shard_size, scenes - first)))
    return tasks


def shard_path(root: Path, split: str, shard: int) -> Path:
    return root / split / f"shard-{shard:05d}.npz"


# ------------------------------------------------------------------------------------------------- worker side

_maker = None


def _init_worker(config_json: dict) -> None:
    global _maker
    from ..plugins import load_registry
    from .scene import SceneMaker

    registry = load_registry()
    sensors = [registry.sensor(name) for name in config_json["sensors"]]
    _maker = SceneMaker(sensors, config_json["blocks"], config_json["views"], config_json["physics"])


def _make_shard(args: tuple) -> dict:
    root, seed, split, shard, first, count = args
    path = shard_path(Path(root), split, shard)
    if not path.exists():  # files appear atomically, so an existing one is complete
        scenes = [_maker.make(seed, split, first + i) for i in range(count)]
        write_shard(path, {key: np.stack([s[key] for s in scenes]) for key in scenes[0]})
    return _shard_entry(path, split, shard, count)


def _shard_entry(path: Path, split: str, shard: int, count: int) -> dict:
    arrays = read_shard(path)
    minmax = [s.name for s in _maker.sensors if s.normalization == "minmax"]
    stats = {key: {"min": arrays[key].min(axis=(0, 1)).tolist(), "max": arrays[key].max(axis=(0, 1)).tolist()}
             for key in minmax}  # fmt: skip
    shapes = {key: list(arr.shape[1:]) for key, arr in arrays.items()}
    return {"file": f"{split}/{path.name}", "scenes": count, "sha256": file_sha256(path), "stats": stats,
            "shapes": shapes, "grasp_attempts": int(arrays["grasp_attempts"].sum()) if "grasp_attempts" in arrays else 0}  # fmt: skip


# ------------------------------------------------------------------------------------------------- driver side


def _check_config(root: Path, config: DatasetConfig) -> None:
    path = root / "config.json"
    wanted = config.to_json()
    if path.exists():
        have = read_json(path)
        for key in sorted(set(have) | set(wanted)):
            if have.get(key) != wanted.get(key):
                raise DataError(f"{path}: {key}: dataset was made with {have.get(key)!r}, now asked for "
                                f"{wanted.get(key)!r}; use another data directory")  # fmt: skip
    else:
        try:
            write_json(path, wanted)
        except OSError as exc:
            raise DataError(f"{root}: cannot write the dataset here: {exc.strerror}") from None


def merge_stats(entries: list[dict]) -> dict:
    """Per-dimension min/max of every ``minmax`` sensor over the given shards (mese_environment_reference.md §3.5)."""
    merged: dict[str, dict] = {}
    for entry in entries:
        for key, s in entry["stats"].items():
            if key not in merged:
                merged[key] = {"min": s["min"], "max": s["max"]}
            else:
                merged[key]["min"] = np.minimum(merged[key]["min"], s["min"]).tolist()
                merged[key]["max"] = np.maximum(merged[key]["max"], s["max"]).tolist()
    return merged


def generate(root: str | os.PathLike, config: DatasetConfig, workers: int = 1, progress: bool = True) -> dict:
    """Make (or finish) the dataset in ``root`` and return its manifest.

    ``workers``: processes (0 = one per CPU core). Raises ``DataError`` when ``root`` holds a dataset made with other
    settings or cannot be written.
    """
    from ..plugins import load_registry

    root = Path(root)
    known = load_registry().sensors
    unknown = [name for name in config.sensors if name not in known]
    if unknown:
        raise DataError(f"{root}: sensors: unknown sensor(s) {', '.join(unknown)}; installed: {', '.join(sorted(known))}")
    manifest_path = root / "manifest.json"
    _check_config(root, config)
    if manifest_path.exists():
        return read_json(manifest_path)
    workers = workers or os.cpu_count() or 1
    tasks = [(str(root), config.seed, *task) for task in shard_tasks(config)]
    total = sum(task[-1] for task in tasks)
    entries = []
    bar = tqdm(total=total, unit="scene", desc=f"MESE -> {root}", disable=not progress, dynamic_ncols=True)
    if workers == 1:
        _init_worker(config.to_json())
        try:
            for task in tasks:
                entries.append(_make_shard(task))
                bar.update(task[-1])
        finally:
            _maker.close()
    else:
        ctx = mp.get_context("spawn")  # no fork after GL/torch state exists in the parent
        with ctx.Pool(workers, initializer=_init_worker, initargs=(config.to_json(),)) as pool:
            for entry in pool.imap_unordered(_make_shard, tasks):
                entries.append(entry)
                bar.update(entry["scenes"])
    bar.close()
    entries.sort(key=lambda e: e["file"])
    manifest = {
        **config.to_json(),
        "splits": {
            split: {"scenes": n, "shards": [e for e in entries if e["file"].startswith(f"{split}/")]}
            for split, n in config.splits.items()
        },
        "stats": merge_stats([e for e in entries if e["file"].startswith("train/")]),
        "shapes": entries[0]["shapes"] if entries else {},
    }
    for split in manifest["splits"].values():
        for entry in split["shards"]:
            del entry["stats"], entry["shapes"]
    write_json(manifest_path, manifest)
    return manifest


def load_split(root: str | os.PathLike, split: str) -> dict[str, np.ndarray]:
    """All scenes of one split, concatenated: each key (scenes, ...). Raises ``DataError`` on a missing split or a
    shard whose checksum differs from the manifest."""
    root = Path(root)
    manifest = read_json(root / "manifest.json")
    if split not in manifest["splits"]:
        raise DataError(f"{root / 'manifest.json'}: splits: no split {split!r}")
    parts = []
    for entry in manifest["splits"][split]["shards"]:
        path = root / entry["file"]
        if not path.exists() or file_sha256(path) != entry["sha256"]:
            raise DataError(f"{path}: missing or corrupted (sha256 differs from the manifest); delete it and re-run")
        parts.append(read_shard(path))
    if not parts:
        return {}
    return {key: np.concatenate([p[key] if p[key].ndim else p[key][None] for p in parts]) for key in parts[0]}
