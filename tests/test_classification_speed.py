"""The fast classification score matrix (issue 11, part 4) against the straightforward one it replaced, on a real
(randomly initialised) quickstart model and real MESE scenes: the same numbers under the same seed, whatever the
chunking, the context mask or the transposed-convolution layout; and ``classify``'s per-object ``correct``."""

import numpy as np
import pytest
import torch
import torch.nn as nn

from conftest import REPO
from gmn_plugins.data.episodes import SceneSet
from gmn_plugins.evaluation.classification import classify, score_matrix, score_matrix_reference
from gmn_plugins.training.experiment import build_model
from gmn_plugins.mese.generate import DatasetConfig, generate
from gmn_plugins.core.plugins import load_registry
from gmn_plugins.core.spec import load_spec

TOLERANCE = 1e-5  # nats per dimension; measured: at most 7.2e-7, and 0 in most matrices


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """The quickstart GMN (rgb + haptic, small preset; random weights, seed 0) and 4 scenes of 6 views."""
    root = tmp_path_factory.mktemp("classification")
    manifest = generate(root, DatasetConfig(seed=0, views=6, physics="fast", shard_size=4, splits={"train": 4}),
                        progress=False)  # fmt: skip
    registry = load_registry()
    spec = load_spec(REPO / "specs" / "quickstart.toml", ['model.preset="small"'])
    modalities = registry.resolve(spec.modalities, "quickstart.toml")
    torch.manual_seed(0)
    model = build_model(spec, modalities).eval()
    return model, SceneSet(root, "train", modalities, manifest["stats"])


@pytest.mark.parametrize("mask, c, batch, channels_last", [
    ([0, 1], 1, 4, None),   # H + I, 9 pairs in chunks of 4, 4, 1
    ([0], 1, 25, False),    # I alone, one chunk, the default transposed-convolution layout
    ([1], 0, 2, True),      # H alone, no context views at all
])  # fmt: skip
def test_fast_score_matrix_equals_the_reference_under_the_same_seed(setup, mask, c, batch, channels_last):
    model, scenes = setup
    group = np.array([3, 0, 2])  # not 0..K-1: scene ids and slots differ
    torch.manual_seed(7)
    reference = score_matrix_reference(model, scenes, group, mask, c, samples=2, batch=batch)
    torch.manual_seed(7)
    fast = score_matrix(model, scenes, group, mask, c, samples=2, batch=batch, channels_last=channels_last)
    assert fast.shape == reference.shape == (3, 3) and fast.dtype == reference.dtype
    np.testing.assert_allclose(fast, reference, rtol=0, atol=TOLERANCE)
    assert np.isfinite(fast).all() and len(np.unique(fast)) > 1
    assert all(not m._forward_pre_hooks for m in model.modules() if isinstance(m, nn.ConvTranspose2d))
    with pytest.raises(ValueError, match="context size"):
        score_matrix(model, scenes, group, mask, 2, samples=1)  # 6 views: c <= 1 leaves the last 5


def test_correct_lists_each_objects_top1_hit_and_averages_to_top1(setup):
    model, scenes = setup
    records = classify(model, scenes, k=2, groups=2, contexts=[1], masks=[[0, 1]], samples=1, orientation="both")
    assert [r["orientation"] for r in records] == ["paper", "code"]
    for record in records:
        assert len(record["correct"]) == record["groups"] * record["k"] == 4
        assert set(record["correct"]) <= {0, 1} and all(type(h) is int for h in record["correct"])
        assert np.mean(record["correct"]) == pytest.approx(record["top1"])
        assert {"mask", "c", "top1", "top5", "groups", "k"} <= set(record)
