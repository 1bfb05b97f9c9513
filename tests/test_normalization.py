"""Model-input normalisation of the haptic sensor with real data: the min-max range of mese_environment_reference.md
§3.5, floored per dimension by the hand's physical ranges and clipped to ±INPUT_CLIP (issue 10)."""

import attrs
import numpy as np
import pytest
from conftest import MPL_XML

from gmn_plugins.mese.generate import DatasetConfig, generate
from gmn_plugins.mese.grasp import wrist_pose
from gmn_plugins.mese.hand import ACTUATOR_KP, ACTUATORS, BODIES, SENSOR_LAYOUT, Hand, haptic_physical_range
from gmn_plugins.mese.sensors import HAND_HAPTIC
from gmn_plugins.data.format import read_shard
from gmn_plugins.mese.shapes import block_centres
from gmn_plugins.core.modality import INPUT_CLIP, Sensor, minmax_range, normalize
from gmn_plugins.core.plugins import load_registry

PALM_SIDE = 115  # touch sensor 3 of 19: the built-in hand never fires it (mese_environment_reference.md §3.4)
# A real-MPL grasp that presses the palm's pinky-side edge against the object: about 120 N on palm_side in both
# physics presets, and every pose within ±0.01 rad of it fires palm_side too (measured), so it is no fluke.
PALM_SIDE_WALK = np.array([1, 5, 1, 5])
PALM_SIDE_WRIST = wrist_pose(pitch=0.315, yaw=1.005)


def old_formula(raw: np.ndarray, stats: dict) -> np.ndarray:
    """The normalisation before issue 10: reference §3.5 with only the 0.1 range floor, no clip."""
    lo = np.asarray(stats["hand.haptic"]["min"], np.float32)
    hi = np.asarray(stats["hand.haptic"]["max"], np.float32)
    return (raw.astype(np.float32) - lo) / (0.5 * np.maximum(0.1, hi - lo)) - 1.0


@pytest.fixture(scope="module")
def builtin(tmp_path_factory):
    """A small built-in-hand dataset (300 train + 60 val grasps, ~7 s): its manifest statistics and its train and
    val haptics, (N, 132) float32. Smaller statistics are narrower, so the floor would bind on more dimensions."""
    root = tmp_path_factory.mktemp("builtin")
    config = DatasetConfig(seed=0, blocks=5, views=15, physics="fast", shard_size=10, sensors=("hand.haptic",),
                           splits={"train": 20, "val": 4})  # fmt: skip
    manifest = generate(root, config, workers=1, progress=False)
    haptics = {split: np.concatenate([read_shard(p)["hand.haptic"] for p in sorted((root / split).glob("*.npz"))])
               for split in ("train", "val")}  # fmt: skip
    return manifest["stats"], {k: v.reshape(-1, 132) for k, v in haptics.items()}


@pytest.fixture(scope="module")
def mpl_palm_side_grasp():
    if not MPL_XML.exists():
        pytest.skip(f"real MPL hand not available at {MPL_XML} (shared assets are not part of the repo)")
    with Hand(n_blocks=5, physics="fast", mjcf=MPL_XML) as hand:
        hand.set_object(block_centres(PALM_SIDE_WALK))
        return hand.grasp(PALM_SIDE_WRIST).astype(np.float32)


def test_physical_ranges_follow_the_hand_tables():
    ranges = np.array(haptic_physical_range())
    assert ranges.shape == (132, 2) and np.all(ranges[:, 0] < ranges[:, 1])
    assert sum(n for _, n in SENSOR_LAYOUT) == 132
    limits = {joint: r for _, _, _, _, joint, _, r in BODIES if joint}
    np.testing.assert_array_equal(ranges[:22], list(limits.values()))  # jointpos: joint limits, rad
    np.testing.assert_array_equal(ranges[44:57], [limits[j] for j, _ in ACTUATORS])  # actuatorpos: its joint's limits
    np.testing.assert_allclose(ranges[70:83], [(ACTUATOR_KP * lo, ACTUATOR_KP * hi) for _, (lo, hi) in ACTUATORS])
    np.testing.assert_array_equal(ranges[113:], [(0.0, 150.0)] * 19)  # touch, N
    assert load_registry().sensor("hand.haptic").physical_range == haptic_physical_range() == HAND_HAPTIC.physical_range
    hash(HAND_HAPTIC)  # still a frozen, hashable record
    with pytest.raises(ValueError, match="132"):
        attrs.evolve(HAND_HAPTIC, physical_range=haptic_physical_range()[:-1])
    with pytest.raises(ValueError, match="lo < hi"):
        attrs.evolve(HAND_HAPTIC, physical_range=[(1.0, 0.0)] * 132)


def test_real_mpl_palm_touch_maps_into_range_with_builtin_statistics(builtin, mpl_palm_side_grasp):
    stats, _ = builtin
    raw = mpl_palm_side_grasp
    assert stats["hand.haptic"]["max"][PALM_SIDE] == 0  # never fired by the built-in hand: min = max = 0 N
    assert 50 < raw[PALM_SIDE] <= 150  # the MPL presses ~120 N on it, an accepted grasp
    before = old_formula(raw, stats)
    assert before[PALM_SIDE] > 1000  # 0.1-floored range: ~120 N / 0.05 - 1 ≈ 2400

    x = normalize(raw, HAND_HAPTIC, stats)
    assert x.dtype == np.float32 and np.all(np.abs(x) <= INPUT_CLIP)
    # the floor: touch range 0..150 N, so the value lands where a 120 N touch belongs, not at the clip
    assert x[PALM_SIDE] == pytest.approx(raw[PALM_SIDE] / 75.0 - 1.0, abs=1e-5)
    assert -1 <= x[PALM_SIDE] <= 1
    # with the floor off, the clip alone only caps it at the bound: the floor is what makes it sane
    unfloored = normalize(raw, attrs.evolve(HAND_HAPTIC, physical_range=None), stats)
    assert unfloored[PALM_SIDE] == INPUT_CLIP
    # the whole record is an ordinary input, though the statistics come from another hand
    assert np.mean(np.abs(x) <= 1.5) > 0.95


def test_builtin_data_stays_in_range_and_keeps_its_spread(builtin):
    stats, haptics = builtin
    train = normalize(haptics["train"], HAND_HAPTIC, stats)
    val = normalize(haptics["val"], HAND_HAPTIC, stats)
    assert train.min() >= -1 and train.max() <= 1  # the statistics lie inside the floored range
    assert np.mean(np.abs(val) <= 1) > 0.98
    old_train, old_val = old_formula(haptics["train"], stats), old_formula(haptics["val"], stats)
    # dimensions whose statistics are at least as wide as their physical range are normalised exactly as before
    lo, hi = np.asarray(stats["hand.haptic"]["min"]), np.asarray(stats["hand.haptic"]["max"])
    ranges = np.array(haptic_physical_range())
    wide = hi - lo >= ranges[:, 1] - ranges[:, 0]
    assert wide.sum() >= 10
    np.testing.assert_array_equal(val[:, wide], old_val[:, wide])
    # in-range data is not squashed: most varying dimensions keep most of their spread
    old_std, new_std = old_train.std(0), train.std(0)
    varying = old_std > 0.05
    ratio = new_std[varying] / old_std[varying]
    assert varying.sum() > 100 and np.median(ratio) > 0.5 and np.mean(ratio > 0.25) > 0.85


def test_minmax_range_widens_narrow_statistics_to_the_physical_interval(builtin):
    stats, _ = builtin
    lo, width = minmax_range(HAND_HAPTIC, stats)
    assert lo[PALM_SIDE] == 0 and width[PALM_SIDE] == 150  # touch 0..150 N
    assert lo[0] == pytest.approx(-1.57) and width[0] == pytest.approx(3.14)  # wrist_PRO, locked: its joint limits
    ranges = np.array(haptic_physical_range())
    stat_lo, stat_hi = np.asarray(stats["hand.haptic"]["min"]), np.asarray(stats["hand.haptic"]["max"])
    assert np.all(width >= np.minimum(ranges[:, 1] - ranges[:, 0], stat_hi - stat_lo) - 1e-5)
    assert np.all(lo <= stat_lo + 1e-5) and np.all(lo + width >= stat_hi - 1e-5)  # still contains the statistics


def test_absurd_values_are_clipped_and_none_is_left_alone(builtin):
    stats, _ = builtin
    absurd = np.array([[1e6] * 132, [-1e6] * 132], np.float32)
    for sensor in (HAND_HAPTIC, attrs.evolve(HAND_HAPTIC, physical_range=None)):
        np.testing.assert_array_equal(normalize(absurd, sensor, stats), [[INPUT_CLIP] * 132, [-INPUT_CLIP] * 132])
    raw = Sensor(name="raw", shape=(132,), dtype="float32", units="m", query="wrist", record=lambda hand: None)
    np.testing.assert_array_equal(normalize(absurd, raw, None), absurd)  # "none": the values as they are
