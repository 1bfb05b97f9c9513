"""The external plugin package modalities/gmn-probe, installed with pip (CI does so, non-editable): a new query kind
``point`` (x, y, z in metres) and the signed distance to the object recorded there."""

import importlib.util
import json

import numpy as np
import pytest

from conftest import REPO, run_cli
from gmn_plugins.data.format import load_split
from gmn_plugins.mese.shapes import BLOCK_HALF_SIZE, block_centres
from gmn_plugins.core.plugins import load_registry
from gmn_plugins.core.spec import load_spec
from gmn_plugins.training.trainer import train

pytestmark = pytest.mark.skipif(importlib.util.find_spec("gmn_probe") is None,
                                reason="gmn-probe is not installed: pip install ./modalities/gmn-probe")  # fmt: skip


def test_the_point_kind_and_the_probe_come_from_the_plugin():
    registry = load_registry()
    kind = registry.query_kinds["point"]
    assert (kind.dim, kind.encoded_dim) == (3, 3) and registry.providers["query:point"].distribution == "gmn-probe"
    probe = registry.modalities["probe"]
    assert probe.sensor.query == "point" and probe.shape == (1,) and probe.query_kind is kind
    done = run_cli("plugins", "queries", "--json")
    rows = {r["name"]: r for r in json.loads(done.stdout)}
    assert list(rows)[:2] == ["camera", "wrist"] and rows["point"]["distribution"] == "gmn-probe==0.1.0"
    assert (rows["point"]["dim"], rows["camera"]["encoded"], rows["camera"]["poseable"]) == (3, 7, True)


def test_a_probe_run_records_true_signed_distances_and_trains(tmp_path):
    data, out = tmp_path / "data", tmp_path / "run"
    spec = load_spec(REPO / "specs" / "quickstart.toml", [
        'modalities=["rgb", "probe"]', f"data.dir={json.dumps(str(data))}", "data.train_scenes=4", "data.test_scenes=0",
        "data.val_scenes=2", "data.views=7", "data.shard_size=4", "data.workers=1", "train.batch_scenes=2",
        "train.max_targets=3", "train.steps=3", "train.eval_every=3", "train.eval_scenes=2",
        f"train.out={json.dumps(str(out))}"])  # fmt: skip
    summary = train(spec, "probe", load_registry(), progress=False)
    assert summary["steps"] == 3 and np.isfinite(summary["final_loss"])
    scenes = load_split(data, "train")
    points, distance = scenes["query.point"], scenes["probe.occupancy"]
    assert points.shape == (4, 7, 3) and distance.shape == (4, 7, 1) and "query.camera" in scenes
    # the recorded value is the exact signed distance to the scene's blocks (negative inside), in metres
    for s in range(4):
        centres = block_centres(scenes["walk"][s].astype(np.int64))
        d = np.abs(points[s][:, None, :] - centres[None]) - BLOCK_HALF_SIZE
        sdf = (np.linalg.norm(np.maximum(d, 0), axis=2) + np.minimum(d.max(axis=2), 0)).min(1)
        np.testing.assert_allclose(distance[s, :, 0], sdf, atol=1e-6)
    # the camera's draws do not move when another kind joins: rgb scenes equal those of an rgb-only dataset
    from gmn_plugins.mese.generate import DatasetConfig, generate

    alone = tmp_path / "alone"
    generate(alone, DatasetConfig(seed=0, blocks=5, views=7, physics="fast", hand="builtin", saturation="code",
                                  shard_size=4, sensors=("camera.rgb",), splits={"train": 4}), progress=False)  # fmt: skip
    np.testing.assert_array_equal(load_split(alone, "train")["camera.rgb"], scenes["camera.rgb"])
    # the paper's cross-modal density works on the new kind: log p(probe | rgb), rgb -> probe
    done = run_cli("evaluate", "density", str(out), "--scenes", "2", "--samples", "2", "--counts", "0,1",
                   "--targets", "probe", "--no-progress")  # fmt: skip
    assert done.returncode == 0, done.stderr
    table = json.loads((out / "eval" / "density.json").read_text())
    assert {(r["target"], r["source"]) for r in table["records"]} >= {("probe", "rgb")}
    assert all(np.isfinite(np.asarray(r["grid"], float)).all() for r in table["records"])
