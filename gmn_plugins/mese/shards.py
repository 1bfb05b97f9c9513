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
CHECKSUM_CACHE = ".checksums.json"  # per dataset directory: shard -> [size, mtime_ns, sha256]


class DataError(Exception):
    """A dataset problem; ``str(err)`` is one line naming the file, what is wrong and the command that repairs it."""


def repair_hint(root: str | os.PathLike) -> str:
    """The command that regenerates a dataset's missing or corrupted shards and rewrites its manifest."""
    return f"repair: gmn-data repair {root}"


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
    """All arrays of a shard, loaded into memory. Raises ``DataError`` (one line with the repair command) for a
    missing, truncated or otherwise unreadable shard."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except Exception as exc:  # BadZipFile, zlib.error, ValueError, EOFError, OSError: the file is damaged or gone
        what = "missing" if isinstance(exc, FileNotFoundError) else f"unreadable ({type(exc).__name__})"
        raise DataError(f"{path}: {what}; {repair_hint(path.parent.parent)}") from None


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


def manifest_sha256(manifest: dict) -> str:
    """sha256 of a manifest's content (key-sorted JSON): the identity of a dataset wherever it lives. The manifest
    holds every shard's sha256, so equal digests mean equal data."""
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()


def read_json(path: str | os.PathLike, hint: str = ""):
    """Read a JSON file. Raises ``DataError`` naming the file (and ``hint``: what repairs it) when it is truncated or
    not JSON; ``FileNotFoundError`` when it is missing."""
    try:
        with open(path, "rb") as f:
            return json.loads(f.read().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        reason = f"line {exc.lineno}: {exc.msg}" if isinstance(exc, json.JSONDecodeError) else "not text"
        raise DataError(f"{path}: truncated or not JSON ({reason})" + (f"; {hint}" if hint else "")) from None


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
