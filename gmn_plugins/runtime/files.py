"""Files written atomically (temp file + fsync + rename) and read with one-line errors: shards, manifests,
checkpoints, records and reports all go through here, so an interrupted process never leaves a half-written file."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import tempfile
from pathlib import Path


class DataError(Exception):
    """A problem with a file on disk (dataset, manifest, record); ``str(err)`` is one line naming the file, what is
    wrong and the command that repairs it. The command-line tools print it and exit with code 2."""


class CheckpointError(Exception):
    """A checkpoint that cannot be used; ``str(err)`` is one line saying what differs. Defined here, beside
    DataError, so that the command-line tools catch it without importing torch (``checkpoint`` re-exports it)."""


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


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 hex digest of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_json(path: str | os.PathLike, obj) -> None:
    """Write ``obj`` as indented, key-sorted JSON atomically."""
    text = json.dumps(obj, indent=2, sort_keys=True) + "\n"
    atomic_write(Path(path), lambda f: f.write(text.encode()))


def read_json(path: str | os.PathLike, hint: str = ""):
    """Read a JSON file. Raises ``DataError`` naming the file (and ``hint``: what repairs it) when it is truncated or
    not JSON; ``FileNotFoundError`` when it is missing."""
    try:
        with open(path, "rb") as f:
            return json.loads(f.read().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        reason = f"line {exc.lineno}: {exc.msg}" if isinstance(exc, json.JSONDecodeError) else "not text"
        raise DataError(f"{path}: truncated or not JSON ({reason})" + (f"; {hint}" if hint else "")) from None
