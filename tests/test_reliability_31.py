"""Issue 31, points 1-13: nothing lost, nothing silent. In-process (the CLIs' ``main`` functions, monkeypatched
faults); the one real full disk (SIGBUS before the fix) runs in a subprocess, so that a regression cannot kill the
test runner."""

import errno
import json
import os
import shutil
import threading

import attrs
import numpy as np
import pytest

from conftest import REPO, run_cli
from gmn_plugins.cli import data as gmn_data
from gmn_plugins.cli import run as gmn_run
from gmn_plugins.data import format as fmt
from gmn_plugins.experiment import dataset_config
from gmn_plugins.faults import MachineError
from gmn_plugins.files import DataError, write_json
from gmn_plugins.mese import generate as gen
from gmn_plugins.plugins import load_registry
from gmn_plugins.spec import load_spec

SPEC = str(REPO / "specs" / "quickstart.toml")
TINY = ["data.train_scenes=4", "data.val_scenes=2", "data.views=4", "data.shard_size=2", "data.workers=1",
        "train.batch_scenes=2", "train.max_targets=3", "model.sigma=0.3", 'model.preset="tiny"']  # fmt: skip


def cli(capsys, main, *argv: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of a CLI's ``main`` called in this process."""
    capsys.readouterr()
    try:
        main([str(a) for a in argv])
        code = 0
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def one_line(result, code: int, *fragments: str) -> str:
    got, out, err = result
    assert got == code, (got, out, err)
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def registry():
    return load_registry()


@pytest.fixture(scope="module")
def config(registry):
    """The dataset settings of the quickstart spec with TINY's overrides (seed 0)."""
    spec = load_spec(SPEC, TINY)
    return dataset_config(spec, registry.resolve(spec.modalities, SPEC))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, config, registry):
    root = tmp_path_factory.mktemp("ds31") / "d"
    gen.generate(root, config, workers=1, progress=False, registry=registry)
    return root


def copy(dataset, tmp_path):
    shutil.copytree(dataset, tmp_path / "d")
    return tmp_path / "d"


# --------------------------------------------------------------------- 8. stray bytes in metrics.jsonl


def test_stray_bytes_in_metrics_jsonl_never_block_a_resume(tmp_path):
    from gmn_plugins.train import _truncate_metrics

    path = tmp_path / "metrics.jsonl"
    rows = [json.dumps({"step": s, "loss": 1.0 / s}).encode() for s in (1, 2, 3)]
    path.write_bytes(b"\n".join(rows[:2]) + b"\n\xff\xfe\x00binary\x85\n" + rows[2] + b"\n{\"step\": \xc3" + b"[1]\n")
    _truncate_metrics(path, keep_until=2)
    assert path.read_bytes() == rows[0] + b"\n" + rows[1] + b"\n"
    path.write_bytes(rows[0] + b"\n\x00\x00\x00")  # a tail of NULs (a power loss on some file systems)
    _truncate_metrics(path, keep_until=5)
    assert path.read_bytes() == rows[0] + b"\n"
