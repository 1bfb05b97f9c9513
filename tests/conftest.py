import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MPL_XML = SHARED / "assets" / "mpl_hand" / "mpl_right.xml"


def load_benchmark(name: str):
    """The module ``benchmarks/NAME.py`` (benchmarks are scripts, not a package), freshly imported."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_cli(module: str, *args: str, cwd=None, env=None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run one of the console scripts (``python -m gmn_plugins.cli.X``) for real and capture its output."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", f"gmn_plugins.cli.{module}", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def shard_bytes(root: Path) -> dict[str, bytes]:
    """Every shard of a dataset directory by relative path, as bytes (for byte-identity checks)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.glob("*/shard-*.npz"))}


# the tiny trained run of the evaluation and API tests (tests/test_evaluation.py documents what it learns)
TINY = ["data.train_scenes=8", "data.test_scenes=0", "data.val_scenes=4", "data.views=8", "data.shard_size=4", "data.workers=1",
        "train.batch_scenes=4", "train.max_targets=4", "train.beta_anneal_steps=10", "train.lr=0.003",
        'model.preset="tiny"', "model.sigma=0.1", "train.steps=400",
        "train.prior_nll_weight=0.0"]  # the ELBO alone, as before the quickstart's hybrid term ran from step 0  # fmt: skip


@pytest.fixture(scope="session")
def tiny_run_dir(tmp_path_factory) -> Path:
    """A run of the quickstart spec trained with ``TINY`` (about a minute on a CPU), once per session: the run
    directory (``ROOT/run``; its dataset in ``ROOT/data``)."""
    import json

    from gmn_plugins.core.plugins import load_registry
    from gmn_plugins.core.spec import load_spec
    from gmn_plugins.training.trainer import train

    root = tmp_path_factory.mktemp("eval")
    spec = load_spec(REPO / "specs" / "quickstart.toml",
                     [*TINY, f"data.dir={json.dumps(str(root / 'data'))}", f"train.out={json.dumps(str(root / 'run'))}"])  # fmt: skip
    train(spec, "tiny", load_registry(), progress=False)
    return root / "run"


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
