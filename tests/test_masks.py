"""Missing-modality masks (paper §4, Fig. 5; reference §6.5): the authors' size distribution, determinism, what a
hidden modality means in episodes ("paper": absent; "code": targets only), and the spec's checks."""

import json

import numpy as np
import pytest

from conftest import REPO
from gmn_plugins.data.episodes import SceneSet
from gmn_plugins.data.masks import fixed_mask, fixed_masks, full_mask, size_probabilities
from gmn_plugins.mese.generate import DatasetConfig, generate
from gmn_plugins.core.plugins import load_registry
from gmn_plugins.core.spec import SpecError, load_spec


def test_size_distribution_is_the_authors_table():
    # reference §6.5: m8 intrapol78 -> 7: .90, 8: .10; m5 extrapol12 -> .50 / .50; m8 extrapol14 -> .14/.24/.32/.30
    np.testing.assert_allclose(size_probabilities(8, 7, 8), [0.90, 0.10], atol=0.005)
    np.testing.assert_allclose(size_probabilities(5, 1, 2), [0.5, 0.5])
    np.testing.assert_allclose(size_probabilities(8, 1, 4), [0.14, 0.24, 0.32, 0.30], atol=0.01)
    masks = fixed_masks(3, "train", range(3000), 8, [1, 4])
    sizes = masks.sum(1)
    assert sizes.min() == 1 and sizes.max() == 4
    np.testing.assert_allclose(np.bincount(sizes, minlength=5)[1:] / 3000, size_probabilities(8, 1, 4), atol=0.03)
    np.testing.assert_allclose(masks.mean(0), 2.76 / 8, atol=0.04)  # every modality equally likely


def test_masks_are_pure_functions_of_seed_split_and_scene():
    a = fixed_mask(0, "train", 17, 14, 11, 14)
    assert (a == fixed_mask(0, "train", 17, 14, 11, 14)).all() and 11 <= a.sum() <= 14
    rows = fixed_masks(0, "train", [5, 17], 14, [11, 14])
    assert (rows[1] == a).all()
    assert any((fixed_mask(0, "val", s, 14, 11, 14) != fixed_mask(0, "train", s, 14, 11, 14)).any() for s in range(20))
    assert fixed_masks(0, "train", [1, 2], 14, []) is None
    full = np.stack([full_mask(np.random.default_rng(s), 4) for s in range(4000)])
    np.testing.assert_allclose(np.bincount(full.sum(1), minlength=5)[1:] / 4000, [0.25] * 4, atol=0.03)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("masks")
    manifest = generate(root, DatasetConfig(seed=0, views=6, physics="fast", shard_size=4, splits={"train": 4}),
                        progress=False)  # fmt: skip
    registry = load_registry()
    return SceneSet(root, "train", registry.resolve(["rgb", "haptic"]), manifest["stats"])


def test_a_hidden_modality_is_absent_in_paper_mode_and_targets_only_in_code_mode(scenes):
    ids = np.arange(4)
    masks = np.array([[True, False], [False, True], [True, True], [True, False]])
    context, target = scenes.episodes(ids, np.random.default_rng(0), max_targets=4, masks=masks, missing_mode="paper")
    for i, shown in enumerate(masks.T):
        assert set(context[i].scene.tolist() + target[i].scene.tolist()) <= set(np.flatnonzero(shown).tolist())
    context, target = scenes.episodes(ids, np.random.default_rng(0), max_targets=4, masks=masks, missing_mode="code")
    for i, shown in enumerate(masks.T):
        assert set(context[i].scene.tolist()) <= set(np.flatnonzero(shown).tolist())
        hidden_targets = np.bincount(target[i].scene.numpy(), minlength=4)[~shown]
        assert (hidden_targets == 4).all()  # every hidden modality: max_targets views, all as targets
    with pytest.raises(ValueError, match="missing_mode"):
        scenes.episodes(ids, np.random.default_rng(0), masks=masks, missing_mode="both")


def test_spec_checks_the_mask_sizes():
    spec_file = REPO / "specs" / "quickstart.toml"
    assert load_spec(spec_file, ["train.missing_sizes=[1, 1]"]).train.missing_sizes == [1, 1]
    for bad in ("[0, 1]", "[2, 3]", "[1]", "[2, 1]"):
        with pytest.raises(SpecError, match=r"train.missing_sizes: expected \[A, B\] with 1 <= A <= B <= 2"):
            load_spec(spec_file, [f"train.missing_sizes={bad}"])
    with pytest.raises(SpecError, match="train.missing_mode"):
        load_spec(spec_file, [f"train.missing_mode={json.dumps('sometimes')}"])


def test_training_with_missing_modalities_runs(tmp_path):
    """A tiny run whose scenes each show one of the two modalities (code mode: the other one is targets only)."""
    from gmn_plugins.training.trainer import train

    spec = load_spec(REPO / "specs" / "quickstart.toml", [
        "data.train_scenes=4", "data.test_scenes=0", "data.val_scenes=0", "data.views=6", "data.shard_size=4", "data.workers=1",
        "train.batch_scenes=4", "train.max_targets=3", "train.steps=3", "train.missing_sizes=[1, 1]",
        "train.missing_mode=code", f"data.dir={json.dumps(str(tmp_path / 'data'))}",
        f"train.out={json.dumps(str(tmp_path / 'run'))}"])  # fmt: skip
    summary = train(spec, "tiny", load_registry(), progress=False)
    assert summary["steps"] == 3 and np.isfinite(summary["final_loss"])
    masks = fixed_masks(spec.seed, "train", range(4), 2, [1, 1])
    assert (masks.sum(1) == 1).all()


# ---- the context-modality mask (train.context_mask = "code", issue 27; reference §5.3 items 1-3) ----

def test_context_mask_sizes_are_uniform_then_the_combination():
    from gmn_plugins.data.masks import context_masks

    rows = np.concatenate([context_masks(5, step, None, 8, 2) for step in range(500)])  # 4000 scenes at M = 2
    assert rows.any(1).all()
    single = rows.sum(1) == 1
    assert abs(single.mean() - 0.5) < 0.03  # n ~ U{1, 2}: half the scenes have single-modality context
    assert abs(rows[single, 0].mean() - 0.5) < 0.04  # ... either modality alike (1/4 of all scenes each)
    rows = np.concatenate([context_masks(5, step, None, 8, 4) for step in range(500)])
    np.testing.assert_allclose(np.bincount(rows.sum(1), minlength=5)[1:] / 4000, [0.25] * 4, atol=0.03)
    assert (context_masks(5, 3, None, 8, 4) == context_masks(5, 3, None, 8, 4)).all()  # a pure function of (seed, step)
    assert (context_masks(5, 3, None, 8, 4) != context_masks(5, 4, None, 8, 4)).any()
    shown = fixed_masks(0, "train", range(8), 4, [2, 3])  # with missing_sizes: a combination of what is shown
    for step in range(50):
        within = context_masks(5, step, shown, 8, 4)
        assert within.any(1).all() and not (within & ~shown).any()


def test_context_mask_keeps_other_modalities_as_targets_and_leaves_draws_alone(scenes):
    ids = np.arange(4)
    allowed = np.array([[True, False], [False, True], [True, True], [False, True]])
    plain = scenes.plan(ids, np.random.default_rng(1), max_targets=6)
    masked = scenes.plan(ids, np.random.default_rng(1), max_targets=6, context_masks=allowed)
    for b in range(4):
        for i in range(2):
            (_, c), (_, t) = masked[b][i]
            (_, c0), (_, t0) = plain[b][i]
            if allowed[b, i]:
                assert (c == c0).all() and (t == t0).all()  # the same draws as without the mask
            else:
                assert len(c) == 0 and sorted(t) == list(range(6))  # all the scene's views as targets


def test_context_mask_in_training_batches_and_the_spec(scenes):
    from gmn_plugins.data.loader import TrainingBatches

    def plans(mask):
        batches = TrainingBatches(scenes, seed=3, batch_scenes=4, max_targets=6, missing_sizes=[],
                                  missing_mode="paper", add_opposite=False, context_mask=mask)  # fmt: skip
        # per step: (M, B) context points per modality and scene
        return [np.stack([np.bincount(p.scene.numpy(), minlength=4) for p in batches[k][0]]) for k in range(40)]

    lone = {mask: sum(int((rows == 0).any(0).sum()) for rows in plans(mask)) for mask in ("none", "code")}
    assert lone["code"] > lone["none"] + 30, lone  # of 160 scenes: about 100 vs 45 (k = 0 of 6 views by chance)
    with pytest.raises(ValueError, match="context_mask"):
        TrainingBatches(scenes, 3, 4, 6, [], "paper", False, context_mask="always")
    assert load_spec(REPO / "specs" / "quickstart.toml", ['train.context_mask="code"']).train.context_mask == "code"
    with pytest.raises(SpecError, match="train.context_mask"):
        load_spec(REPO / "specs" / "quickstart.toml", ['train.context_mask="sometimes"'])
