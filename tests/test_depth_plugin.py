"""The external plugin package modalities/gmn-depth, installed with pip (CI does so, non-editable): a new sense."""

import importlib.util
import json

import numpy as np
import pytest

from conftest import REPO, run_cli
from gmn_plugins.data.format import load_split
from gmn_plugins.core.plugins import load_registry
from gmn_plugins.core.spec import load_spec
from gmn_plugins.training.trainer import train

pytestmark = pytest.mark.skipif(importlib.util.find_spec("gmn_depth") is None,
                                reason="gmn-depth is not installed: pip install ./modalities/gmn-depth")  # fmt: skip


def test_depth_comes_from_the_plugin_and_only_from_it():
    depth = load_registry().modalities["depth"]
    assert depth.distribution == "gmn-depth" and depth.source == "entry point"
    assert depth.sensor.name == "camera.depth" and depth.shape == (1, 64, 64)
    result = run_cli("run", str(REPO / "specs" / "quickstart.toml"), 'modalities=["rgb", "depth"]', "--dry-run",
                     env={"GMN_LOAD_PLUGINS": ""})  # fmt: skip
    assert result.returncode == 2 and "unknown modality 'depth'" in result.stderr


def test_tiny_rgb_depth_haptic_run(tmp_path):
    data, out = tmp_path / "data", tmp_path / "run"
    spec = load_spec(REPO / "specs" / "quickstart.toml", [
        'modalities=["rgb", "depth", "haptic"]', f"data.dir={json.dumps(str(data))}", "data.train_scenes=4", "data.test_scenes=0",
        "data.val_scenes=1", "data.views=4", "data.shard_size=4", "data.workers=1", "train.batch_scenes=2",
        "train.max_targets=2", "train.steps=3", f"train.out={json.dumps(str(out))}"])  # fmt: skip
    summary = train(spec, "tiny", load_registry(), progress=False)
    assert summary["steps"] == 3
    scenes = load_split(data, "train")
    depth = scenes["camera.depth"]
    assert depth.shape == (4, 4, 1, 64, 64) and depth.dtype == np.float32
    # the object sits about 1 m from the camera; the background reads the 2 m clip
    assert 0.85 < depth.min() < 1.0 and depth.max() == pytest.approx(2.0)
    from gmn_plugins.training.checkpoint import load_checkpoint

    saved = load_checkpoint(out / "checkpoint.pt")["modalities"]
    assert [(m["name"], m["distribution"]) for m in saved] == [
        ("rgb", "gmn-plugins"), ("depth", "gmn-depth"), ("haptic", "gmn-plugins")]
