"""Runs and datasets that cannot be corrupted: run-directory locks, resume that checks the data, checksummed
checkpoints, the repair path, and one line for every fault (exit 2: the user's input; exit 1: the machine)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import REPO, remount_ro, run_cli, shard_bytes
from gmn_plugins.training.checkpoint import CheckpointError, load_checkpoint
from gmn_plugins.data.format import ChecksumCache

SPEC = str(REPO / "specs" / "quickstart.toml")
TINY = ["data.train_scenes=4", "data.test_scenes=0", "data.val_scenes=2", "data.views=4", "data.shard_size=2", "data.workers=1",
        "train.batch_scenes=2", "train.max_targets=3", "model.sigma=0.3", 'model.preset="tiny"', "--no-progress"]  # fmt: skip
CLI_TINY = ["--scenes", "4", "--val", "2", "--views", "3", "--shard-size", "2", "--seed", "3", "--workers", "1",
            "--no-progress"]  # fmt: skip


def one_line(result, code: int, *fragments: str) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "tiny"
    warmup = tmp_path_factory.mktemp("warmup")
    result = run_cli("run", SPEC, *TINY, f"data.dir={json.dumps(str(root))}", f"train.out={json.dumps(str(warmup))}",
                     "train.steps=1")  # fmt: skip
    assert result.returncode == 0, result.stderr
    return root


def gmn_run(data_dir, out, *more, **kw):
    return run_cli("run", SPEC, *TINY, f"data.dir={json.dumps(str(data_dir))}", f"train.out={json.dumps(str(out))}",
                   *more, **kw)  # fmt: skip


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory):
    """A run trained for 2 steps (checkpoint at step 2) on the tiny dataset."""
    out = tmp_path_factory.mktemp("trained") / "run"
    result = gmn_run(data_dir, out, "train.steps=2", "train.checkpoint_every=1")
    assert result.returncode == 0, result.stderr
    return out


# ------------------------------------------------------------------------------------------------------ locks


def test_a_second_run_on_the_same_directory_is_refused_and_a_killed_holder_never_blocks(data_dir, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "gmn_plugins.cli.run", SPEC, *TINY, f"data.dir={json.dumps(str(data_dir))}",
           f"train.out={json.dumps(str(out))}", "train.steps=100000", "train.checkpoint_every=100000"]  # fmt: skip
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / "metrics.jsonl").exists():  # training has started: the lock is held
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        second = gmn_run(data_dir, out, "train.steps=2")
        one_line(second, 2, f"{out / '.lock'}: run directory {out} is in use by host ", f" pid {first.pid};")
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    # the killed holder's lock file is still there, but nothing holds it
    assert (out / ".lock").exists()
    again = gmn_run(data_dir, out, "train.steps=2", "train.log_every=1")
    assert again.returncode == 0, again.stderr
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2]  # no rows of the killed run are mixed in


# ------------------------------------------------------------------------------------------------ checkpoints


def test_checkpoint_carries_a_checksum_and_the_data_identity(trained, data_dir):
    ckpt = load_checkpoint(trained / "checkpoint.pt")
    assert ckpt["format"] == 2 and len(ckpt["sha256"]) == 64
    assert ckpt["data"]["config"]["blocks"] == 5 and len(ckpt["data"]["manifest_sha256"]) == 64


def test_a_flipped_value_in_a_checkpoint_is_one_line(trained, data_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    name = next(iter(ckpt["model"]))
    flat = ckpt["model"][name].view(-1)
    flat.view(torch.int32)[0] ^= 1 << 20  # one bit of one weight; the file is otherwise a valid torch file
    torch.save(ckpt, run / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="corrupted: its contents differ from the sha256"):
        load_checkpoint(run / "checkpoint.pt")
    one_line(gmn_run(data_dir, run, "train.steps=3"), 2, "checkpoint.pt: corrupted")
    # a byte flipped anywhere in the file is refused too (by torch's reader or by the checksum)
    raw = bytearray((trained / "checkpoint.pt").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (run / "checkpoint.pt").write_bytes(bytes(raw))
    line = one_line(gmn_run(data_dir, run, "train.steps=3"), 2, "checkpoint.pt: ")
    assert "corrupted" in line or "not a readable gmn-plugins checkpoint" in line


def test_a_format_1_checkpoint_still_resumes(trained, data_dir, tmp_path):
    """Format 1 is what the code before checksums wrote: ``torch.save({"format": 1, **payload})``, no sha256, no
    data identity."""
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    old = {"format": 1, **{k: ckpt[k] for k in ("step", "model", "optimizer", "spec", "modalities")}}
    torch.save(old, run / "checkpoint.pt")
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 2
    result = gmn_run(data_dir, run, "train.steps=3")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["resumed_from"] == 2
    assert load_checkpoint(run / "checkpoint.pt")["format"] == 2


def test_resume_checks_the_data_not_its_directory(trained, data_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    # other data settings: refused before any data is made
    one_line(gmn_run(data_dir, run, "train.steps=3", "data.blocks=4", f"data.dir={json.dumps(str(tmp_path / 'd4'))}"),
             2, "checkpoint.pt: data.blocks: checkpoint has 5, spec has 4")  # fmt: skip
    assert not (tmp_path / "d4").exists()  # refused before making any data
    # the same dataset, moved: resumes
    moved = tmp_path / "moved"
    shutil.copytree(data_dir, moved)
    result = gmn_run(moved, run, "train.steps=3")
    assert result.returncode == 0, result.stderr
    # a dataset with the same settings but other contents: refused by the manifest's sha256
    other = tmp_path / "other"
    shutil.copytree(data_dir, other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["stats"]["hand.haptic"]["max"][0] += 1.0
    (other / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    one_line(gmn_run(other, run, "train.steps=4"), 2, "checkpoint.pt: data: the checkpoint was trained on another dataset")


def test_stale_checkpoint_temps_are_removed_at_start(trained, data_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    stale = [run / ".checkpoint.pt.k1ll3d.tmp", run / ".spec.json.x.tmp"]
    for path in stale:
        path.write_bytes(b"\0" * 1000)
    result = gmn_run(data_dir, run, "train.steps=2")  # nothing to train: starts, cleans, finishes
    assert result.returncode == 0, result.stderr
    assert not any(p.exists() for p in stale)


def test_a_non_finite_loss_is_one_line_naming_the_step(data_dir, tmp_path):
    line = one_line(gmn_run(data_dir, tmp_path / "run", "train.steps=3", "model.sigma=1e-200"), 2,
                    "train: the loss became ", " at step 1 (no checkpoint was written); likely cause:")  # fmt: skip
    assert "model.sigma = 1e-200" in line


# ------------------------------------------------------------------------------------------ datasets: repair


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds") / "d"
    result = run_cli("data", "generate", "--out", str(root), *CLI_TINY)
    assert result.returncode == 0, result.stderr
    return root


def test_generate_on_a_damaged_dataset_regenerates_exactly_the_damaged_shards(dataset, tmp_path):
    root = tmp_path / "d"
    shutil.copytree(dataset, root)
    before, manifest = shard_bytes(root), (root / "manifest.json").read_bytes()
    (root / "train" / "shard-00001.npz").unlink()
    shard = root / "val" / "shard-00000.npz"
    shard.write_bytes(shard.read_bytes()[:-4] + b"oops")
    intact = root / "train" / "shard-00000.npz"
    mtime = intact.stat().st_mtime_ns
    # verify gives one line per bad shard, each with a command that repairs
    checked = run_cli("data", "verify", str(root))
    assert checked.returncode == 2 and "Traceback" not in checked.stderr
    assert [line.split(": ")[1].split(";")[0] for line in checked.stderr.splitlines()] == ["missing", "corrupted (sha256 differs "
                                                                             "from the manifest)"]  # fmt: skip
    assert all(line.endswith(f"repair: gmn-data repair {root}") for line in checked.stderr.splitlines())
    result = run_cli("data", "generate", "--out", str(root), *CLI_TINY)
    assert result.returncode == 0, result.stderr
    assert "2 of 3 shards missing or corrupted; regenerating them" in result.stderr
    assert shard_bytes(root) == before and (root / "manifest.json").read_bytes() == manifest
    assert intact.stat().st_mtime_ns == mtime  # the intact shard was not touched
    assert run_cli("data", "verify", str(root)).returncode == 0
    # gmn-data repair does the same from the dataset's own settings
    (root / "train" / "shard-00000.npz").unlink()
    result = run_cli("data", "repair", str(root), "--workers", "1", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["shards_regenerated"] == 1
    assert shard_bytes(root) == before and (root / "manifest.json").read_bytes() == manifest


def test_checksums_are_cached_by_size_and_mtime(dataset, tmp_path):
    root = tmp_path / "d"
    shutil.copytree(dataset, root)
    shard = root / "train" / "shard-00000.npz"
    cache = ChecksumCache(root)
    real = cache.sha256(shard)
    cache.entries["train/shard-00000.npz"][2] = "f" * 64  # a planted digest: returned only if nothing is re-hashed
    cache.changed = True
    cache.save()
    assert ChecksumCache(root).sha256(shard) == "f" * 64
    assert ChecksumCache(root, rehash=True).sha256(shard) == real  # gmn-data verify always re-hashes
    os.utime(shard, ns=(shard.stat().st_atime_ns, shard.stat().st_mtime_ns + 1))
    assert ChecksumCache(root).sha256(shard) == real  # a changed mtime is hashed again


def test_truncated_manifest_and_config_are_one_line_or_recovered(dataset, tmp_path):
    root = tmp_path / "d"
    shutil.copytree(dataset, root)
    manifest = (root / "manifest.json").read_bytes()
    (root / "manifest.json").write_bytes(manifest[: len(manifest) // 2])
    for command in ("verify", "info"):
        one_line(run_cli("data", command, str(root)), 2, "manifest.json: truncated or not JSON",
                 f"repair: gmn-data repair {root}")  # fmt: skip
    result = run_cli("data", "repair", str(root), "--workers", "1", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert (root / "manifest.json").read_bytes() == manifest
    # a damaged config.json is read from the manifest, and generate writes it again
    config = (root / "config.json").read_bytes()
    (root / "config.json").write_bytes(config[:10])
    assert run_cli("data", "info", str(root)).returncode == 0
    assert run_cli("data", "generate", "--out", str(root), *CLI_TINY).returncode == 0
    assert (root / "config.json").read_bytes() == config


def test_bad_generate_flags_and_a_corrupted_shard_in_show_are_one_line(dataset, tmp_path):
    out = str(tmp_path / "x")
    one_line(run_cli("data", "generate", "--out", out, *CLI_TINY, "--workers", "-1"), 2,
             "--workers: must be in [0, 1024], got -1")  # fmt: skip
    one_line(run_cli("data", "generate", "--out", out, *CLI_TINY, "--blocks", "0"), 2, "blocks: must be in [2, 8]")
    one_line(run_cli("data", "generate", "--out", out, *CLI_TINY, "--blocks", "1000000000000"), 2, "blocks")
    root = tmp_path / "d"
    shutil.copytree(dataset, root)
    shard = root / "train" / "shard-00000.npz"
    shard.write_bytes(shard.read_bytes()[:100])
    one_line(run_cli("data", "show", str(root), "--scene", "0", "--out", str(tmp_path / "s.png")), 2,
             "shard-00000.npz: unreadable (", f"repair: gmn-data repair {root}")  # fmt: skip


def test_two_generators_fill_one_directory_with_the_same_bytes(dataset, tmp_path):
    """Two processes on one dataset directory (as two machines on a shared one): each shard is made once, under its
    lock, and both end with the same manifest as a single run."""
    root = tmp_path / "d"
    cmd = [sys.executable, "-m", "gmn_plugins.cli.data", "generate", "--out", str(root), *CLI_TINY]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    assert shard_bytes(root) == shard_bytes(dataset)
    assert (root / "manifest.json").read_bytes() == (dataset / "manifest.json").read_bytes()
    assert not list(root.glob("*/.shard-*.lock"))


# ------------------------------------------------------------------------------------- faults of the machine


def test_disk_full_during_a_checkpoint_keeps_the_previous_one(data_dir, tmp_path, tmpfs):
    probe = gmn_run(data_dir, tmp_path / "probe", "train.steps=1")
    assert probe.returncode == 0, probe.stderr
    size = (tmp_path / "probe" / "checkpoint.pt").stat().st_size
    disk = tmpfs(int(size * 1.6))  # room for one checkpoint, not for its replacement beside it
    out = disk / "run"
    line = one_line(gmn_run(data_dir, out, "train.steps=3", "train.checkpoint_every=1"), 1,
                    f"{out / 'checkpoint.pt'}: cannot write: disk full (")  # fmt: skip
    assert "the previous checkpoint is intact" in line
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 1
    assert not list(out.glob(".*.tmp"))


def test_disk_full_during_generation_is_one_line_exit_1_and_resumes(dataset, tmp_path, tmpfs):
    disk = tmpfs(48 * 1024)
    one_line(run_cli("data", "generate", "--out", str(disk / "d"), *CLI_TINY), 1, ": cannot write: disk full",
             "nothing half-written was kept", "re-run to resume")  # fmt: skip
    assert not list((disk / "d").rglob("*.tmp"))
    subprocess.run(["mount", "-o", "remount,size=16m", str(disk)], check=True)  # space freed
    assert run_cli("data", "generate", "--out", str(disk / "d"), *CLI_TINY).returncode == 0
    assert shard_bytes(disk / "d") == shard_bytes(dataset)


def test_a_read_only_run_directory_is_one_line_exit_1(trained, data_dir, tmp_path, tmpfs):
    disk = tmpfs(128 << 20)
    shutil.copytree(trained, disk / "run")
    remount_ro(disk)
    one_line(gmn_run(data_dir, disk / "run", "train.steps=3"), 1, f"{disk / 'run'}: cannot write: read-only file system")
    one_line(run_cli("evaluate", "missing", str(disk / "run"), "--scenes", "1", "--no-progress"), 1,
             f"{disk / 'run' / 'eval'}: cannot write: read-only file system")  # fmt: skip


def test_a_modality_description_is_not_part_of_its_identity():
    """Editing only a modality's description keeps checkpoints valid; checkpoints that stored the older hash (which
    covered the description) still resume."""
    import attrs

    from gmn_plugins.training.checkpoint import check_compatible
    from gmn_plugins.core.plugins import load_registry

    rgb = load_registry().modalities["rgb"]
    edited = attrs.evolve(rgb, spec=attrs.evolve(rgb.spec, description="a new description"))
    assert edited.identity()["spec_hash"] == rgb.identity()["spec_hash"]
    assert edited.identity()["legacy_spec_hash"] != rgb.identity()["legacy_spec_hash"]
    moved = attrs.evolve(rgb, spec=attrs.evolve(rgb.spec, query="wrist"))
    assert moved.identity()["spec_hash"] != rgb.identity()["spec_hash"]
    spec = {"seed": 0, "model": {}, "data": {}, "train": {}}
    old = {"modalities": [{**rgb.identity(), "spec_hash": rgb.spec.legacy_spec_hash()}], "spec": spec}
    check_compatible(old, spec, [rgb.identity()], "ckpt")  # a checkpoint of before 0.2
    with pytest.raises(CheckpointError, match="modality rgb: spec_hash differs"):
        check_compatible(old, spec, [edited.identity()], "ckpt")  # its legacy hash covered the description


def test_a_run_resumes_whether_its_spec_leaves_the_decoder_width_to_the_preset_or_writes_it_out():
    """model.decoder_width unset is the preset's (tiny: 8, small: 16): a checkpoint from before the option (or one
    that left it unset) resumes under a spec that writes out the same width, and is refused under another."""
    from gmn_plugins.training.checkpoint import check_compatible
    from gmn_plugins.core.plugins import load_registry

    rgb = load_registry().modalities["rgb"].identity()

    def spec(**model):
        return {"seed": 0, "model": model, "data": {}, "train": {}}

    old = {"modalities": [rgb], "spec": spec(preset="small")}  # written before the field existed
    check_compatible(old, spec(preset="small", decoder_width=16), [rgb], "ckpt")
    check_compatible({**old, "spec": spec(preset="tiny", decoder_width=8)}, spec(preset="tiny"), [rgb], "ckpt")
    with pytest.raises(CheckpointError, match="model.decoder_width: checkpoint has 16, spec has 8"):
        check_compatible(old, spec(preset="small", decoder_width=8), [rgb], "ckpt")
