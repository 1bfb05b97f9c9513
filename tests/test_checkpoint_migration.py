"""Checkpoints made before issue 12 (model families and query kinds as plugins) still load, evaluate to the numbers
they logged, and resume. The old code comes from the project's own git history (``git archive``), so no binary
fixture is committed; the test skips where the history is absent (a shallow clone)."""

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO

BEFORE = "d1ffff22f7fb7791180b0ea9a5c24943e110c35a"  # the last commit before issue 12's engine changes


@pytest.fixture(scope="module")
def old_code(tmp_path_factory):
    """gmn_plugins and the built-in modalities as they were at ``BEFORE``, importable from one directory."""
    root = tmp_path_factory.mktemp("old-code")
    archive = subprocess.run(["git", "-C", str(REPO), "archive", BEFORE, "gmn_plugins", "modalities", "specs"],
                             capture_output=True)  # fmt: skip
    if archive.returncode:
        pytest.skip(f"commit {BEFORE} is not in this checkout's history: {archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", str(root)], input=archive.stdout, check=True)
    (root / "modalities").rename(root / "gmn_modalities")
    return root


def test_a_checkpoint_from_before_issue_12_loads_evaluates_and_resumes(old_code, tmp_path):
    data, out = tmp_path / "data", tmp_path / "run"
    overrides = ['modalities=["rgb", "haptic"]', f"data.dir={json.dumps(str(data))}", "data.train_scenes=4",
                 "data.val_scenes=2", "data.views=4", "data.shard_size=4", "data.workers=1", "train.batch_scenes=2",
                 "train.max_targets=2", "train.eval_every=2", "train.eval_scenes=2", "train.checkpoint_every=2",
                 "train.threads=1", "train.log_every=1", f"train.out={json.dumps(str(out))}"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(old_code), "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"),
           "GMN_LOAD_PLUGINS": ""}  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "gmn_plugins.cli.run", str(old_code / "specs" / "quickstart.toml"),
                           *overrides, "train.steps=2", "--no-progress"], env=env, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    logged = json.loads((out / "val.jsonl").read_text().splitlines()[-1])

    from gmn_plugins.training.validation import missing_modality
    from gmn_plugins.evaluation.runs import load_run
    from gmn_plugins.core.plugins import load_registry

    run = load_run(out, load_registry())
    assert run.step == 2
    spec = run.spec
    again = missing_modality(run.model, run.scenes("val"), spec.train.missing_sizes, spec.train.missing_mode,
                             num_scenes=spec.train.eval_scenes, max_targets=spec.train.max_targets, seed=spec.seed)  # fmt: skip
    assert again["val_missing"] == pytest.approx(logged["val_missing"], abs=1e-6)

    from conftest import run_cli

    then = ['model.preset="small"', "train.lr=0.001", 'train.clip_mode="value"', "train.beta=1.0",  # the quickstart's
            'model.init="default"', 'model.aggregate="sum"', 'model.target_encoder="shared"',  # settings then
            'model.renderer_context="none"', "model.chroma_weight=1.0", "train.prior_nll_weight=0.0",
            "train.prior_nll_start=0"]  # fmt: skip
    resumed = run_cli("run", str(REPO / "specs" / "quickstart.toml"), *overrides, *then, "data.test_scenes=0", "train.steps=3",
                      "--no-progress", env={"GMN_LOAD_PLUGINS": ""})  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()][-1] == 3
