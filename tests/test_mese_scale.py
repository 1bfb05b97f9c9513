"""MESE at scale, on real MuJoCo at tiny sizes: shard ranges merged by finalize, kill -9 and resume, verify, info,
show, and bad input (one line on stderr, exit code 2, nothing half-written)."""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import run_cli, shard_bytes
from gmn_plugins.runtime.faults import MachineError
from gmn_plugins.runtime import files
from gmn_plugins.data.format import DataError
from gmn_plugins.mese.generate import DatasetConfig, finalize, generate, shard_tasks
from gmn_plugins.mese.hand import builtin_hand_xml

TINY = dict(blocks=5, views=3, physics="fast", shard_size=2, splits={"train": 4, "val": 1})
CLI_TINY = ["--scenes", "4", "--val", "1", "--views", "3", "--shard-size", "2", "--seed", "7", "--no-progress"]


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    root = tmp_path_factory.mktemp("whole")
    generate(root, DatasetConfig(seed=7, **TINY), workers=1, progress=False)
    return root


def one_line_exit_2(result, *fragments):
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_shard_ranges_on_two_machines_merge_to_the_same_dataset(whole, tmp_path):
    """Machine A makes shard 0 (CLI, one worker), machine B shards 1..2 (two workers); copied together and finalized,
    the shards and the manifest equal those of one uninterrupted run."""
    a, b, merged = tmp_path / "a", tmp_path / "b", tmp_path / "merged"
    result = run_cli("data", "generate", "--out", str(a), *CLI_TINY, "--workers", "1", "--shard-range", "0:1")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["shards"] == 1 and report["total_shards"] == 3 and not (a / "manifest.json").exists()
    generate(b, DatasetConfig(seed=7, **TINY), workers=2, progress=False, shard_range=(1, 3))
    assert not (b / "manifest.json").exists()
    shutil.copytree(a, merged)
    for path in b.glob("*/shard-*"):
        (merged / path.parent.name).mkdir(exist_ok=True)
        shutil.copy(path, merged / path.parent.name / path.name)
    result = run_cli("data", "finalize", str(merged))
    assert result.returncode == 0, result.stderr
    assert shard_bytes(merged) == shard_bytes(whole)
    assert (merged / "manifest.json").read_text() == (whole / "manifest.json").read_text()
    # a missing shard is named in one line; so is a corrupted one (finalize and verify)
    (merged / "manifest.json").unlink()
    (merged / "val" / "shard-00000.npz").unlink()
    one_line_exit_2(run_cli("data", "finalize", str(merged)), "val/shard-00000.npz: missing (1 of 3")
    with pytest.raises(DataError, match="0 <= A < B"):
        generate(b, DatasetConfig(seed=7, **TINY), workers=1, progress=False, shard_range=(3, 5))


def test_parts_from_the_scheduler_make_the_same_dataset_and_the_last_one_finalizes(whole, tmp_path):
    """torchrun-style RANK/WORLD_SIZE (and a Slurm array, offset by its first index): two parts into one directory
    give the shards and the manifest of one uninterrupted run; the part that completes the dataset writes the
    manifest."""
    out = tmp_path / "parts"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "RANK", "WORLD_SIZE"))}
    reports = []
    for rank in (1, 0):
        env = {**clean, "RANK": str(rank), "WORLD_SIZE": "2"}
        result = subprocess.run([sys.executable, "-m", "gmn_plugins.cli.data", "generate", "--out", str(out), *CLI_TINY,
                                 "--workers", "1", "--part", "auto"], env=env, capture_output=True, text=True)  # fmt: skip
        assert result.returncode == 0, result.stderr
        reports.append(json.loads(result.stdout))
    # rank 1 (shards 1..2 of 3) first: not complete yet; rank 0 then completes the dataset and writes the manifest
    assert [(r["part"], r["shards"], r["finalized"]) for r in reports] == [([1, 2], 2, False), ([0, 2], 1, True)]
    assert shard_bytes(out) == shard_bytes(whole)
    assert (out / "manifest.json").read_text() == (whole / "manifest.json").read_text()

    from gmn_plugins.mese.generate import part_range, scheduler_part

    slurm = {"SLURM_ARRAY_TASK_ID": "12", "SLURM_ARRAY_TASK_MIN": "10", "SLURM_ARRAY_TASK_COUNT": "4", "RANK": "0",
             "WORLD_SIZE": "9"}  # fmt: skip
    assert scheduler_part(slurm) == (2, 4) and scheduler_part({"SLURM_PROCID": "1", "SLURM_NTASKS": "3"}) == (1, 3)
    assert [part_range(k, 4, 10) for k in range(4)] == [(0, 2), (2, 5), (5, 7), (7, 10)]
    assert [part_range(k, 3, 2) for k in range(3)] == [(0, 0), (0, 1), (1, 2)]
    with pytest.raises(DataError, match="gives part 4, not in 0..3"):
        scheduler_part({**slurm, "SLURM_ARRAY_TASK_ID": "14"})
    result = subprocess.run([sys.executable, "-m", "gmn_plugins.cli.data", "generate", "--out", str(tmp_path / "x"),
                             *CLI_TINY, "--part", "auto"], env=clean, capture_output=True, text=True)  # fmt: skip
    one_line_exit_2(result, "--part auto: no scheduler part in the environment")


def test_verify_names_a_corrupted_shard(whole, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(whole, root)
    assert run_cli("data", "verify", str(root)).returncode == 0
    shard = root / "train" / "shard-00001.npz"
    shard.write_bytes(shard.read_bytes()[:-4] + b"oops")
    one_line_exit_2(run_cli("data", "verify", str(root)), "train/shard-00001.npz: corrupted")
    with pytest.raises(DataError, match="shard-00001.npz: corrupted"):
        finalize(root)


def test_kill_9_and_rerun_gives_the_same_bytes(whole, tmp_path):
    root = tmp_path / "killed"
    cmd = [sys.executable, "-m", "gmn_plugins.cli.data", "generate", "--out", str(root), *CLI_TINY, "--workers", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while not list(root.glob("train/shard-00000.npz")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (root / "manifest.json").exists(), "finished before it could be killed; make the test data larger"
    # what a kill during a write leaves behind (the kill above may or may not have hit one)
    for stale in ("train/.shard-00001.npz.k9x_2ab.tmp", "train/.shard-00001.json.k9x_2ab.tmp",
                  ".manifest.json.k9x_2ab.tmp"):
        (root / stale).parent.mkdir(parents=True, exist_ok=True)
        (root / stale).write_bytes(b"half a file")
    result = run_cli("data", "generate", "--out", str(root), *CLI_TINY, "--workers", "2")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in root.rglob("*.tmp")) == []
    assert shard_bytes(root) == shard_bytes(whole)
    assert (root / "manifest.json").read_text() == (whole / "manifest.json").read_text()


def test_info_and_show(whole, tmp_path):
    result = run_cli("data", "info", str(whole))
    assert result.returncode == 0, result.stderr
    assert "train         4 scenes in 2 shards" in result.stdout and "hand.haptic" in result.stdout
    info = json.loads(run_cli("data", "info", str(whole), "--json").stdout)
    assert info["splits"]["val"]["scenes"] == 1 and info["sensors"]["camera.rgb"]["fovy_degrees"] == pytest.approx(13.84, abs=0.01)
    png = tmp_path / "scene.png"
    result = run_cli("data", "show", str(whole), "--scene", "3", "--out", str(png))
    assert result.returncode == 0, result.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    one_line_exit_2(run_cli("data", "show", str(whole), "--scene", "9", "--out", str(png)), "split 'train' has 4")


def test_bad_hands_and_output_dirs_are_one_line(tmp_path):
    out = str(tmp_path / "d")
    base = ["data", "generate", "--out", out, "--scenes", "1", "--views", "1", "--no-progress", "--workers", "1"]
    one_line_exit_2(run_cli(*base, "--hand", str(tmp_path / "nope.xml")), "nope.xml: no such file")
    broken = tmp_path / "broken.xml"
    broken.write_text("<mujoco><worldbody><body name='forearm'></worldbody></mujoco>")
    one_line_exit_2(run_cli(*base, "--hand", str(broken)), "broken.xml: cannot be used as the MESE hand")
    short = tmp_path / "short.xml"  # compiles, but one touch sensor short of the 132-value layout
    short.write_text(builtin_hand_xml(0).replace('<touch site="pinky_distal"/>', ""))
    one_line_exit_2(run_cli(*base, "--hand", str(short)), "short.xml: cannot be used", "132")
    blocker = tmp_path / "file"
    blocker.write_text("")
    one_line_exit_2(run_cli(*base[:2], "--out", str(blocker / "sub"), *base[4:]), "cannot write: Not a directory")
    assert not (tmp_path / "d").exists()


def test_full_disk_is_one_clear_error_and_leaves_no_partial_shard(tmp_path, monkeypatch):
    real_fsync = os.fsync

    def fsync(fd):
        if (tmp_path / "config.json").exists():  # config.json written; the shard is next
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(files.os, "fsync", fsync)
    with pytest.raises(MachineError, match=r"shard-00000.npz: cannot write: disk full"):
        generate(tmp_path, DatasetConfig(seed=1, views=1, shard_size=1, splits={"train": 1}), workers=1, progress=False)
    assert [p.name for p in tmp_path.rglob("*")] in (["config.json"], ["config.json", "train"], ["train", "config.json"])
    assert len(shard_tasks(DatasetConfig(splits={"train": 5, "val": 1}, shard_size=2))) == 4


def test_mjcf_hand_options_on_the_builtin_hand_are_one_line(tmp_path):
    for flag, value, message in (("--hull-vertices", "64", "gmn-data: --hull-vertices: caps an MJCF hand's mesh hulls"),
                                 ("--wrist-lock", "equality", "gmn-data: --wrist-lock: chooses how an MJCF hand's wrist")):
        done = run_cli("data", "generate", "--out", str(tmp_path / "d"), "--scenes", "1", flag, value)
        assert done.returncode == 2 and done.stderr.startswith(message) and len(done.stderr.splitlines()) == 1
    assert not (tmp_path / "d").exists()
