"""The MESE dataset format, in one module: directory layout, array keys, split codes, shard files, checksums,
manifest and reader. The generator (``mese.generate``) writes it; training and evaluation (``data.episodes``) read it.

Layout of a dataset directory ``ROOT``::

    config.json                 what was asked for (``mese.generate.DatasetConfig``; written first, under .config.lock)
    train/shard-00000.npz ...   ``shard_size`` scenes each (the last may hold fewer); also val/, test/
    train/shard-00000.json ...  per-shard record: file, scenes, sha256, shapes, min/max statistics, grasp attempts
    manifest.json               counts, shapes, sensors, per-shard sha256, train statistics (written last)
    .checksums.json             a cache of the files' sha256 keyed by (size, mtime); only a cache
    packed/train/KEY.npy ...    the split's arrays uncompressed, one memory-mappable .npy per key (``pack_split``)
    packed/train/index.json     what they were packed from (the manifest's sha256) and each file's sha256 (last)

and nothing else but lock and temp files (``foreign_entries``): ``generate`` refuses a directory of other files.

Training and evaluation read a split through ``open_split``: memory maps of the packed copy, so reading a scene
costs a page fault, not a decompression, and memory does not grow with the dataset. A shard is deflate-compressed
(random access would inflate it whole); the packed copy is the same bytes of every array, made once per split.

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

import errno
import hashlib
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from ..runtime.faults import cannot_write
from ..runtime.files import DataError, atomic_write, file_sha256, read_json, remove_stale_temps, write_json
from ..runtime.locks import hold

SPLITS = ("train", "val", "test")
SPLIT_CODES = {split: code for code, split in enumerate(SPLITS)}  # a scene's seed is (seed, split code, index)
CONFIG = "config.json"
MANIFEST = "manifest.json"
CHECKSUM_CACHE = ".checksums.json"  # shard -> [size, mtime_ns, sha256]
CONFIG_LOCK = ".config.lock"  # held while config.json is checked and written (mese.generate)
SHARD_GLOB = "*/shard-*.npz"
PACKED = "packed"  # ROOT/packed/SPLIT/KEY.npy + index.json
PACKED_INDEX = "index.json"
LABEL = "label"
OBJECT_KEYS = ("walk", "colours")  # enough to build the scene's object again (``SceneSet.objects``)
FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
DATASET_ENTRIES = frozenset({CONFIG, MANIFEST, PACKED, *SPLITS})  # and hidden files: see foreign_entries

__all__ = ["DataError", "SPLITS", "SPLIT_CODES", "query_key", "shard_path", "record_path", "write_shard",
           "read_shard", "ChecksumCache", "manifest_sha256", "read_manifest", "load_split", "pack_split", "open_split",
           "repair_hint"]  # fmt: skip


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


def foreign_entries(root: str | os.PathLike) -> list[str]:
    """The names in ``root`` that a dataset directory does not hold (sorted): anything but ``DATASET_ENTRIES``, the
    checksum cache, lock files, temp files and NFS's ``.nfs*`` files. ``generate`` refuses a directory that holds
    any and no dataset settings of its own, so that a user's files are never overwritten."""
    try:
        names = [p.name for p in Path(root).iterdir()]
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(n for n in names if n not in DATASET_ENTRIES and n != CHECKSUM_CACHE and not (
        n.startswith(".") and (n.endswith((".lock", ".tmp")) or n.startswith(".nfs"))))


def written_by_gmn_data(content) -> bool:
    """Whether the content of a ``config.json`` or ``manifest.json`` is one that ``gmn-data`` wrote (a table with
    ``generator_version``), not a file of the same name that belongs to something else."""
    return isinstance(content, dict) and "generator_version" in content


def _shard_entry_ok(entry) -> bool:
    return isinstance(entry, dict) and all(isinstance(entry.get(k), t) for k, t in (("file", str), ("sha256", str),
                                                                                     ("scenes", int)))  # fmt: skip


def manifest_problem(manifest) -> str | None:
    """What makes ``manifest`` unusable as a MESE manifest (``"splits: missing"``, ...), or None."""
    if not written_by_gmn_data(manifest):
        return "not a MESE manifest (no generator_version)"
    for key in ("splits", "stats", "shapes", "sensor_info"):
        if not isinstance(manifest.get(key), dict):
            return f"{key}: missing or not a table"
    for name, split in manifest["splits"].items():
        if not (isinstance(split, dict) and isinstance(split.get("scenes"), int)
                and isinstance(split.get("shards"), list) and all(map(_shard_entry_ok, split["shards"]))):
            return f"splits.{name}: expected scenes and a list of shards (file, scenes, sha256)"
    return None


def read_manifest(root: str | os.PathLike, split: str | None = None) -> dict:
    """``ROOT/manifest.json``. Raises ``DataError`` (one line) when it is missing (the dataset is unfinished), damaged,
    not a MESE manifest (``manifest_problem``), or has no split ``split`` (when given)."""
    path = Path(root) / MANIFEST
    if not path.exists():
        raise DataError(f"{path}: no manifest; generate the dataset or run gmn-data finalize {root}")
    manifest = read_json(path, hint=repair_hint(root))
    problem = manifest_problem(manifest)
    if problem:
        raise DataError(f"{path}: {problem}; {repair_hint(root)}")
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


def packed_dir(root: str | os.PathLike, split: str) -> Path:
    """``ROOT/packed/SPLIT``: where ``pack_split`` writes a split's memory-mappable arrays."""
    return Path(root) / PACKED / split


def _packed_index(root: Path, split: str, manifest: dict) -> dict | None:
    """The split's packed index if it is complete and made from this manifest, else None."""
    try:
        index = read_json(packed_dir(root, split) / PACKED_INDEX)
    except (OSError, DataError):
        return None
    return index if isinstance(index, dict) and index.get("manifest_sha256") == manifest_sha256(manifest) else None


def _allocated_npy(path: Path, dtype: np.dtype, shape: tuple[int, ...]) -> np.memmap:
    """A new ``.npy`` file of ``shape`` and ``dtype`` at ``path``, mapped for writing once its blocks are allocated,
    so a full disk is an ``OSError`` (ENOSPC) here, never a SIGBUS when the map is written."""
    header = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)  # the header, then a sparse file
    offset, size = header.offset, header.nbytes
    del header  # unmapped
    with open(path, "rb+") as f:
        try:
            if size:
                os.posix_fallocate(f.fileno(), offset, size)
        except (AttributeError, OSError) as exc:  # no posix_fallocate (macOS), or a file system without it: zeros
            if isinstance(exc, OSError) and exc.errno not in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOSYS):
                raise
            f.seek(offset)
            for start in range(0, size, 1 << 20):
                f.write(bytes(min(size - start, 1 << 20)))
            f.flush()
            os.fsync(f.fileno())
    return np.lib.format.open_memmap(path, mode="r+")


def pack_split(root: str | os.PathLike, split: str, progress: bool = False) -> dict:
    """Write the split's arrays uncompressed, one ``ROOT/packed/SPLIT/KEY.npy`` (scenes, ...) per key, filled shard
    by shard (memory: one shard), each file atomically, then ``index.json`` (``{"manifest_sha256", "scenes",
    "files": {KEY: {"file", "sha256", "shape", "dtype"}}}``) last; return the index. A split already packed from
    this manifest is left alone; a dataset whose manifest changed (a repair, say) is packed again. Several
    processes may call it at once (a lock per split). Raises ``DataError`` like ``load_split``; ``OSError`` when
    the directory cannot be written."""
    root = Path(root)
    manifest = read_manifest(root, split)
    index = _packed_index(root, split, manifest)
    if index is not None:
        return index
    out = packed_dir(root, split)
    out.mkdir(parents=True, exist_ok=True)
    with hold(out.parent / f".{split}.lock", f"packing {root}/{split}", blocking=True):
        index = _packed_index(root, split, manifest)  # another process may have packed it meanwhile
        if index is not None:
            return index
        entries = manifest["splits"][split]["shards"]
        scenes = sum(e["scenes"] for e in entries)
        cache = ChecksumCache(root)
        files, maps, start = {}, {}, 0  # key -> (target, temp file); key -> the open memory map being filled
        try:
            from tqdm import tqdm

            for entry in tqdm(entries, desc=f"pack {root}/{split}", unit="shard", disable=not progress, leave=False):
                path = root / entry["file"]
                if cache.sha256(path) != entry["sha256"]:
                    raise DataError(f"{path}: missing or corrupted (sha256 differs from the manifest); "
                                    f"{repair_hint(root)}")  # fmt: skip
                for key, array in read_shard(path).items():
                    if key not in files:
                        target = out / f"{key}.npy"
                        remove_stale_temps(target)
                        files[key] = (target, target.with_name(f".{target.name}.{os.getpid()}.tmp"))
                        maps[key] = _allocated_npy(files[key][1], array.dtype, (scenes, *array.shape[1:]))
                    maps[key][start : start + len(array)] = array
                start += entry["scenes"]
            layout = {key: ([int(n) for n in m.shape], str(m.dtype)) for key, m in maps.items()}
            for m in maps.values():
                m.flush()
            maps.clear()  # the last references: the maps are closed before their files are renamed
            written = {}
            for key, (target, tmp) in files.items():
                with open(tmp, "rb+") as f:
                    os.fsync(f.fileno())
                os.replace(tmp, target)
                shape, dtype = layout[key]
                written[key] = {"file": target.name, "sha256": cache.sha256(target), "shape": shape, "dtype": dtype}
        finally:
            maps.clear()
            for _, tmp in files.values():
                tmp.unlink(missing_ok=True)
        cache.save()
        index = {"manifest_sha256": manifest_sha256(manifest), "scenes": scenes, "files": written}
        write_json(out / PACKED_INDEX, index)
        return index


def verify_packed(root: str | os.PathLike, manifest: dict, cache: ChecksumCache) -> list[str]:
    """One line per packed file (what training reads) that is missing or whose sha256 differs from its split's
    ``index.json``, hashed through ``cache``; a damaged split's index is removed, so that the split is packed again
    from the shards at its next use. Splits not packed, or packed from another manifest, are skipped."""
    root = Path(root)
    problems = []
    for split in manifest["splits"]:
        index = _packed_index(root, split, manifest)
        files = index.get("files") if index is not None else None
        if not isinstance(files, dict):
            continue
        bad = []
        for entry in files.values():
            path = packed_dir(root, split) / str(entry.get("file") if isinstance(entry, dict) else "")
            digest = cache.sha256(path) if path.is_file() else None
            if digest is None or digest != entry.get("sha256"):
                what = "missing" if digest is None else f"corrupted (sha256 differs from {PACKED_INDEX})"
                bad.append(f"{path}: {what}")
        if bad:
            try:
                (packed_dir(root, split) / PACKED_INDEX).unlink(missing_ok=True)
                then = f"its index was removed: {split} is packed again from the shards at its next use"
            except OSError:
                then = f"delete {packed_dir(root, split)} to have {split} packed again from the shards"
            problems += [f"{line}; {then} (or: gmn-data pack {root})" for line in bad]
    return problems


def open_split(root: str | os.PathLike, split: str, progress: bool = False) -> dict[str, np.ndarray]:
    """Every array of one split as a read-only memory map (scenes, ...), packing the split first if needed
    (``pack_split``). Each packed file is checked against the index's sha256 through the checksum cache, so a
    file is hashed once and again only when its size or mtime changes. Falls back to ``load_split`` (in memory, a
    warning on stderr) when the dataset directory cannot be written. Raises ``DataError`` like ``load_split``, and
    for a packed file that changed on disk (it is packed again on the next call); ``MachineError`` when the disk
    is full."""
    root = Path(root)
    try:
        index = pack_split(root, split, progress)
    except OSError as exc:
        import sys

        if exc.errno in (errno.ENOSPC, errno.EDQUOT):  # the split would not fit in memory either, as a rule
            raise cannot_write(packed_dir(root, split), exc, "the shards are intact; free space there and run "
                               "again") from None  # fmt: skip

        print(f"warning: {root}: cannot write the packed copy of {split} ({exc.strerror or exc}); reading the split "
              f"into memory instead", file=sys.stderr)  # fmt: skip
        return load_split(root, split)
    cache = ChecksumCache(root)
    arrays = {}
    for key, entry in index["files"].items():
        path = packed_dir(root, split) / entry["file"]
        if cache.sha256(path) != entry["sha256"]:
            (packed_dir(root, split) / PACKED_INDEX).unlink(missing_ok=True)
            raise DataError(f"{path}: missing or changed since it was packed; run again to pack {split} anew")
        arrays[key] = np.load(path, mmap_mode="r")
    cache.save()
    return arrays
