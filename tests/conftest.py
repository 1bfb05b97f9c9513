import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MPL_XML = SHARED / "assets" / "mpl_hand" / "mpl_right.xml"


def run_cli(module: str, *args: str, cwd=None, env=None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run one of the console scripts (``python -m gmn_plugins.cli.X``) for real and capture its output."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", f"gmn_plugins.cli.{module}", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def shard_bytes(root: Path) -> dict[str, bytes]:
    """Every shard of a dataset directory by relative path, as bytes (for byte-identity checks)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.glob("*/shard-*.npz"))}


@pytest.fixture
def quickstart_spec() -> Path:
    return REPO / "specs" / "quickstart.toml"


@pytest.fixture
def tmpfs(tmp_path):
    """``tmpfs(size)`` mounts a tmpfs of ``size`` bytes under tmp_path and returns its path (a real full disk, and
    ``remount_ro(path)`` a real read-only one); unmounted at the end. Skips where mounting is not allowed (not root)."""
    mounts = []

    def mount(size: int) -> Path:
        where = tmp_path / f"tmpfs{len(mounts)}"
        where.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True)
        if done.returncode:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
        mounts.append(where)
        return where

    yield mount
    for where in reversed(mounts):
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def remount_ro(where: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)
