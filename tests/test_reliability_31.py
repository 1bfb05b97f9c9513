"""Issue 31, points 1-13: nothing lost, nothing silent. In-process (the CLIs' ``main`` functions, monkeypatched
faults); the one real full disk (SIGBUS before the fix) runs in a subprocess, so that a regression cannot kill the
test runner."""

import errno
import json
import os
import shutil
import threading

import attrs
import numpy as np
import pytest

from conftest import REPO, run_cli
from gmn_plugins.cli import data as gmn_data
from gmn_plugins.cli import run as gmn_run
from gmn_plugins.data import format as fmt
from gmn_plugins.training.experiment import dataset_config
from gmn_plugins.runtime.faults import MachineError
from gmn_plugins.runtime.files import DataError, write_json
from gmn_plugins.mese import generate as gen
from gmn_plugins.core.plugins import load_registry
from gmn_plugins.core.spec import load_spec

SPEC = str(REPO / "specs" / "quickstart.toml")
TINY = ["data.train_scenes=4", "data.test_scenes=0", "data.val_scenes=2", "data.views=4", "data.shard_size=2", "data.workers=1",
        "train.batch_scenes=2", "train.max_targets=3", "model.sigma=0.3", 'model.preset="tiny"']  # fmt: skip


def cli(capsys, main, *argv: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of a CLI's ``main`` called in this process."""
    capsys.readouterr()
    try:
        main([str(a) for a in argv])
        code = 0
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def one_line(result, code: int, *fragments: str) -> str:
    got, out, err = result
    assert got == code, (got, out, err)
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def registry():
    return load_registry()


@pytest.fixture(scope="module")
def config(registry):
    """The dataset settings of the quickstart spec with TINY's overrides (seed 0)."""
    spec = load_spec(SPEC, TINY)
    return dataset_config(spec, registry.resolve(spec.modalities, SPEC))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, config, registry):
    root = tmp_path_factory.mktemp("ds31") / "d"
    gen.generate(root, config, workers=1, progress=False, registry=registry)
    return root


def copy(dataset, tmp_path):
    shutil.copytree(dataset, tmp_path / "d")
    return tmp_path / "d"


# ---------------------------------------------------------------------------------------- 1. never relabelled


def test_a_dataset_without_config_json_is_reidentified_by_its_manifest_never_relabelled(dataset, tmp_path, capsys,
                                                                                        config, registry):  # fmt: skip
    root = copy(dataset, tmp_path)
    original = (root / fmt.CONFIG).read_bytes()
    (root / fmt.CONFIG).unlink()
    line = one_line(cli(capsys, gmn_run.main, SPEC, *TINY, f"data.dir={json.dumps(str(root))}",
                        f"train.out={json.dumps(str(tmp_path / 'run'))}", "seed=1", "--no-progress"), 2,
                    f"{root / fmt.CONFIG}: seed: dataset was made with 0, now asked for 1")  # fmt: skip
    assert "use another data directory" in line
    assert not (root / fmt.CONFIG).exists()  # not relabelled as seed 1
    assert gen.read_config(root).seed == 0  # gmn-data info and repair read the manifest's settings
    # its own settings are accepted, and config.json is written again, as it was
    gen.generate(root, config, workers=1, progress=False, registry=registry)
    assert (root / fmt.CONFIG).read_bytes() == original
    # shards whose settings nothing records are refused, not relabelled
    (root / fmt.CONFIG).unlink()
    (root / fmt.MANIFEST).unlink()
    with pytest.raises(DataError, match=r"config.json: missing; no manifest.json says which settings made train, val"):
        gen.generate(root, attrs.evolve(config, seed=1), workers=1, progress=False, registry=registry)
    assert not (root / fmt.CONFIG).exists()


# ------------------------------------------------------------------------------- 2. concurrent generation


def test_the_first_of_two_generators_owns_a_new_directory_and_the_second_is_refused(tmp_path, monkeypatch, registry):
    """Two ``generate`` on one new directory with other settings: the settings are checked and written under
    ``.config.lock`` before any shard, so the second finds the first's settings and refuses."""
    root = tmp_path / "d"
    first = gen.DatasetConfig(seed=1, views=2, shard_size=1, splits={"train": 1})
    second = attrs.evolve(first, views=1)
    waiting, real_hold = threading.Event(), gen.hold

    def hold(path, *args, **kwargs):
        if path.name == fmt.CONFIG_LOCK:
            waiting.set()  # the second process is about to wait for the first's lock
        return real_hold(path, *args, **kwargs)

    monkeypatch.setattr(gen, "hold", hold)
    result = {}

    def second_process():
        try:
            result["manifest"] = gen.generate(root, second, workers=1, progress=False, registry=registry)
        except Exception as exc:  # noqa: BLE001 (handed to the test's thread)
            result["error"] = exc

    root.mkdir()
    with real_hold(root / fmt.CONFIG_LOCK, "the first process"):  # the first, between its check and its write
        thread = threading.Thread(target=second_process)
        thread.start()
        assert waiting.wait(60), "generate never took the settings' lock"
        thread.join(0.3)
        assert thread.is_alive(), "the second process did not wait for the first's lock"
        write_json(root / fmt.CONFIG, first.to_json())
    thread.join(120)
    assert isinstance(result.get("error"), DataError), result
    assert "views: dataset was made with 2, now asked for 1" in str(result["error"])
    assert not list(root.glob(fmt.SHARD_GLOB)) and not (root / fmt.CONFIG_LOCK).exists()


# ------------------------------------------------------------------------------------- 3. foreign directories


@pytest.mark.parametrize("name", [fmt.MANIFEST, fmt.CONFIG])
def test_generate_refuses_a_directory_holding_the_users_own_manifest_or_config(tmp_path, capsys, name):
    root = tmp_path / "mine"
    root.mkdir()
    theirs = json.dumps({"name": "my app", "version": 3}).encode()
    (root / name).write_bytes(theirs)
    (root / "notes.txt").write_text("mine\n")
    one_line(cli(capsys, gmn_data.main, "generate", "--out", root, "--scenes", "1", "--views", "1", "--workers", "1",
                 "--no-progress"), 2, f"{root}: not a MESE dataset directory (",
             "generate into a new or empty")  # fmt: skip
    assert (root / name).read_bytes() == theirs
    assert sorted(p.name for p in root.iterdir()) == sorted([name, "notes.txt"])


def test_generate_refuses_a_directory_of_other_files_and_datasets_keep_working(dataset, tmp_path, capsys):
    root = tmp_path / "photos"
    root.mkdir()
    (root / "holiday.png").write_bytes(b"\x89PNG")
    one_line(cli(capsys, gmn_data.main, "generate", "--out", root, "--scenes", "1", "--no-progress"), 2,
             f"{root}: not a MESE dataset directory (it holds holiday.png)")  # fmt: skip
    assert [p.name for p in root.iterdir()] == ["holiday.png"]
    # a dataset (its own config.json) keeps working, a file the user put there since included
    root = copy(dataset, tmp_path)
    (root / "scene0.png").write_bytes(b"\x89PNG")
    config = json.loads((root / fmt.CONFIG).read_text())
    assert gen.generate(root, gen.DatasetConfig.from_json(config), workers=1, progress=False) == fmt.read_manifest(root)


# ------------------------------------------------------------------------------------ 4. full disk, packing


def test_no_space_for_the_packed_copy_is_one_line_exit_1(dataset, tmp_path, capsys, monkeypatch):
    root = copy(dataset, tmp_path)

    def no_space(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fmt.os, "posix_fallocate", no_space)
    one_line(cli(capsys, gmn_data.main, "pack", root, "--no-progress"), 1,
             f"{fmt.packed_dir(root, 'train')}: cannot write: disk full (", "the shards are intact")  # fmt: skip
    assert not list((root / fmt.PACKED).rglob("*.tmp"))
    with pytest.raises(MachineError, match=r"packed/train: cannot write: disk full"):  # gmn-run's way in
        fmt.open_split(root, "train")


def test_a_full_disk_while_packing_is_one_line_not_sigbus(dataset, tmp_path, tmpfs):
    disk = tmpfs(160 * 1024)  # the dataset fits (~100 KB in pages), its packed train split (150 KB) does not
    shutil.copytree(dataset, disk / "d")
    done = run_cli("data", "pack", str(disk / "d"), "--no-progress")
    assert done.returncode == 1, (done.returncode, done.stderr)  # before: -7 (SIGBUS), nothing printed
    assert len(done.stderr.strip().splitlines()) == 1 and "cannot write: disk full" in done.stderr, done.stderr
    assert not list((disk / "d" / fmt.PACKED).rglob("*.tmp"))


# ------------------------------------------------------------------------------------------- 9. a {} manifest


@pytest.mark.parametrize("content", [{}, {"generator_version": 2, "splits": []}, [1, 2]])
def test_a_manifest_that_is_not_a_mese_manifest_is_one_line(dataset, tmp_path, capsys, content):
    root = copy(dataset, tmp_path)
    (root / fmt.MANIFEST).write_text(json.dumps(content))
    for command in ("verify", "pack", "info"):
        one_line(cli(capsys, gmn_data.main, command, root), 2, f"{root / fmt.MANIFEST}: ",
                 f"repair: gmn-data repair {root}")  # fmt: skip
    assert cli(capsys, gmn_data.main, "repair", root, "--workers", "1", "--no-progress")[0] == 0
    assert (root / fmt.MANIFEST).read_bytes() == (dataset / fmt.MANIFEST).read_bytes()


# -------------------------------------------------------------------------------- 13. verify the packed copy


def test_verify_checks_the_packed_copy_training_reads(dataset, tmp_path, capsys):
    root = copy(dataset, tmp_path)
    assert cli(capsys, gmn_data.main, "pack", root, "--no-progress")[0] == 0
    rgb = fmt.packed_dir(root, "train") / "camera.rgb.npy"
    stat = rgb.stat()
    raw = bytearray(rgb.read_bytes())
    raw[-1] ^= 0x01  # one bit; the same size and mtime, so the checksum cache alone would not see it
    rgb.write_bytes(bytes(raw))
    os.utime(rgb, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    line = one_line(cli(capsys, gmn_data.main, "verify", root), 2,
                    f"{rgb}: corrupted (sha256 differs from index.json)", f"gmn-data pack {root}")  # fmt: skip
    assert "packed again from the shards" in line
    arrays = fmt.open_split(root, "train")  # packed anew from the intact shards
    assert np.array_equal(arrays["camera.rgb"], fmt.load_split(root, "train")["camera.rgb"])
    code, out, _ = cli(capsys, gmn_data.main, "verify", root)
    assert code == 0 and "all shard checksums match" in out
    (fmt.packed_dir(root, "val") / "label.npy").unlink()
    one_line(cli(capsys, gmn_data.main, "verify", root), 2, f"{fmt.packed_dir(root, 'val') / 'label.npy'}: missing")


# ------------------------------------------------------------------------------------------ 5. shape bounds


@pytest.fixture
def big_images(registry, monkeypatch):
    """``registry`` plus image modalities ``huge`` (3, 8192, 8192) and ``wide`` (3, 1100, 1100) of a plugin, as
    gmn-run finds them."""
    rgb = registry.modalities["rgb"]

    def image(name, side):
        sensor = attrs.evolve(rgb.sensor, name=f"test.{name}", shape=(3, side, side))
        return attrs.evolve(rgb, spec=attrs.evolve(rgb.spec, name=name, sensor=sensor.name, shape=[3, side, side]),
                            sensor=sensor)  # fmt: skip

    added = {"huge": image("huge", 8192), "wide": image("wide", 1100)}
    plugged = attrs.evolve(registry, modalities={**registry.modalities, **added},
                           sensors={**registry.sensors, **{m.sensor.name: m.sensor for m in added.values()}})  # fmt: skip
    monkeypatch.setattr(gmn_run, "load_registry", lambda: plugged)
    return plugged


def test_dry_run_bounds_modality_shapes_and_the_latent_grid(big_images, capsys):
    one_line(cli(capsys, gmn_run.main, SPEC, 'modalities=["huge", "haptic"]', "--dry-run"), 2,
             f"{SPEC}: modalities[0]: huge: senses of shape (3, 8192, 8192) have 201,326,592 values, more than")
    one_line(cli(capsys, gmn_run.main, SPEC, 'modalities=["huge"]', "model.latent_grid=[16, 16]", "--dry-run"), 2,
             "huge: senses of shape (3, 8192, 8192)")  # fmt: skip
    one_line(cli(capsys, gmn_run.main, SPEC, 'modalities=["wide", "haptic"]', "--dry-run"), 2,
             f"{SPEC}: model.latent_grid: the modalities ask for a 275x275 latent grid (wide), more than 256 per side")
    code, out, _ = cli(capsys, gmn_run.main, SPEC, 'modalities=["wide", "haptic"]', "model.latent_grid=[64, 64]",
                       "--dry-run")  # fmt: skip
    assert code == 0 and "latent grid: (64, 64)" in out, (out, _)


# ---------------------------------------------------------------------------------- 6, 10. generate's bounds


def test_generate_flags_have_gmn_runs_bounds(tmp_path, capsys, monkeypatch):
    def hours_of_work(*args, **kwargs):
        raise AssertionError("generation started")

    monkeypatch.setattr(gen, "_make_shards", hours_of_work)
    out = tmp_path / "d"
    for flag, value, bound in (("--views", 100000, "[1, 1024]"), ("--scenes", 10**8, "[0, 10000000]"),
                               ("--val", -1, "[0, 10000000]"), ("--shard-size", 10**6, "[1, 10000]"),
                               ("--workers", 5000, "[0, 1024]"), ("--blocks", 9, "[2, 8]"),
                               ("--seed", -1, "[0, 4294967295]"), ("--seed", 2**32, "[0, 4294967295]")):  # fmt: skip
        args = {"--scenes": 1, "--workers": 1, flag: value}
        one_line(cli(capsys, gmn_data.main, "generate", "--out", out, *[str(x) for kv in args.items() for x in kv]), 2,
                 f"gmn-data: {flag}: must be in {bound}, got {value}")  # fmt: skip
    # the same bounds as gmn-run's, defined once (core/spec.py), whichever command asks
    one_line(cli(capsys, gmn_run.main, SPEC, "data.views=100000", "--dry-run"), 2, "data.views: must be <= 1024")
    with pytest.raises(DataError, match=r"views: must be in \[1, 1024\], got 100000"):
        gen.generate(out, gen.DatasetConfig(views=100000), workers=1, progress=False)
    with pytest.raises(DataError, match=r"seed: must be in \[0, 4294967295\], got -3"):
        gen.generate(out, gen.DatasetConfig(seed=-3), workers=1, progress=False)
    assert not out.exists()


# ------------------------------------------------------------------------------- 7. a sensor's record() raises


def test_a_plugin_sensor_that_raises_names_the_plugin_the_sensor_and_the_scene(registry, tmp_path, capsys,
                                                                                 monkeypatch):  # fmt: skip
    from gmn_plugins.core.registry import PluginStatus

    def record(rig):
        raise ZeroDivisionError("the plugin divided by zero")

    sensor = attrs.evolve(registry.sensors["hand.haptic"], name="boom.haptic", record=record)
    plugin = PluginStatus("boom", "gmn-boom", "0.1", "entry point")
    plugged = attrs.evolve(registry, sensors={**registry.sensors, sensor.name: sensor},
                           providers={**registry.providers, f"sensor:{sensor.name}": plugin})  # fmt: skip
    monkeypatch.setattr("gmn_plugins.core.plugins.load_registry", lambda: plugged)
    monkeypatch.setattr(gen, "_loaded", None)
    root = tmp_path / "d"
    line = one_line(cli(capsys, gmn_data.main, "generate", "--out", root, "--scenes", "3", "--shard-size", "2",
                        "--views", "1", "--workers", "1", "--sensors", "boom.haptic", "--no-progress"), 2,
                    f"{root}: train scene 0: sensor boom.haptic: record() raised ZeroDivisionError: the plugin "
                    f"divided by zero (test_reliability_31.py:", "(plugin boom, distribution gmn-boom 0.1)",
                    "fix its record() (nothing of it was written)")  # fmt: skip
    assert not list(root.glob(fmt.SHARD_GLOB)), line


# --------------------------------------------------------------------- 8. stray bytes in metrics.jsonl


def test_stray_bytes_in_metrics_jsonl_never_block_a_resume(tmp_path):
    from gmn_plugins.training.trainer import _truncate_metrics

    path = tmp_path / "metrics.jsonl"
    rows = [json.dumps({"step": s, "loss": 1.0 / s}).encode() for s in (1, 2, 3)]
    path.write_bytes(b"\n".join(rows[:2]) + b"\n\xff\xfe\x00binary\x85\n" + rows[2] + b"\n{\"step\": \xc3" + b"[1]\n")
    _truncate_metrics(path, keep_until=2)
    assert path.read_bytes() == rows[0] + b"\n" + rows[1] + b"\n"
    path.write_bytes(rows[0] + b"\n\x00\x00\x00")  # a tail of NULs (a power loss on some file systems)
    _truncate_metrics(path, keep_until=5)
    assert path.read_bytes() == rows[0] + b"\n"


# -------------------------------------------------------------------------------------- 10, 11, 12. gmn-eval


def test_gmn_eval_seed_context_and_device_are_one_line(tmp_path, capsys):
    from gmn_plugins.cli import evaluate as gmn_eval

    run = tmp_path / "run"  # each flag is refused before the run is opened
    one_line(cli(capsys, gmn_eval.main, "missing", run, "--seed", "-1"), 2, "gmn-eval: --seed: must be in [0, 2**32)")
    one_line(cli(capsys, gmn_eval.main, "predict", run, "--context", "-1"), 2, "gmn-eval: --context: must be >= 0")
    one_line(cli(capsys, gmn_eval.main, "predict", run, "--temperature", "-1"), 2,
             "gmn-eval: --temperature: must be >= 0, got -1.0")  # fmt: skip
    one_line(cli(capsys, gmn_eval.main, "missing", run, "--device", "bogus"), 2,
             "gmn-eval: --device: expected auto, cpu, cuda, cuda:N or mps, got 'bogus'")  # fmt: skip
    for command in ("density", "generate", "predict", "classify"):
        one_line(cli(capsys, gmn_eval.main, command, run, "--device", "gpu"), 2, "gmn-eval: --device: expected")
    import torch

    if not torch.cuda.is_available():
        one_line(cli(capsys, gmn_eval.main, "missing", run, "--device", "cuda:0"), 2,
                 "gmn-eval: --device: 'cuda:0' requested, but torch.cuda.is_available() is False", "--device cpu")
