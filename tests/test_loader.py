"""Training batches in DataLoader workers (issue 14): batch k is a pure function of (seed, k), so any number of
loader workers gives the same batches, and a run with workers trains exactly as one without. Real MuJoCo data."""

import json

import pytest
import torch

from conftest import REPO, run_cli
from gmn_plugins.data.episodes import SceneSet
from gmn_plugins.data.loader import TrainingBatches, training_batches
from gmn_plugins.mese.generate import DatasetConfig, generate
from gmn_plugins.core.plugins import load_registry


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    manifest = generate(root, DatasetConfig(seed=2, views=4, shard_size=3, splits={"train": 5}), workers=1,
                        progress=False)  # fmt: skip
    modalities = load_registry().resolve(["rgb", "haptic"], "test")
    return SceneSet(root, "train", modalities, manifest["stats"])


def _flat(batch) -> list[torch.Tensor]:
    context, target, episodes, (total, slots) = batch
    return [torch.tensor([episodes, total]), slots] + [t for p in context + target for t in (p.senses, p.queries, p.scene)]


@pytest.mark.parametrize("missing", [[], [1, 1]])
def test_workers_make_the_same_batches_as_the_training_thread(scenes, missing):
    batches = TrainingBatches(scenes, seed=7, batch_scenes=3, max_targets=2, missing_sizes=missing,
                              missing_mode="paper", add_opposite=True)  # fmt: skip
    here = [_flat(b) for b in training_batches(batches, 3, 8, workers=0)]
    there = [_flat(b) for b in training_batches(batches, 3, 8, workers=2)]
    assert len(here) == len(there) == 5
    for a, b in zip(here, there):
        assert len(a) == len(b) and all(x.dtype == y.dtype and torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(here[0], here[1]) if x.shape == y.shape), "steps differ"
    again = [_flat(b) for b in training_batches(batches, 5, 6, workers=0)]  # a resumed run: step 5 as before
    assert all(torch.equal(x, y) for x, y in zip(again[0], here[2]))


def test_a_run_with_loader_workers_trains_exactly_as_one_without(tmp_path):
    losses = {}
    for workers in (0, 2):
        out = tmp_path / f"run{workers}"
        overrides = [f"data.dir={json.dumps(str(tmp_path / 'data'))}", "data.train_scenes=6", "data.test_scenes=0", "data.val_scenes=0",
                     "data.views=4", "data.shard_size=3", "data.workers=1", f"data.loader_workers={workers}",
                     "train.batch_scenes=3", "train.max_targets=2", "train.steps=4", "train.log_every=1",
                     "train.checkpoint_every=2", "train.threads=1", 'model.preset="tiny"', f"train.out={json.dumps(str(out))}"]  # fmt: skip
        done = run_cli("run", str(REPO / "specs" / "quickstart.toml"), *overrides, "--no-progress")
        assert done.returncode == 0, done.stderr
        losses[workers] = [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(losses[0]) == 4 and losses[0] == losses[2]


def test_opposite_episodes_built_in_one_gather_equal_add_opposite(scenes):
    import numpy as np

    from gmn_plugins.data.episodes import add_opposite

    ids = np.array([4, 0, 2])
    direct = scenes.episodes(ids, np.random.default_rng(3), 2, opposite=True)
    appended = add_opposite(*scenes.episodes(ids, np.random.default_rng(3), 2), len(ids))
    for a, b in zip(direct[0] + direct[1], appended[0] + appended[1]):
        assert torch.equal(a.senses, b.senses) and torch.equal(a.queries, b.queries) and torch.equal(a.scene, b.scene)
    assert direct[1][0].senses is direct[0][0].senses
