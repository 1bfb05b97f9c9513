"""The MESE dataset format, in one module: directory layout, array keys, split codes, shard files, checksums,
manifest and reader. The generator (``mese.generate``) writes it; training and evaluation (``data.episodes``) read it.

Layout of a dataset directory ``ROOT``::

    config.json                 what was asked for (``mese.generate.DatasetConfig``; written first)
    train/shard-00000.npz ...   ``shard_size`` scenes each (the last may hold fewer); also val/, test/
    train/shard-00000.json ...  per-shard record: file, scenes, sha256, shapes, min/max statistics, grasp attempts
    manifest.json               counts, shapes, sensors, per-shard sha256, train statistics (written last)
    .checksums.json             a cache of the shards' sha256 keyed by (size, mtime); only a cache

Arrays of a shard, every one with the scene as its first axis (S scenes, V views)::

    walk        (S, blocks - 1) int8        the Shepard–Metzler walk (``mese.shapes``)
    colours     (S, blocks, 3) float32      block colours, RGB in [0, 1]
    label       (S,) int64                  the object's class (``shapes.class_label``)
    query.KIND  (S, V, dim) float32         the queries of each query kind used (``query_key``; camera and
                                            wrist: x, y, z in metres, pitch, yaw in radians)
    SENSOR      (S, V, *shape)              each sensor's senses, under the sensor's name (e.g. ``camera.rgb``)
    ...                                     what a query kind keeps besides (wrist: ``grasp_attempts`` (S,) int64)

A shard is a deflate-compressed ``.npz`` whose zip entries carry a fixed timestamp, so the same arrays always give
the same bytes (numpy's own ``savez`` stamps the current time). Every file is written atomically (``files``).
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from ..files import DataError, atomic_write, file_sha256, read_json, write_json

SPLITS = ("train", "val", "test")
SPLIT_CODES = {split: code for code, split in enumerate(SPLITS)}  # a scene's seed is (seed, split code, index)
CONFIG = "config.json"
MANIFEST = "manifest.json"
CHECKSUM_CACHE = ".checksums.json"  # shard -> [size, mtime_ns, sha256]
SHARD_GLOB = "*/shard-*.npz"
LABEL = "label"
OBJECT_KEYS = ("walk", "colours")  # enough to build the scene's object again (``SceneSet.objects``)
FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)

__all__ = ["DataError", "SPLITS", "SPLIT_CODES", "query_key", "shard_path", "record_path", "write_shard",
           "read_shard", "ChecksumCache", "manifest_sha256", "read_manifest", "load_split", "repair_hint"]  # fmt: skip


def query_key(kind: str) -> str:
    """The array key of a query kind's queries: ``query.KIND``."""
    return f"query.{kind}"


def shard_path(root: Path, split: str, shard: int) -> Path:
    """``ROOT/SPLIT/shard-NNNNN.npz``: the file of shard ``shard`` (0-based, per split)."""
    return Path(root) / split / f"shard-{shard:05d}.npz"


def record_path(shard: Path) -> Path:
    """The per-shard record (sha256, shapes, statistics) beside a shard."""
    return shard.with_suffix(".json")


def repair_hint(root: str | os.PathLike) -> str:
    """The command that regenerates a dataset's missing or corrupted shards and rewrites its manifest."""
    return f"repair: gmn-data repair {root}"


def write_shard(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> str:
    """Write ``arrays`` as a deterministic ``.npz`` atomically; return its sha256 hex digest."""

    def write(f) -> None:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for key in sorted(arrays):
                info = zipfile.ZipInfo(f"{key}.npy", date_time=FIXED_ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                with zf.open(info, "w", force_zip64=True) as entry:
                    np.lib.format.write_array(entry, np.ascontiguousarray(arrays[key]), allow_pickle=False)

    atomic_write(Path(path), write)
    return file_sha256(path)


def read_shard(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """All arrays of a shard, loaded into memory. Raises ``DataError`` (one line with the repair command) for a
    missing, truncated or otherwise unreadable shard."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except Exception as exc:  # BadZipFile, zlib.error, ValueError, EOFError, OSError: the file is damaged or gone
        what = "missing" if isinstance(exc, FileNotFoundError) else f"unreadable ({type(exc).__name__})"
        raise DataError(f"{path}: {what}; {repair_hint(path.parent.parent)}") from None


def manifest_sha256(manifest: dict) -> str:
    """sha256 of a manifest's content (key-sorted JSON): the identity of a dataset wherever it lives. The manifest
    holds every shard's sha256, so equal digests mean equal data."""
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()


class ChecksumCache:
    """The sha256 of each shard of a dataset directory, re-hashed only when its (size, mtime) changes.

    Kept in ``ROOT/.checksums.json`` as ``{"train/shard-00000.npz": [size, mtime_ns, sha256], ...}`` and written
    atomically by ``save()``; several processes may share it (the last writer wins; a lost entry costs one re-hash).
    A shard rewritten in place keeps neither its mtime nor, in general, its size, so a change is seen; bit rot that
    leaves both alone is found by ``gmn-data verify``, which always re-hashes (``rehash=True``).
    """

    def __init__(self, root: str | os.PathLike, rehash: bool = False):
        self.root = Path(root)
        self.rehash = rehash
        self.changed = False
        try:
            self.entries = json.loads((self.root / CHECKSUM_CACHE).read_text())
            assert isinstance(self.entries, dict)
        except (OSError, ValueError, AssertionError):
            self.entries = {}

    def sha256(self, path: str | os.PathLike) -> str | None:
        """sha256 hex digest of ``path`` (inside root), or None if it does not exist."""
        path = Path(path)
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        key = path.relative_to(self.root).as_posix()
        cached = self.entries.get(key)
        if not self.rehash and isinstance(cached, list) and cached[:2] == [st.st_size, st.st_mtime_ns]:
            return cached[2]
        digest = file_sha256(path)
        self.entries[key] = [st.st_size, st.st_mtime_ns, digest]
        self.changed = True
        return digest

    def save(self) -> None:
        """Write the cache if it changed; a read-only dataset directory is left alone (the cache is only a cache)."""
        if self.changed:
            try:
                write_json(self.root / CHECKSUM_CACHE, self.entries)
            except OSError:
                pass
            self.changed = False


def read_manifest(root: str | os.PathLike, split: str | None = None) -> dict:
    """``ROOT/manifest.json``. Raises ``DataError`` (one line) when it is missing (the dataset is unfinished), damaged,
    or has no split ``split`` (when given)."""
    path = Path(root) / MANIFEST
    if not path.exists():
        raise DataError(f"{path}: no manifest; generate the dataset or run gmn-data finalize {root}")
    manifest = read_json(path, hint=repair_hint(root))
    if split is not None and split not in manifest["splits"]:
        raise DataError(f"{path}: splits: no split {split!r}")
    return manifest


def load_split(root: str | os.PathLike, split: str) -> dict[str, np.ndarray]:
    """All scenes of one split, concatenated: each key (scenes, ...) as listed in this module's docstring. Raises
    ``DataError`` on a missing manifest or split, or a shard whose checksum differs from the manifest."""
    root = Path(root)
    manifest = read_manifest(root, split)
    parts = []
    cache = ChecksumCache(root)
    for entry in manifest["splits"][split]["shards"]:
        path = root / entry["file"]
        if cache.sha256(path) != entry["sha256"]:
            raise DataError(f"{path}: missing or corrupted (sha256 differs from the manifest); {repair_hint(root)}")
        parts.append(read_shard(path))
    cache.save()
    if not parts:
        return {}
    return {key: np.concatenate([p[key] if p[key].ndim else p[key][None] for p in parts]) for key in parts[0]}
