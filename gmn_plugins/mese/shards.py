"""Shards and manifests on disk, written atomically (temp file + rename) and byte-reproducibly.

A shard is an uncompressed-name, deflate-compressed ``.npz`` whose zip entries carry a fixed timestamp, so the same
arrays always give the same bytes (numpy's own ``savez`` stamps the current time).
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write) -> None:
    """Call ``write(file_object)`` on a temp file beside ``path``, fsync it, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give them the permissions open() would
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_stale_temps(path: str | os.PathLike) -> int:
    """Delete the temp files that an interrupted ``atomic_write(path, ...)`` (kill -9, power loss) left beside
    ``path``; return how many. Call it only where no other process may be writing ``path`` at the same time."""
    path = Path(path)
    stale = list(path.parent.glob(f".{glob.escape(path.name)}.*.tmp"))
    for tmp in stale:
        tmp.unlink(missing_ok=True)
    return len(stale)


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
    """All arrays of a shard, loaded into memory."""
    with np.load(path, allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_json(path: str | os.PathLike, obj) -> None:
    """Write ``obj`` as indented, key-sorted JSON atomically."""
    text = json.dumps(obj, indent=2, sort_keys=True) + "\n"
    atomic_write(Path(path), lambda f: f.write(text.encode()))


def read_json(path: str | os.PathLike):
    with open(path) as f:
        return json.load(f)
