"""The external plugin package modalities/gmn-trajectory, installed with pip (CI does so, non-editable): a new model
family ``sequence`` ((T, D), Conv1d) and the hand's joint trajectory over each grasp, recorded through the hand's
per-physics-step hook."""

import importlib.util
import json

import numpy as np
import pytest

from conftest import REPO, run_cli
from gmn_plugins.data.format import load_split
from gmn_plugins.core.plugins import load_registry

pytestmark = pytest.mark.skipif(importlib.util.find_spec("gmn_trajectory") is None,
                                reason="gmn-trajectory is not installed: pip install ./modalities/gmn-trajectory")  # fmt: skip


def test_the_sequence_family_comes_from_the_plugin_and_passes_its_check():
    registry = load_registry()
    trajectory = registry.modalities["trajectory"]
    assert trajectory.family.name == "sequence" and trajectory.shape == (25, 22)
    assert registry.providers["family:sequence"].distribution == "gmn-trajectory"
    rows = {r["name"]: r for r in json.loads(run_cli("plugins", "families", "--json").stdout)}
    assert rows["sequence"]["encoder"] == "gmn_trajectory.nets:SequenceEncoder" and rows["sequence"]["dims"] == 2
    assert rows["vector"]["options"] == "vector_projection=dense|light"
    assert rows["image"]["options"] == "chroma_weight=1.0 (likelihood)"
    done = run_cli("plugins", "check", "trajectory")
    assert done.returncode == 0, done.stderr
    assert "gradients: reach z and every encoder and renderer parameter" in done.stdout


def test_a_trajectory_run_records_the_grasp_and_trains(tmp_path):
    data, out = tmp_path / "data", tmp_path / "run"
    overrides = ['modalities=["haptic", "trajectory"]', f"data.dir={json.dumps(str(data))}", "data.train_scenes=4", "data.test_scenes=0",
                 "data.val_scenes=2", "data.views=3", "data.shard_size=4", "data.workers=1", "train.batch_scenes=2",
                 "train.max_targets=2", "train.steps=3", "train.eval_every=3", "train.eval_scenes=2",
                 "train.log_every=1", f"train.out={json.dumps(str(out))}"]  # fmt: skip
    done = run_cli("run", str(REPO / "specs" / "quickstart.toml"), *overrides, "--no-progress")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3] and all(np.isfinite(r["loss"]) for r in rows)
    scenes = load_split(data, "train")
    trajectory, haptic = scenes["hand.trajectory"], scenes["hand.haptic"]
    assert trajectory.shape == (4, 3, 25, 22) and trajectory.dtype == np.float32
    # the last step of the trajectory is (one physics substep after) the state the haptic sensor read: MuJoCo
    # computes sensordata before the step's integration; its 22 jointpos values are indices 0..21
    np.testing.assert_allclose(trajectory[:, :, -1], haptic[:, :, :22], atol=5e-3)
    # the hand closes: the fingers move over the grasp
    assert np.abs(trajectory[:, :, -1] - trajectory[:, :, 0]).max() > 0.1
    # adding the trajectory changes nothing else: the haptic recordings equal those of a haptic-only dataset
    from gmn_plugins.mese.generate import DatasetConfig, generate

    alone = tmp_path / "alone"
    generate(alone, DatasetConfig(seed=0, blocks=5, views=3, physics="fast", hand="builtin", saturation="code",
                                  shard_size=4, sensors=("hand.haptic",), splits={"train": 4}), progress=False)  # fmt: skip
    np.testing.assert_array_equal(load_split(alone, "train")["hand.haptic"], haptic)


def test_the_step_hook_sees_every_env_step_of_the_grasp():
    """The hand calls each hook after every one of the 25 env steps, rejected grasps included, and the trajectory's
    rows are the joint angles at those steps (the last one: the hand's final state)."""
    from gmn_trajectory import JOINTS, TRAJECTORY

    from gmn_plugins.mese.hand import Hand
    from gmn_plugins.mese.shapes import block_centres

    seen = []
    with Hand(5, physics="fast") as hand:
        hand.set_object(block_centres(np.array([0, 2, 4, 0])), np.ones((5, 3)))
        hand.step_hooks += [TRAJECTORY.step, lambda h, k: seen.append(k)]
        hand.grasp(np.array([0.0, 0.0, 0.12, 0.0, 0.0]))
        rows = TRAJECTORY.record(hand)
        final = np.array([hand.data.qpos[hand.model.joint(j).qposadr[0]] for j in JOINTS], np.float32)
    assert seen == list(range(25)) and rows.shape == (25, 22)
    np.testing.assert_array_equal(rows[-1], final)
