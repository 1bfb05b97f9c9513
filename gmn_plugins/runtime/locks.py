"""Advisory locks on run directories and dataset shards (``fcntl.flock``), naming their holder.

A lock is an ``flock`` on a small file that records who holds it (``host pid``). The kernel releases an ``flock``
when its process dies, however it dies (kill -9 included), so a lock left by a killed process never blocks: the file
stays, but nothing holds it. Linux maps ``flock`` on NFS to POSIX record locks, so machines that share a directory
over NFS exclude each other too.
"""

from __future__ import annotations

import fcntl
import os
import socket
from contextlib import contextmanager
from pathlib import Path


class LockHeld(Exception):
    """Another live process holds the lock; ``str(err)`` is one line naming the path and its holder (host, pid)."""


def holder(path: str | os.PathLike) -> str:
    """Who last took the lock at ``path``: ``"host H pid P"`` (``"an unknown process"`` if not recorded)."""
    try:
        host, pid = Path(path).read_text().split()[:2]
        return f"host {host} pid {pid}"
    except (OSError, ValueError):
        return "an unknown process"


@contextmanager
def hold(path: str | os.PathLike, what: str, blocking: bool = False, remove: bool = False):
    """Hold an exclusive advisory lock on ``path`` (created if missing) for the ``with`` block.

    ``what`` names the locked thing in the error. ``blocking``: wait for the holder instead of raising.
    ``remove``: delete the lock file on release (for locks that are many and short, such as one per shard; the
    inode check below makes that safe). Raises ``LockHeld`` (one line naming the holder's host and pid) when
    another process holds it and ``blocking`` is false, ``OSError`` when the file cannot be created (read-only
    directory, disk full).
    """
    path = Path(path)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            raise LockHeld(f"{path}: {what} is in use by {holder(path)}; wait for it to finish, or stop it "
                           f"(a killed process releases its lock)") from None  # fmt: skip
        # the file may have been removed (remove=True) by a holder between our open and our flock: then we hold a
        # lock on an orphan inode that nobody else will see, so open the path again
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{socket.gethostname()} {os.getpid()}\n".encode())
        yield
    finally:
        if remove:
            path.unlink(missing_ok=True)
        os.close(fd)  # releases the flock
