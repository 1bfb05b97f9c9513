"""Faults of the machine, as opposed to mistakes in the user's input: a full disk, a read-only or forbidden
directory. The CLIs print them as one line and exit with code 1 (user mistakes exit with 2)."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path


class MachineError(Exception):
    """The machine cannot do what was asked (disk full, read-only, permission); ``str(err)`` is one line saying
    what to free or fix. Exit code 1."""


def _free(path: Path) -> int | None:
    for p in (path, *path.parents):
        try:
            return shutil.disk_usage(p).free
        except OSError:
            continue
    return None


def describe(exc: BaseException, path: str | os.PathLike) -> str:
    """What went wrong writing ``path``, in a few words: ``disk full (0.1 MiB free)``, ``read-only file system``,
    ``permission denied``; torch's zip writer reports a full disk as ``RuntimeError``, recognised by the free
    space left."""
    path = Path(path)
    code = getattr(exc, "errno", None)
    free = _free(path.parent)
    if code == errno.ENOSPC or code == errno.EDQUOT or (not isinstance(exc, OSError) and free is not None
                                                         and free < 64 << 20):  # fmt: skip
        return f"disk full ({(free or 0) / 2**20:.1f} MiB free there)"
    if code == errno.EROFS:
        return "read-only file system"
    if code in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"


MACHINE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}


def is_machine_fault(exc: BaseException) -> bool:
    """A full disk, a read-only or forbidden directory, an I/O error, or a writer that failed without an errno
    (torch's zip writer on a full disk); not a path that the user got wrong (ENOTDIR, ENOENT, EISDIR)."""
    return not isinstance(exc, OSError) or exc.errno in MACHINE_ERRNOS


def cannot_write(path: str | os.PathLike, exc: BaseException, then: str, user_error: type | None = None) -> Exception:
    """``PATH: cannot write: WHAT; THEN`` (``then`` says what is intact and how to go on): a ``MachineError`` for a
    fault of the machine, else ``user_error`` (the caller's one-line user-error class) when given."""
    cls = MachineError if user_error is None or is_machine_fault(exc) else user_error
    return cls(f"{path}: cannot write: {describe(exc, path)}; {then}")
