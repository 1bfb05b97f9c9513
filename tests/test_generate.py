"""MESE generation on real MuJoCo at tiny sizes: determinism across workers, seeds, object size, resumption."""

import json

import numpy as np
import pytest

from conftest import run_cli, shard_bytes
from gmn_plugins.data.format import DataError, load_split, read_shard
from gmn_plugins.mese.generate import DatasetConfig, generate

TINY = dict(blocks=5, views=4, physics="fast", shard_size=2, splits={"train": 4, "val": 1})


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory):
    root = tmp_path_factory.mktemp("w1")
    generate(root, DatasetConfig(seed=3, **TINY), workers=1, progress=False)
    return root


def test_same_seed_same_bytes_for_1_and_2_workers(one_worker, tmp_path):
    generate(tmp_path, DatasetConfig(seed=3, **TINY), workers=2, progress=False)
    a, b = shard_bytes(one_worker), shard_bytes(tmp_path)
    assert list(a) == ["train/shard-00000.npz", "train/shard-00001.npz", "val/shard-00000.npz"]
    assert a == b
    assert (one_worker / "manifest.json").read_text() == (tmp_path / "manifest.json").read_text()


def test_different_seed_different_bytes(one_worker, tmp_path):
    generate(tmp_path, DatasetConfig(seed=4, **TINY), workers=1, progress=False)
    a, b = shard_bytes(one_worker), shard_bytes(tmp_path)
    assert all(a[k] != b[k] for k in a)


def test_scene_contents_and_manifest(one_worker):
    manifest = json.loads((one_worker / "manifest.json").read_text())
    assert manifest["seed"] == 3 and manifest["generator_version"] >= 1
    assert manifest["splits"]["train"]["scenes"] == 4
    assert manifest["shapes"]["camera.rgb"] == [4, 3, 64, 64]
    assert manifest["shapes"]["hand.haptic"] == [4, 132]
    assert len(manifest["stats"]["hand.haptic"]["min"]) == 132
    train = load_split(one_worker, "train")
    assert train["camera.rgb"].dtype == np.uint8 and train["camera.rgb"].shape == (4, 4, 3, 64, 64)
    assert train["query.camera"].shape == (4, 4, 5) and train["query.wrist"].shape == (4, 4, 5)
    assert np.all(train["hand.haptic"] <= 150.0)
    assert np.allclose(np.linalg.norm(train["query.camera"][..., :3], axis=-1), 1.0, atol=1e-5)
    assert np.all((0 <= train["label"]) & (train["label"] < 726))
    # the object covers 200-1000 of the 4096 pixels of every view (the reference measured about 400-580)
    covered = (train["camera.rgb"].max(axis=2) > 10).sum(axis=(-1, -2))
    assert covered.min() >= 200 and covered.max() <= 1000, covered


def test_resume_after_losing_a_shard_gives_the_same_bytes(one_worker, tmp_path):
    config = DatasetConfig(seed=3, **TINY)
    generate(tmp_path, config, workers=1, progress=False)
    (tmp_path / "manifest.json").unlink()  # as if killed before the end
    (tmp_path / "train" / "shard-00001.npz").unlink()
    generate(tmp_path, config, workers=1, progress=False)
    assert shard_bytes(tmp_path) == shard_bytes(one_worker)
    assert set(read_shard(tmp_path / "train" / "shard-00001.npz")) >= {"camera.rgb", "hand.haptic"}


def test_other_settings_in_the_same_directory_are_refused(one_worker):
    with pytest.raises(DataError, match="seed: dataset was made with 3"):
        generate(one_worker, DatasetConfig(seed=5, **TINY), workers=1, progress=False)


def test_corrupted_shard_is_named(one_worker, tmp_path):
    generate(tmp_path, DatasetConfig(seed=3, **TINY), workers=1, progress=False)
    shard = tmp_path / "train" / "shard-00000.npz"
    shard.write_bytes(shard.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(DataError, match="shard-00000.npz: missing or corrupted"):
        load_split(tmp_path, "train")


def test_cli_generate_reports_rate(tmp_path):
    result = run_cli("data", "generate", "--out", str(tmp_path / "d"), "--scenes", "1", "--views", "2",
                     "--workers", "1", "--no-progress")  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["scenes"] == 1 and report["scenes_per_second"] > 0
    result = run_cli("data", "generate", "--out", str(tmp_path / "d"), "--scenes", "1", "--views", "3")
    assert result.returncode == 2 and "views: dataset was made with 2" in result.stderr


def test_atomic_files_get_the_permissions_of_a_normal_open(tmp_path):
    """mkstemp makes 0600 temp files; a dataset or checkpoint must be readable like any file the user writes."""
    import os

    from gmn_plugins.runtime.files import write_json

    mask = os.umask(0o022)
    try:
        write_json(tmp_path / "m.json", {"a": 1})
        assert (tmp_path / "m.json").stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(mask)
