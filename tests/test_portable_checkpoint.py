"""A checkpoint copied alone (no dataset beside it) is evaluated: its val/test splits, never train, are made again
from the settings it carries, normalised with its stored training statistics and compared shard by shard with its
stored sha256 (a difference is reported, not refused)."""

import os
import shutil

import numpy as np
import pytest

from conftest import REPO, shard_bytes
from gmn_plugins.training.checkpoint import load_checkpoint, save_checkpoint
from gmn_plugins.training.validation import missing_modality
from gmn_plugins.evaluation.runs import load_run
from gmn_plugins.runtime.files import DataError, file_sha256, read_json
from gmn_plugins.core.plugins import load_registry
from gmn_plugins.core.spec import load_spec
from gmn_plugins.training.trainer import train

# relative data.dir and train.out, as a spec usually has them: the run is trained in `trained/`
TINY = ["data.train_scenes=8", "data.val_scenes=2", "data.test_scenes=2", "data.views=6", "data.shard_size=4",
        "data.workers=1", "data.dir=\"data/tiny\"", "train.out=\"run\"", "train.steps=2", "train.batch_scenes=4",
        "train.max_targets=4", "train.threads=1", "model.sigma=0.3", 'model.preset="tiny"']  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(directory trained in, the original run's val-split ELBOs and val senses, the dataset's manifest); the dataset
    is then moved away, so only copies of the checkpoint remain usable."""
    root = tmp_path_factory.mktemp("portable")
    (root / "trained").mkdir()
    cwd = os.getcwd()
    os.chdir(root / "trained")
    try:
        registry = load_registry()
        train(load_spec(REPO / "specs" / "quickstart.toml", TINY), "tiny", registry, progress=False)
        original = load_run("run", registry)
        assert original.regenerated is None
        val = original.scenes("val")
        senses = {m.name: val.senses(m, *np.divmod(np.arange(val.num_scenes * val.views), val.views))
                  for m in val.modalities}  # fmt: skip
        elbo = missing_modality(original.model, val, original.spec.train.missing_sizes, num_scenes=2, max_targets=2,
                                seed=3)  # fmt: skip
    finally:
        os.chdir(cwd)
    data = root / "trained" / "data" / "tiny"
    manifest = read_json(data / "manifest.json")
    shards = shard_bytes(data)
    shutil.move(data, root / "moved-away")
    return {"root": root, "elbo": elbo, "senses": senses, "manifest": manifest, "shards": shards}


def copy_checkpoint(trained, name, edit=None):
    """``ROOT/NAME/checkpoint.pt``: the run's checkpoint alone, its payload changed by ``edit`` (then re-saved)."""
    where = trained["root"] / name
    where.mkdir()
    if edit is None:
        shutil.copy(trained["root"] / "trained" / "run" / "checkpoint.pt", where)
    else:
        payload = load_checkpoint(trained["root"] / "trained" / "run" / "checkpoint.pt")
        edit(payload)
        save_checkpoint(where / "checkpoint.pt", {k: v for k, v in payload.items() if k not in ("format", "sha256")})
    return where


def test_the_checkpoint_carries_the_statistics_and_val_test_checksums(trained):
    data = load_checkpoint(trained["root"] / "trained" / "run" / "checkpoint.pt")["data"]
    manifest = trained["manifest"]
    assert data["stats"] == manifest["stats"] and data["stats"]
    assert set(data["shards"]) == {"val", "test"}  # train's shards are not needed: it is never remade
    for split in ("val", "test"):
        want = [e["sha256"] for e in manifest["splits"][split]["shards"]]
        assert [e["sha256"] for e in data["shards"][split]] == want
        assert [e["file"] for e in data["shards"][split]] == [f"{split}/shard-00000.npz"]


def test_a_checkpoint_copied_alone_is_evaluated_on_regenerated_val_and_test(trained, monkeypatch, capsys):
    copy = copy_checkpoint(trained, "copy")
    elsewhere = trained["root"] / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # neither the trained-in directory nor the run's
    run = load_run(copy, load_registry())
    assert run.regenerated == {"dir": str(copy / "data"), "splits": {"val": 2, "test": 2}, "shards_total": 2,
                               "shards_differ": []}  # fmt: skip
    assert "warning" not in capsys.readouterr().err
    # only val and test were made, byte-identical to the original dataset's (same machine)
    made = shard_bytes(copy / "data")
    assert sorted(made) == ["test/shard-00000.npz", "val/shard-00000.npz"]
    assert not (copy / "data" / "train").exists()
    assert all(made[f] == trained["shards"][f] for f in made)
    # normalised with the stored training statistics: the same senses, the same numbers
    assert run.manifest["stats"] == trained["manifest"]["stats"]
    val = run.scenes("val")
    for m in val.modalities:
        got = val.senses(m, *np.divmod(np.arange(val.num_scenes * val.views), val.views))
        np.testing.assert_array_equal(got, trained["senses"][m.name])
    assert missing_modality(run.model, val, run.spec.train.missing_sizes, num_scenes=2, max_targets=2,
                            seed=3) == trained["elbo"]  # fmt: skip
    assert run.scenes("test").num_scenes == 2
    with pytest.raises(DataError, match=r"^data/tiny: no finished dataset there, .* not train; ") as err:
        run.scenes("train")
    assert "\n" not in str(err.value)
    # held-out classification sets go beside the regenerated splits, as they go beside the run's data otherwise
    assert run.heldout_scenes(4, 2).num_scenes == 2 and (copy / "data-heldout4x2" / "manifest.json").is_file()
    assert not (elsewhere / "data").exists()
    # a second load finds the regenerated splits and checks them again (nothing is remade)
    again = load_run(copy, load_registry())
    assert again.regenerated["shards_differ"] == [] and shard_bytes(copy / "data") == made


def test_a_differing_shard_is_reported_not_refused(trained, monkeypatch, capsys):
    def tamper(payload):
        payload["data"]["shards"]["val"][0]["sha256"] = "0" * 64

    copy = copy_checkpoint(trained, "tampered", tamper)
    monkeypatch.chdir(trained["root"])
    run = load_run(copy, load_registry(), data_dir=trained["root"] / "elsewhere-data")
    assert run.regenerated["dir"] == str(trained["root"] / "elsewhere-data")
    assert run.regenerated["shards_differ"] == ["val/shard-00000.npz"] and run.regenerated["shards_total"] == 2
    warning = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warning) == 1 and "1 of 2 regenerated val/test shards differ" in warning[0], warning
    assert file_sha256(trained["root"] / "elsewhere-data" / "val" / "shard-00000.npz") == \
        trained["manifest"]["splits"]["val"]["shards"][0]["sha256"]  # fmt: skip
    assert run.scenes("val").num_scenes == 2


def test_an_older_checkpoint_without_its_data_statistics_keeps_the_one_line_error(trained, monkeypatch):
    def strip(payload):
        payload["data"] = {k: payload["data"][k] for k in ("manifest_sha256", "config")}

    copy = copy_checkpoint(trained, "old", strip)
    monkeypatch.chdir(trained["root"])
    with pytest.raises(DataError, match=r"^data/tiny: no finished dataset there \(the run's data.dir") as err:
        load_run(copy, load_registry())
    assert "\n" not in str(err.value) and not (copy / "data").exists()
