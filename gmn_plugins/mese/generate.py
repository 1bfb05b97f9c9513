"""Generate a MESE dataset: shards as pure functions of (seed, split, shard index), in parallel, resumable, mergeable.

The dataset format (directory layout, array keys, manifest, reader) is ``gmn_plugins.data.format``'s; this module
writes it.

Each scene's randomness comes from (seed, split, scene index) alone, so the bytes are the same for any number of
workers and any split of the work. Every file is written atomically (temp file + rename), so a killed run resumes
with nothing lost and never leaves a half-written shard.

Scale-out: the shards of a dataset are numbered globally (``shard_tasks``: train first, then val, then test);
``generate(..., shard_range=(a, b))`` makes only shards a..b-1 and writes no manifest, so the machines of an array
job each make a range (into one shared directory, or into their own directories whose ``*/shard-*`` files are then
copied together); ``finalize(root)`` then checks that every shard is there and intact and writes the manifest from
the per-shard records — byte-identical to the manifest of a single run. The paper-sized 5-block dataset on N
machines (1M/20k/100k scenes of 32: 31250 + 625 + 3125 = 35000 shards; machine k of N takes its slice)::

    gmn-data generate --out DIR --scenes 1000000 --val 20000 --test 100000 --physics faithful \
        --shard-range $((35000*k/N)):$((35000*(k+1)/N))      # on machine k = 0..N-1, any --workers
    gmn-data finalize DIR                                   # once, after copying all */shard-* files into DIR

Several processes or machines may also fill one shared directory at once: each shard is made under its own lock
(``locks.hold``), and a process that finds a shard locked goes on with the others and comes back to it at the end.

Repair: ``generate`` on a finished dataset checks that every shard is present and matches the manifest's sha256
(through ``shards.ChecksumCache``, so only shards whose size or mtime changed are hashed again), regenerates exactly
the missing or corrupted ones, which come out with the same bytes, and rewrites the same manifest
(``gmn-data repair DIR`` does it from the dataset's own config).

Held-out classification sets (4 and 6 blocks) are separate, test-only datasets, e.g.
``gmn-data generate --out DIR4 --blocks 4 --scenes 0 --test 1000``; their labels index the canonical walks of that
block count (150 and 3534 classes, ``shapes.class_label``) and, having no train split, they are scaled with the
5-block dataset's training statistics.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
from pathlib import Path

import attrs
import numpy as np
from tqdm import tqdm

from ..runtime.faults import cannot_write
from ..runtime.locks import LockHeld, hold
from ..core.modality import SensorRecordError
from ..core.spec import MAX_BLOCKS, MAX_PROCESSES, MAX_SCENES, MAX_SHARD_SIZE, MAX_VIEWS, SEED_LIMIT
from ..data.format import (CONFIG, CONFIG_LOCK, DATASET_ENTRIES, MANIFEST, SPLIT_CODES, ChecksumCache, DataError,
                           read_manifest, read_shard, record_path, repair_hint, shard_path, verify_packed,
                           foreign_entries, manifest_problem, write_shard, written_by_gmn_data)  # fmt: skip
from ..runtime.files import file_sha256, read_json, remove_stale_temps, write_json

GENERATOR_VERSION = 2  # 2: hand / saturation options, per-shard records, sensor descriptions in the manifest
# The bounds of a dataset's settings, core/spec.py's: the same for gmn-run (data.*, seed) and gmn-data generate (--*)
BOUNDS = {"seed": (0, SEED_LIMIT - 1), "blocks": (2, MAX_BLOCKS), "views": (1, MAX_VIEWS),
          "shard_size": (1, MAX_SHARD_SIZE), "scenes": (0, MAX_SCENES), "workers": (0, MAX_PROCESSES)}  # fmt: skip


@attrs.frozen
class DatasetConfig:
    """What a dataset holds. ``splits`` maps split name (train/val/test) -> number of scenes; ``sensors`` are sensor
    names (kept sorted); ``hand`` is ``"builtin"`` or ``{"mjcf": PATH}``; ``physics`` a preset of ``hand.PHYSICS_PRESETS``;
    ``saturation`` ``"code"`` (U(0.75, 1), default) or ``"paper"`` (U(0, 0.75)), see ``scene.SATURATION``."""

    seed: int = 0
    blocks: int = 5
    views: int = 15
    physics: str = "fast"
    hand: str | dict = "builtin"
    saturation: str = "code"
    shard_size: int = 32
    # sorted: the same dataset serves any modality order (recording order does not change the arrays)
    sensors: tuple[str, ...] = attrs.field(default=("camera.rgb", "hand.haptic"), converter=lambda s: tuple(sorted(s)))
    splits: dict[str, int] = attrs.Factory(lambda: {"train": 256, "val": 16})

    def to_json(self) -> dict:
        return {**attrs.asdict(self), "sensors": list(self.sensors), "generator_version": GENERATOR_VERSION}

    @classmethod
    def from_json(cls, data: dict) -> "DatasetConfig":
        fields = {a.name for a in attrs.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in fields}
        return cls(**{**kwargs, "sensors": tuple(kwargs.get("sensors", ()))})


def shard_tasks(config: DatasetConfig) -> list[tuple[str, int, int, int]]:
    """(split, shard index, first scene, number of scenes) for every shard of the dataset, in global shard order."""
    tasks = []
    for split, scenes in config.splits.items():
        for shard, first in enumerate(range(0, scenes, config.shard_size)):
            tasks.append((split, shard, first, min(config.shard_size, scenes - first)))
    return tasks


# ------------------------------------------------------------------------------------------------- worker side

_maker = None


def _init_worker(config_json: dict) -> None:
    global _maker
    from .scene import SATURATION, SceneMaker

    registry = _registry()  # a worker process loads its own once; the driver's is the one generate() was given
    sensors = [registry.sensor(name) for name in config_json["sensors"]]
    _maker = SceneMaker(sensors, config_json["blocks"], config_json["views"], config_json["physics"],
                        hand=config_json["hand"], saturation=SATURATION[config_json["saturation"]],
                        kinds=registry.query_kinds)  # fmt: skip


def _write_error(path: Path, exc: OSError) -> Exception:
    return cannot_write(path, exc, "nothing half-written was kept; free space (or fix the directory) and re-run to "
                                   "resume", DataError)  # fmt: skip


def _make_shard(args: tuple, blocking: bool = False) -> dict:
    """Make one shard (or read the record of one that exists) under the shard's lock. Returns its record, or
    ``{"busy": args}`` when another process holds the lock and ``blocking`` is false."""
    root, seed, split, shard, first, count = args
    path = shard_path(Path(root), split, shard)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with hold(path.with_name(f".{path.stem}.lock"), f"shard {split}/{path.name}", blocking=blocking, remove=True):
            return _make_locked_shard(path, seed, split, first, count)
    except LockHeld:
        return {"busy": args}
    except OSError as exc:
        raise _write_error(path, exc) from None


def _make_locked_shard(path: Path, seed: int, split: str, first: int, count: int) -> dict:
    record = record_path(path)
    for target in (path, record):  # this process alone makes this shard: leftovers of a killed run are stale
        remove_stale_temps(target)
    if path.exists():  # files appear atomically, so an existing one is complete
        if record.exists():
            try:
                return read_json(record)
            except DataError:
                pass  # a damaged record: made again from the shard below
        arrays = read_shard(path)
    else:
        scenes = []
        for index in range(first, first + count):
            try:
                scenes.append(_maker.make(seed, split, index))
            except SensorRecordError as exc:  # which scene: a plugin author can make it again (gmn-data show)
                raise SensorRecordError(*exc.args[:2], f"{split} scene {index}") from None
        arrays = {key: np.stack([s[key] for s in scenes]) for key in scenes[0]}
        try:
            write_shard(path, arrays)
        except OSError as exc:
            raise _write_error(path, exc) from None
    minmax = [s.name for s in _maker.sensors if s.normalization == "minmax"]
    entry = shard_record(path, split, count, arrays, minmax)
    try:
        write_json(record, entry)
    except OSError as exc:
        raise _write_error(record, exc) from None
    return entry


def shard_record(path: Path, split: str, count: int, arrays: dict[str, np.ndarray], minmax: list[str]) -> dict:
    """The per-shard record: file, scenes, sha256, per-scene shapes, per-dimension min/max of ``minmax`` sensors
    (over scenes and views) and the number of grasps made."""
    stats = {key: {"min": arrays[key].min(axis=(0, 1)).tolist(), "max": arrays[key].max(axis=(0, 1)).tolist()}
             for key in minmax if key in arrays}  # fmt: skip
    shapes = {key: list(arr.shape[1:]) for key, arr in arrays.items()}
    return {"file": f"{split}/{path.name}", "scenes": count, "sha256": file_sha256(path), "stats": stats,
            "shapes": shapes, "grasp_attempts": int(arrays["grasp_attempts"].sum()) if "grasp_attempts" in arrays else 0}  # fmt: skip


# ------------------------------------------------------------------------------------------------- driver side


def _check_config(root: Path, config: DatasetConfig) -> None:
    """Check that ``root`` holds no dataset with other settings (``_stored_config``) and is a dataset directory, or a
    new or empty one; write ``config.json`` when it is missing or damaged. That happens under ``ROOT/.config.lock``,
    before any shard, so that of two processes started together on a new directory the first one's settings own it
    and the other's are refused. A finished dataset that is read-only is only read."""
    path = root / CONFIG
    if not _readable_json(path):
        try:
            root.mkdir(parents=True, exist_ok=True)
            with hold(root / CONFIG_LOCK, f"the settings of {root}", blocking=True, remove=True):
                if not _readable_json(path):  # else another process wrote them meanwhile: checked below
                    _compare(root, _stored_config(root, new_ok=True), config)
                    write_json(path, config.to_json())
                    return
        except OSError as exc:
            raise cannot_write(root, exc, "choose another data directory or fix this one", DataError) from None
    _compare(root, _stored_config(root), config)


def _compare(root: Path, have: dict | None, config: DatasetConfig) -> None:
    """Raise ``DataError`` naming the first setting in which the stored ``have`` (None: a new directory) differs."""
    if have is None:
        return
    wanted = config.to_json()
    for key in sorted(set(have) | set(wanted)):
        if _setting(have, key) != _setting(wanted, key):
            raise DataError(f"{root / CONFIG}: {key}: dataset was made with {have.get(key)!r}, now asked for "
                            f"{wanted.get(key)!r}; use another data directory")  # fmt: skip


def _setting(config: dict, key: str):
    """One setting of a stored or wanted config, as compared: a split of 0 scenes is no split (``gmn-data generate``
    leaves out ``--val 0``, a spec's ``data.val_scenes = 0`` lists it)."""
    value = config.get(key)
    if key == "splits" and isinstance(value, dict):
        return {name: n for name, n in value.items() if n}
    return value


def _foreign_manifest(root: Path, manifest: dict) -> str | None:
    """One line when ``manifest.json`` holds the settings of another dataset than ``config.json`` (a manifest copied
    from elsewhere), else None (also when either cannot be read: other checks say so)."""
    try:
        config = read_json(root / CONFIG)
    except (OSError, DataError):
        return None
    if not isinstance(config, dict) or not isinstance(manifest.get("splits"), dict):
        return None
    stored = {k: v for k, v in _manifest_settings(manifest).items() if k in config}
    differ = [k for k in sorted(config) if k in stored and _setting(stored, k) != _setting(config, k)]
    if not differ:
        return None
    shown = ", ".join(f"{k} {_setting(stored, k)!r} (config.json: {_setting(config, k)!r})" for k in differ[:3])
    return (f"{root / MANIFEST}: belongs to another dataset: {shown}; the shards were not checked against it: "
            f"restore this dataset's manifest, or rewrite it from the shards' records: gmn-data finalize {root}")


def _manifest_settings(manifest: dict) -> dict:
    """The dataset settings a manifest records (its copy of ``config.json``'s), splits as {name: scenes}."""
    stored = {k: manifest[k] for k in DatasetConfig().to_json() if k in manifest and k != "splits"}
    return {**stored, "splits": {name: split.get("scenes") if isinstance(split, dict) else None
                                 for name, split in manifest["splits"].items()}}  # fmt: skip


def _readable_json(path: Path) -> bool:
    try:
        read_json(path)
        return True
    except (OSError, DataError):
        return False


def _stored_config(root: Path, new_ok: bool = False) -> dict | None:
    """The settings a dataset directory was made with: ``config.json``, or, when that is missing or damaged, the copy
    in ``manifest.json`` (the dataset is re-identified by its manifest, never relabelled). ``new_ok``: None for a
    directory that holds nothing (new, or empty). Raises ``DataError`` for a ``config.json`` or ``manifest.json``
    that ``gmn-data`` did not write, for a directory holding what a dataset does not (``format.foreign_entries``),
    and when neither file says which settings made the data there."""
    path = root / CONFIG
    foreign = f"{root}: not a MESE dataset directory"
    unknown = None  # why config.json does not say
    try:
        config = read_json(path)
    except FileNotFoundError:
        unknown = f"{path}: missing"
    except DataError as exc:
        unknown = str(exc)
    except OSError as exc:
        unknown = f"{path}: unreadable ({exc.strerror or exc})"
    if unknown is None:
        if not written_by_gmn_data(config):
            raise DataError(f"{foreign} ({CONFIG} was not written by gmn-data: no generator_version); generate into "
                            f"a new or empty directory")  # fmt: skip
        return config
    try:
        manifest = read_json(root / MANIFEST)
    except FileNotFoundError:
        manifest = None
    except (OSError, DataError):
        raise DataError(f"{unknown}; no readable manifest.json holds the settings either: restore config.json, or "
                        f"delete {root} and generate it again") from None  # fmt: skip
    if manifest is not None:
        if not written_by_gmn_data(manifest) or not isinstance(manifest.get("splits"), dict):
            raise DataError(f"{foreign} ({MANIFEST} was not written by gmn-data); generate into a new or empty "
                            f"directory")  # fmt: skip
        return _manifest_settings(manifest)
    made = sorted(p.name for p in (root.iterdir() if root.is_dir() else ())
                  if p.name in DATASET_ENTRIES and not (p.is_dir() and not any(p.iterdir())))  # fmt: skip
    if path.exists() or made:
        raise DataError(f"{unknown}; no manifest.json says which settings made {', '.join(made) or 'it'} either: "
                        f"restore config.json, or delete {root} and generate it again")  # fmt: skip
    others = foreign_entries(root)
    if others:
        raise DataError(f"{foreign} (it holds {', '.join(others[:3])}{', ...' if len(others) > 3 else ''}); generate "
                        f"into a new or empty directory")  # fmt: skip
    if not new_ok:
        raise DataError(f"{path}: no such file; not a MESE dataset directory")
    return None


def _registry(registry=None):
    """The registry passed in (kept as this process's), else the process's own, loaded once."""
    global _loaded
    if registry is not None:
        _loaded = registry
    if _loaded is None:
        from ..core.plugins import load_registry

        _loaded = load_registry()
    return _loaded


_loaded = None


def check_request(root: Path, config: DatasetConfig, registry=None) -> list:
    """Validate a config before any work: sensors, splits, saturation, physics and (if grasps are needed) the hand,
    which is compiled once here so that a bad MJCF is one clear line. Returns the resolved sensors."""
    from .hand import PHYSICS_PRESETS
    from .queries import RigError
    from .scene import SATURATION

    settings = (("seed", config.seed), ("blocks", config.blocks), ("views", config.views),
                ("shard_size", config.shard_size), *(("scenes", n) for n in config.splits.values()))  # fmt: skip
    for name, value in settings:
        low, high = BOUNDS[name]
        if not (type(value) is int and low <= value <= high):
            raise DataError(f"{root}: {name}: must be in [{low}, {high}], got {value!r}")
    registry = _registry(registry)
    known = registry.sensors
    unknown = [name for name in config.sensors if name not in known]
    if unknown:
        raise DataError(f"{root}: sensors: unknown sensor(s) {', '.join(unknown)}; installed: {', '.join(sorted(known))}")
    bad_splits = [s for s in config.splits if s not in SPLIT_CODES]
    if bad_splits:
        raise DataError(f"{root}: splits: unknown split(s) {', '.join(bad_splits)}; expected {', '.join(SPLIT_CODES)}")
    if config.saturation not in SATURATION:
        raise DataError(f"{root}: saturation: {config.saturation!r} is not one of {sorted(SATURATION)}")
    if config.physics not in PHYSICS_PRESETS:
        raise DataError(f"{root}: physics: {config.physics!r} is not one of {sorted(PHYSICS_PRESETS)}")
    sensors = [known[name] for name in config.sensors]
    for name in dict.fromkeys(s.query for s in sensors):  # open and close each rig once: a bad hand fails here
        try:
            registry.query_kinds[name].open_rig(blocks=config.blocks, physics=config.physics, hand=config.hand).close()
        except RigError as exc:
            raise DataError(str(exc)) from None
    return sensors


def sensor_info(sensors: list, registry=None) -> dict:
    """What the manifest records about each sensor: shape, dtype, units, query, normalization, description, and
    what its query kind adds (``QueryKind.describe_sensor``; camera image sensors: resolution and vertical field of
    view in degrees)."""
    kinds = _registry(registry).query_kinds
    info = {}
    for s in sensors:
        entry = {"shape": list(s.shape), "dtype": s.dtype, "units": s.units, "query": s.query,
                 "normalization": s.normalization, "description": s.description}  # fmt: skip
        entry.update(kinds[s.query].sensor_entry(s))
        info[s.name] = entry
    return info


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


def build_manifest(config: DatasetConfig, entries: list[dict], sensors: list) -> dict:
    """The manifest from the per-shard records (any order): counts, shard checksums, train-split min/max statistics,
    per-scene shapes, sensor descriptions and grasp acceptance."""
    entries = sorted((dict(e) for e in entries), key=lambda e: e["file"])
    splits = {}
    for split, n in config.splits.items():
        shards = [e for e in entries if e["file"].startswith(f"{split}/")]
        attempts = sum(e["grasp_attempts"] for e in shards)
        splits[split] = {"scenes": n, "shards": shards, "grasp_attempts": attempts}
    manifest = {
        **config.to_json(),
        "splits": splits,
        "stats": merge_stats([e for e in entries if e["file"].startswith("train/")]),
        "shapes": entries[0]["shapes"] if entries else {},
        "sensor_info": sensor_info(sensors),
    }
    if isinstance(config.hand, dict) and Path(config.hand["mjcf"]).is_file():
        manifest["hand_sha256"] = file_sha256(config.hand["mjcf"])  # which hand file made the grasps
    for split in manifest["splits"].values():
        split["shards"] = [{k: v for k, v in e.items() if k not in ("stats", "shapes")} for e in split["shards"]]
    return manifest


def _parse_range(shard_range, total: int) -> range:
    a, b = shard_range
    if not (0 <= a < b) or a >= total:
        raise DataError(f"--shard-range {a}:{b}: must satisfy 0 <= A < B and A < {total} (the dataset has {total} shards)")
    return range(a, min(b, total))


def generate(root: str | os.PathLike, config: DatasetConfig, workers: int = 1, progress: bool = True,
             shard_range: tuple[int, int] | None = None, registry=None) -> dict:  # fmt: skip
    """Make (or finish) the dataset in ``root`` and return its manifest.

    ``workers``: processes (0 = one per CPU core). ``registry``: the caller's plugin registry (loaded once per
    process when not given). ``shard_range=(a, b)``: make only the global shards a..b-1 (see
    ``shard_tasks``) and write no manifest; then the return value is ``{"shards": [...records], "total_shards": n}``
    and ``finalize(root)`` writes the manifest once all shards exist. On a finished dataset, regenerates the missing
    or corrupted shards (same bytes) and rewrites the manifest. Raises ``DataError`` (one line) when ``root`` holds a
    dataset made with other settings or is not a directory, for negative ``workers``, blocks outside [2, MAX_BLOCKS],
    an unknown sensor, split, preset or saturation option, and for a hand file that is missing, does not compile or
    lacks the 132-value layout; ``MachineError`` (one line) when the disk is full or the directory read-only.
    """
    root = Path(root)
    if workers < 0:
        raise DataError(f"{root}: workers: must be >= 0 (0 = one per CPU core), got {workers}")
    sensors = check_request(root, config, registry)
    manifest_path = root / MANIFEST
    _check_config(root, config)
    all_tasks = shard_tasks(config)
    chosen = range(len(all_tasks)) if shard_range is None else _parse_range(shard_range, len(all_tasks))
    if shard_range is None and manifest_path.exists():
        damaged = _damaged_shards(root, manifest_path, progress)
        if damaged is None:
            return read_json(manifest_path)
        if damaged:
            print(f"{root}: {len(damaged)} of {len(all_tasks)} shards missing or corrupted; regenerating them "
                  f"(the same bytes)", file=sys.stderr)  # fmt: skip
        chosen = damaged
    workers = workers or os.cpu_count() or 1
    tasks = [(str(root), config.seed, *all_tasks[i]) for i in chosen]
    try:
        entries = _make_shards(tasks, config, workers, progress, f"MESE -> {root}")
    except SensorRecordError as exc:
        scene = f"{exc.args[2]}: " if len(exc.args) > 2 else ""
        raise DataError(f"{root}: {scene}{exc}{_provider(exc.args[0], registry)}; fix its record() (nothing of it "
                        f"was written)") from None  # fmt: skip
    if shard_range is not None:
        return {"shards": sorted(entries, key=lambda e: e["file"]), "total_shards": len(all_tasks)}
    if len(tasks) < len(all_tasks):  # a repair: the records of the intact shards make the rest of the manifest
        remade = set(chosen)
        entries = [_record_of(root, *all_tasks[i][:2]) for i in range(len(all_tasks)) if i not in remade] + entries
    manifest = build_manifest(config, entries, sensors)
    _write_manifest(root, manifest)
    return manifest


def scheduler_part(env=None) -> tuple[int, int]:
    """(k, n): which part of n this process makes, from its scheduler's environment, first match wins:
    a Slurm array task (``SLURM_ARRAY_TASK_ID`` - ``SLURM_ARRAY_TASK_MIN`` of ``SLURM_ARRAY_TASK_COUNT``), a process
    of ``torchrun`` / ``torch.distributed`` (``RANK`` of ``WORLD_SIZE``) or a Slurm job step's task (``SLURM_PROCID``
    of ``SLURM_NTASKS``). Raises ``DataError`` when none is set or the values are not 0 <= k < n."""
    env = os.environ if env is None else env
    for index, count, first in (("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN"),
                                ("RANK", "WORLD_SIZE", None), ("SLURM_PROCID", "SLURM_NTASKS", None)):  # fmt: skip
        if index in env and count in env:
            try:
                k, n = int(env[index]) - int(env.get(first, 0) if first else 0), int(env[count])
            except ValueError:
                raise DataError(f"--part auto: {index}={env[index]!r}, {count}={env[count]!r} are not integers") from None
            if not 0 <= k < n:
                raise DataError(f"--part auto: {index}={env[index]} gives part {k}, not in 0..{n - 1} ({count}={n})")
            return k, n
    raise DataError("--part auto: no scheduler part in the environment (SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT, "
                    "RANK/WORLD_SIZE or SLURM_PROCID/SLURM_NTASKS); give --part K/N")  # fmt: skip


def part_range(k: int, n: int, total: int) -> tuple[int, int]:
    """The global shards [a, b) of part k of n: contiguous, sizes differing by at most one (empty when n > total)."""
    return total * k // n, total * (k + 1) // n


def generate_part(root: str | os.PathLike, config: DatasetConfig, k: int, n: int, workers: int = 1,
                  progress: bool = True, registry=None) -> dict:  # fmt: skip
    """Make part k of n of the dataset (``part_range`` of the global shards), then, if every shard of the dataset
    now exists, write the manifest (``finalize`` without re-hashing: each record was made from its shard's bytes),
    so that whichever part finishes last completes the dataset, byte-identical to a single run. Returns
    ``{"part": [k, n], "shards": [records], "total_shards": T, "finalized": bool}``. Raises as ``generate``."""
    root = Path(root)
    if not 0 <= k < n:
        raise DataError(f"--part {k}/{n}: must satisfy 0 <= K < N")
    total = len(shard_tasks(config))
    a, b = part_range(k, n, total)
    made = generate(root, config, workers=workers, progress=progress, shard_range=(a, b), registry=registry) if b > a \
        else {"shards": [], "total_shards": total}  # fmt: skip
    done = all(shard_path(root, split, shard).exists() for split, shard, _, _ in shard_tasks(config))
    if done:
        finalize(root, check=False)
    return {"part": [k, n], **made, "finalized": done}


def _provider(sensor: str, registry=None) -> str:
    """`` (plugin P, distribution D V)`` for the plugin that registered ``sensor``, if the registry knows it."""
    status = _registry(registry).providers.get(f"sensor:{sensor}")
    return f" (plugin {status.name}, distribution {status.distribution} {status.version})" if status else ""


def _make_shards(tasks: list[tuple], config: DatasetConfig, workers: int, progress: bool, desc: str) -> list[dict]:
    """Make the shards of ``tasks`` in ``workers`` processes; shards locked by another process are made (or
    waited for) at the end. Returns their records."""
    global _maker
    entries, busy = [], []
    bar = tqdm(total=sum(t[-1] for t in tasks), unit="scene", desc=desc, disable=not progress, dynamic_ncols=True)

    def done(entry: dict) -> None:
        if "busy" in entry:
            busy.append(entry["busy"])
        else:
            entries.append(entry)
            bar.update(entry["scenes"])

    try:
        if workers > 1 and len(tasks) > 1:
            ctx = mp.get_context("spawn")  # no fork after GL/torch state exists in the parent
            with ctx.Pool(min(workers, len(tasks)), initializer=_init_worker, initargs=(config.to_json(),)) as pool:
                for entry in pool.imap_unordered(_make_shard, tasks):
                    done(entry)
            tasks, busy = busy, []
        if tasks:
            _init_worker(config.to_json())
            for task in tasks:
                done(_make_shard(task))
            for task in busy:  # another process is making these: wait for it (or take over if it died)
                bar.set_postfix_str(f"waiting for shard {task[2]}/{task[3]} of another process")
                done(_make_shard(task, blocking=True))
    finally:
        if _maker is not None:
            _maker.close()
            _maker = None
        bar.close()
    return entries


def _record_of(root: Path, split: str, shard: int) -> dict:
    """The per-shard record of an intact shard; ``DataError`` (with the repair command) when it is damaged."""
    return read_json(record_path(shard_path(root, split, shard)), hint=repair_hint(root))


def _write_manifest(root: Path, manifest: dict) -> None:
    """Write ``manifest.json`` under the dataset's manifest lock (processes finishing together write in turn)."""
    path = root / MANIFEST
    try:
        with hold(root / ".manifest.lock", "the manifest", blocking=True):
            remove_stale_temps(path)
            write_json(path, manifest)
    except OSError as exc:
        raise _write_error(path, exc) from None


def _damaged_shards(root: Path, manifest_path: Path, progress: bool) -> list[int] | None:
    """Global indices of the shards of a finished dataset that are missing or whose sha256 differs from the
    manifest, after deleting the damaged files (shard and record); None when every shard is intact and the
    manifest is readable. A damaged manifest counts as all shards to check against their records."""
    config = read_config(root)
    tasks = shard_tasks(config)
    try:
        manifest = read_json(manifest_path)
    except DataError:
        manifest = None
    if manifest is not None and manifest_problem(manifest) is None:
        expected = {e["file"]: e["sha256"] for split in manifest["splits"].values() for e in split["shards"]}
    else:
        manifest, expected = None, {}
    cache = ChecksumCache(root)
    damaged = []
    for i, (split, shard, _, _) in enumerate(tqdm(tasks, desc=f"check {root}", unit="shard", leave=False,
                                                  disable=not progress or len(tasks) < 1000)):  # fmt: skip
        path = shard_path(root, split, shard)
        want = expected.get(f"{split}/{path.name}")
        if want is None:
            try:
                want = read_json(record_path(path))["sha256"]
            except (OSError, DataError, KeyError, TypeError):
                want = None
        if want is None or cache.sha256(path) != want:
            damaged.append(i)
            for p in (path, record_path(path)):
                p.unlink(missing_ok=True)
    cache.save()
    return damaged if damaged or manifest is None else None


def read_config(root: str | os.PathLike) -> DatasetConfig:
    """The ``DatasetConfig`` of a dataset directory (from ``config.json``, or from the manifest when that is
    missing or damaged); ``DataError`` if there is none."""
    path = Path(root) / CONFIG
    if not path.exists() and not (Path(root) / MANIFEST).exists():
        raise DataError(f"{path}: no such file; not a MESE dataset directory")
    data = _stored_config(Path(root))
    if data.get("generator_version") != GENERATOR_VERSION:
        raise DataError(f"{path}: generator_version {data.get('generator_version')} is not {GENERATOR_VERSION}; "
                        "regenerate the dataset")  # fmt: skip
    return DatasetConfig.from_json(data)


def finalize(root: str | os.PathLike, check: bool = True) -> dict:
    """(Re)write ``manifest.json`` from the per-shard records (recomputed from a shard whose record is missing).

    Use it after ``generate(..., shard_range=...)`` runs, possibly on several machines whose shards were copied into
    ``root``. ``check``: verify every shard's sha256 against its record. Raises ``DataError`` naming the first
    missing or corrupted shard (and how many are missing).
    """
    root = Path(root)
    config = read_config(root)
    registry = _registry()
    sensors = [registry.sensor(name) for name in config.sensors]
    minmax = [s.name for s in sensors if s.normalization == "minmax"]
    tasks = shard_tasks(config)
    missing = [shard_path(root, split, shard) for split, shard, _, _ in tasks
               if not shard_path(root, split, shard).exists()]  # fmt: skip
    if missing:
        raise DataError(f"{missing[0]}: missing ({len(missing)} of {len(tasks)} shards missing); generate them "
                        f"(gmn-data generate ... --shard-range) and finalize again")  # fmt: skip
    entries = []
    for split, shard, _, count in tasks:
        path = shard_path(root, split, shard)
        record = record_path(path)
        if record.exists():
            entry = read_json(record)
            if check and file_sha256(path) != entry["sha256"]:
                raise DataError(f"{path}: corrupted (sha256 differs from {record.name}); regenerate it: gmn-data "
                                f"generate with its --shard-range, or, on a single machine, gmn-data repair {root}")  # fmt: skip
        else:
            entry = shard_record(path, split, count, read_shard(path), minmax)
            write_json(record, entry)
        if entry["scenes"] != count:
            raise DataError(f"{path}: holds {entry['scenes']} scenes, expected {count}; made with other settings?")
        entries.append(entry)
    manifest = build_manifest(config, entries, sensors)
    _write_manifest(root, manifest)
    return manifest


def repair(root: str | os.PathLike, workers: int = 0, progress: bool = True) -> tuple[dict, int]:
    """Regenerate the missing or corrupted shards of the dataset in ``root`` from its own settings (same bytes) and
    rewrite its manifest; return (manifest, number of shards made again)."""
    root = Path(root)
    config = read_config(root)
    manifest_path = root / MANIFEST
    damaged = _damaged_shards(root, manifest_path, progress) if manifest_path.exists() else None
    manifest = generate(root, config, workers=workers, progress=progress)
    return manifest, len(damaged or [])


def verify(root: str | os.PathLike) -> list[str]:
    """One line per missing or corrupted shard of a finalized dataset, and per damaged file of its packed copy
    (``format.verify_packed``); empty list: all checksums match. Every file is hashed again (the checksum cache is
    refreshed, never trusted). A manifest of another dataset (its settings differ from ``config.json``) is that one
    line, not a list of shards."""
    root = Path(root)
    manifest = read_manifest(root)
    foreign = _foreign_manifest(root, manifest)
    if foreign:
        return [foreign]
    cache = ChecksumCache(root, rehash=True)
    problems = []
    for split in manifest["splits"].values():
        for entry in split["shards"]:
            path = root / entry["file"]
            digest = cache.sha256(path)
            if digest is None:
                problems.append(f"{path}: missing; {repair_hint(root)}")
            elif digest != entry["sha256"]:
                problems.append(f"{path}: corrupted (sha256 differs from the manifest); {repair_hint(root)}")
    problems += verify_packed(root, manifest, cache)  # the copy training reads
    cache.save()
    return problems

