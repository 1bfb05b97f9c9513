"""``gmn_plugins.authoring.scaffold.new_package`` (``gmn-plugins new NAME``): a plugin package skeleton that a user
edits, installs non-editably and trains with, and that passes its own tests."""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib

import numpy as np
import pytest

from conftest import REPO
from gmn_plugins.core.families import IMAGE, VECTOR
from gmn_plugins.core.modality_spec import expand, read_modality_file
from gmn_plugins.authoring.scaffold import new_package

FILES = ["README.md", "gmn_fingertips/__init__.py", "gmn_fingertips/fingertips-mask.toml",
         "gmn_fingertips/fingertips-touch.toml", "pyproject.toml", "tests/test_plugin.py"]  # fmt: skip


@pytest.mark.parametrize("name", ["", "Gmn-x", "gmn_x", "1gmn", "gmn--x", "gmn-x-", "gmn x", "gmn-x/y", "gmn-plugins",
                                  "gmn-modalities", "json", "class"])  # fmt: skip
def test_a_bad_name_is_one_line_value_error(tmp_path, name):
    with pytest.raises(ValueError) as caught:
        new_package(name, tmp_path)
    message = str(caught.value)
    assert "\n" not in message and repr(name) in message
    assert list(tmp_path.iterdir()) == []


def test_an_existing_directory_is_refused(tmp_path):
    new_package("gmn-x", tmp_path)
    before = (tmp_path / "gmn-x" / "pyproject.toml").read_text()
    with pytest.raises(ValueError, match=r"gmn-x already exists: choose another name or directory$"):
        new_package("gmn-x", tmp_path)
    assert (tmp_path / "gmn-x" / "pyproject.toml").read_text() == before
    (tmp_path / "gmn-y").write_text("a file")
    with pytest.raises(ValueError, match="already exists"):
        new_package("gmn-y", tmp_path)


def test_the_skeleton(tmp_path):
    root = new_package("gmn-fingertips", tmp_path / "made" / "here")  # dest is made when missing
    assert root == tmp_path / "made" / "here" / "gmn-fingertips"
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == FILES
    project = tomllib.loads((root / "pyproject.toml").read_text())
    assert project["build-system"]["build-backend"] == "setuptools.build_meta"
    assert project["project"]["name"] == "gmn-fingertips" and "gmn-plugins" in project["project"]["dependencies"]
    assert project["project"]["entry-points"]["gmn_plugins"] == {"fingertips": "gmn_fingertips"}
    assert project["tool"]["setuptools"]["package-data"] == {"gmn_fingertips": ["*.toml"]}
    for path in root.rglob("*.py"):
        compile(path.read_text(), str(path), "exec")
    init = (root / "gmn_fingertips" / "__init__.py").read_text()
    for hook in ("register_sensors", "register_modalities"):
        assert f"@hookimpl\ndef {hook}(register)" in init
    assert 'rig.render("mask"' in init  # the stub sensor uses the rig's public API
    touch = expand(read_modality_file(root / "gmn_fingertips" / "fingertips-touch.toml"), (132,), "touch", VECTOR)
    assert [(m.name, m.sensor, m.shape) for m in touch] == [("fingertips-touch", "hand.haptic", [5])]
    mask = expand(read_modality_file(root / "gmn_fingertips" / "fingertips-mask.toml"), (1, 64, 64), "mask", IMAGE)
    assert [(m.name, m.sensor, m.shape) for m in mask] == [("fingertips-mask", "camera.fingertips-mask", [1, 64, 64])]


FINGERTIPS_TOML = """\
name = "fingertips"
description = "Touch of the five fingertips, in newtons"
sensor = "hand.haptic"
query = "wrist"
family = "vector"
shape = [5]

[slice]
indices = [119, 122, 125, 128, 131]   # thumb, index, middle, ring, pinky distal touch
"""

OBJECT_MASK_TOML = """\
name = "object-mask"
sensor = "camera.object-mask"
query = "camera"
family = "image"
"""

OBJECT_MASK_SENSOR = '''\
def record_object_mask(rig) -> np.ndarray:
    blocks = rig.render("segmentation")  # (64, 64) int32: block index, -1 where no block is
    return np.where(blocks >= 0, 255, 0).astype(np.uint8)[None]


OBJECT_MASK = Sensor(name="camera.object-mask", shape=(1, 64, 64), dtype="uint8", units="255 = object",
                     query="camera", record=record_object_mask, normalization="uint8")

'''


def pip_install(root, target) -> None:
    """``pip install ROOT`` as a user would (non-editable), into its own target so that this venv stays clean."""
    isolation = [] if importlib.util.find_spec("setuptools") is None else ["--no-build-isolation"]  # offline, fast
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", *isolation, "--target",
                          str(target), str(root)], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert pip.returncode == 0, pip.stderr


def run_own_tests(root, cwd, env) -> None:
    """The package's own tests, run from elsewhere so that the installed copy is imported, not the source."""
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(root / "tests")],
                           cwd=cwd, env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
    assert "4 passed" in tests.stdout, tests.stdout[-3000:]


def test_edit_install_test_and_train_a_generated_package(tmp_path):
    root = new_package("gmn-fingertips", tmp_path)
    package = root / "gmn_fingertips"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "GMN_LOAD_PLUGINS"}
    env.setdefault("MUJOCO_GL", "egl")

    def site(target) -> dict:
        return {**env, "PYTHONPATH": os.pathsep.join([str(target), *filter(None, [os.environ.get("PYTHONPATH")])])}

    # as generated, installed, it passes its own tests
    pip_install(root, tmp_path / "site-generated")
    run_own_tests(root, elsewhere, site(tmp_path / "site-generated"))

    # the user's edits: (a) a fingertips slice of the built-in haptic sensor, (b) their own object-mask camera sensor
    (package / "fingertips-touch.toml").unlink()
    (package / "fingertips.toml").write_text(FINGERTIPS_TOML)
    (package / "fingertips-mask.toml").unlink()
    (package / "object-mask.toml").write_text(OBJECT_MASK_TOML)
    init = (package / "__init__.py").read_text()
    init, edits = re.subn(r"def record_object_mask\(rig\).*?\nSENSORS = ", OBJECT_MASK_SENSOR + "SENSORS = ", init,
                          flags=re.S)  # fmt: skip
    assert edits == 1
    (package / "__init__.py").write_text(init)
    # files were removed: pip builds in the source tree, and setuptools would ship their stale copies in build/
    shutil.rmtree(root / "build", ignore_errors=True)
    target = tmp_path / "site"
    pip_install(root, target)
    assert sorted(p.name for p in (target / "gmn_fingertips").glob("*.toml")) == ["fingertips.toml", "object-mask.toml"]
    env = site(target)
    run_own_tests(root, elsewhere, env)

    # two training steps with a built-in and both new modalities
    data, out = tmp_path / "data", tmp_path / "run"
    run = subprocess.run([
        sys.executable, "-m", "gmn_plugins.cli.run", str(REPO / "specs" / "quickstart.toml"),
        'modalities=["rgb", "fingertips", "object-mask"]', "data.train_scenes=4", "data.test_scenes=0", "data.val_scenes=2",
        "data.views=4", "data.shard_size=2", "data.workers=1", "train.batch_scenes=2", "train.max_targets=3",
        "train.steps=2", f"data.dir={json.dumps(str(data))}", f"train.out={json.dumps(str(out))}", "--no-progress",
    ], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    from gmn_plugins.training.checkpoint import load_checkpoint
    from gmn_plugins.data.format import load_split

    saved = load_checkpoint(out / "checkpoint.pt")["modalities"]
    assert [(m["name"], m["distribution"]) for m in saved] == [
        ("rgb", "gmn-plugins"), ("fingertips", "gmn-fingertips"), ("object-mask", "gmn-fingertips")]
    scenes = load_split(data, "train")
    mask = scenes["camera.object-mask"]
    assert mask.shape == (4, 4, 1, 64, 64) and mask.dtype == np.uint8
    assert set(np.unique(mask)) == {0, 255}
    assert ((mask > 0).mean(axis=(2, 3, 4)) > 0.02).all()  # the object is in every view
    # the mask is where the RGB view is lit (anti-aliased edges aside)
    lit = scenes["camera.rgb"].max(axis=2) > 10
    assert (lit & (mask[:, :, 0] > 0)).sum() / (lit | (mask[:, :, 0] > 0)).sum() > 0.85
    assert scenes["hand.haptic"].shape == (4, 4, 132)  # the fingertips' sensor is recorded whole, sliced on load
