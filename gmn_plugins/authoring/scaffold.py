"""``gmn-plugins new NAME``: write the skeleton of a plugin package (the counterpart of llm's plugin template).

``new_package("gmn-fingertips", Path("."))`` writes::

    gmn-fingertips/
      pyproject.toml                    build system, dependencies, the entry point (group "gmn_plugins"), package data
      README.md
      gmn_fingertips/
        __init__.py                     @hookimpl register_sensors (a working camera sensor: the object mask) and
                                        @hookimpl register_modalities (every *.toml beside it)
        fingertips-touch.toml           a slice of the built-in hand.haptic sensor: the five fingertip touch sensors
        fingertips-mask.toml            the modality of the sensor above
      tests/test_plugin.py              passes as generated once the package is installed (pip install ./gmn-fingertips)

and with ``--family`` also a model family for 2-d senses (``fingertips-grid``: ``nets.py`` holds its encoder and
renderer), a camera sensor of that shape and its modality ``fingertips-luma`` (``fingertips-luma.toml``).

The distribution is NAME, the import package NAME with ``-`` -> ``_``, the entry point and the prefix of the example
sensor and modality names NAME without a leading ``gmn-`` (``fingertips``): unique names, so that two scaffolded
packages installed together do not collide.
"""

from __future__ import annotations

import keyword
import re
import sys
from pathlib import Path
from string import Template

NAME_PATTERN = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
RESERVED = {"gmn_plugins", "gmn_modalities"}

PYPROJECT = Template('''\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "$name"
version = "0.1.0"
description = "A gmn-plugins plugin: sensors and modalities for MESE"
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["gmn-plugins", "numpy"]

[project.optional-dependencies]
test = ["pytest"]

# The one table that makes it a plugin: an entry point in the group "gmn_plugins" naming the module with the hooks.
# GMN_LOAD_PLUGINS=$short loads only this plugin; GMN_LOAD_PLUGINS="" only the built-ins.
[project.entry-points.gmn_plugins]
$short = "$module"

[tool.setuptools]
packages = ["$module"]

# Without this a (non-editable) pip install silently drops the modality TOML files.
[tool.setuptools.package-data]
$module = ["*.toml"]

[tool.pytest.ini_options]
testpaths = ["tests"]
''')

README = Template('''\
# $name

A gmn-plugins plugin: new sensors and modalities for the MESE environment and the GMN model.

| what | name | |
|---|---|---|
| sensor | `camera.$short-mask` | (1, 64, 64) uint8 object mask of each camera view (`$module/__init__.py`) |
| modality | `$short-mask` | that sensor, whole (`$module/$short-mask.toml`) |
| modality | `$short-touch` | the five fingertip touch values of `hand.haptic` (`$module/$short-touch.toml`) |

```bash
pip install .              # again after every edit: a non-editable install copies the files
gmn-plugins list           # your modalities, status "ok" (or "broken: ..." and why)
gmn-plugins sensors        # every sensor; `gmn-plugins sensors hand.haptic` names its 132 indices
gmn-plugins check $short-mask
pytest tests               # registry, sensor shapes, conformance, a dry run
gmn-run SPEC 'modalities=["rgb", "$short-touch", "$short-mask"]'
```

Rename the examples, add sensors to `SENSORS` and TOML files beside `__init__.py`: every `*.toml` there is
registered. Tutorial: `docs/writing-a-modality-plugin.md` of gmn-plugins.
''')

INIT = Template('''\
"""$name: a gmn-plugins plugin (made by ``gmn-plugins new $name``).

It registers the sensors in ``SENSORS`` and every modality TOML file beside this file. After an edit, ``pip install .``
again, then ``gmn-plugins list`` and ``pytest tests``.
"""

from importlib.resources import files

import numpy as np

from gmn_plugins.plugin import Sensor, hookimpl


def record_object_mask(rig) -> np.ndarray:
    """(1, 64, 64) uint8: 255 where a block of the object is seen, 0 elsewhere.

    ``rig`` is the MESE camera rig (``gmn_plugins.plugin.CameraRig``), already posed at the view. Its public API
    ``rig.render(kind, size=None, camera="view")`` renders ``"rgb"`` (3, H, W) uint8, ``"depth"`` (H, W) float32
    metres, ``"segmentation"`` (H, W) int32 block index (-1: no block) or ``"mask"`` (H, W) bool; the rig makes the
    renderers it needs and closes them itself. Return exactly the declared shape and dtype.
    """
    mask = rig.render("mask", size=(64, 64))
    return (mask * 255).astype(np.uint8)[None]


OBJECT_MASK = Sensor(
    name="camera.$short-mask",
    shape=(1, 64, 64),
    dtype="uint8",
    units="255 = object, 0 = background",
    query="camera",  # "camera": record(rig) at every viewpoint; "wrist": record(hand) after every grasp
    record=record_object_mask,
    normalization="uint8",  # model input: 0..255 -> [0, 1]; or "minmax" (with physical_range), "none"
    description="Object mask of the 64x64 camera view",
)

SENSORS = [OBJECT_MASK]


@hookimpl
def register_sensors(register):
    for sensor in SENSORS:
        register(sensor)


@hookimpl
def register_modalities(register):
    for path in sorted(files(__name__).iterdir(), key=lambda p: p.name):
        if path.name.endswith(".toml"):
            register(path)
''')

TOUCH_TOML = Template('''\
# A slice of the built-in hand sensor: its five fingertip (distal) touch values, in newtons. No code needed.
# `gmn-plugins sensors hand.haptic` names all 132 indices (113-131 are the 19 touch sensors).
name = "$short-touch"
description = "Touch of the five fingertips (thumb, index, middle, ring, pinky distal)"
sensor = "hand.haptic"
query = "wrist"
family = "vector"
shape = [5]

[slice]
indices = [119, 122, 125, 128, 131]
''')

MASK_TOML = Template('''\
# The object mask of every camera view: the sensor camera.$short-mask of __init__.py, whole.
name = "$short-mask"
description = "Object mask of the 64x64 camera view"
sensor = "camera.$short-mask"
query = "camera"
family = "image"
shape = [1, 64, 64]
''')

TEST = Template('''\
"""Tests of $name as installed (``pip install .`` first): registry, sensor shapes, conformance, a dry run.

They read the sensors from ``SENSORS`` and the modalities from the TOML files, so they keep passing as you edit both.
"""

import json
import subprocess
import sys
import tomllib
from importlib.resources import files

import numpy as np
import pytest

import $module as plugin
from gmn_plugins.plugin import SceneMaker, check_modality, load_registry

DISTRIBUTION = "$name"


@pytest.fixture(scope="module")
def registry():
    return load_registry()


def own_modalities(registry) -> list[str]:
    return sorted(name for name, m in registry.modalities.items() if m.distribution == DISTRIBUTION)


def test_the_registry_lists_the_sensors_and_modalities(registry):
    statuses = [p for p in registry.plugins if p.distribution == DISTRIBUTION]
    assert statuses, f"{DISTRIBUTION} is not installed: pip install ."
    assert not any(p.error for p in statuses), [p.error for p in statuses]
    for sensor in plugin.SENSORS:
        assert registry.sensors.get(sensor.name) == sensor, f"sensor {sensor.name} is not registered"
    names = own_modalities(registry)
    assert names, "no modality registered (are the TOML files package data?)"
    for path in files(plugin).iterdir():
        if path.name.endswith(".toml"):
            name = tomllib.loads(path.read_text())["name"]
            assert "{" in name or name in names, f"{path.name}: modality {name!r} is not registered"


@pytest.mark.skipif(not plugin.SENSORS, reason="the plugin has no sensors")
def test_each_sensor_records_its_declared_shape_and_dtype(registry):
    with SceneMaker(list(plugin.SENSORS), blocks=5, views=2, physics="fast", kinds=registry.query_kinds) as maker:
        scene = maker.make(0, "train", 0)  # one MESE scene, 2 views
        for sensor in plugin.SENSORS:
            assert scene[sensor.name].shape == (2, *sensor.shape)
            rig = maker.rigs[sensor.query]
            value = sensor.record(rig)  # the rig as the last view left it
            assert isinstance(value, np.ndarray), f"{sensor.name}: record() returned {type(value).__name__}"
            assert (value.shape, value.dtype) == (tuple(sensor.shape), np.dtype(sensor.dtype)), sensor.name
            assert value.dtype.kind not in "fc" or np.isfinite(value).all(), sensor.name


def test_each_modality_passes_the_conformance_check(registry):
    for name in own_modalities(registry):
        check_modality(registry.modalities[name])  # what `gmn-plugins check NAME` runs


def test_a_tiny_spec_with_every_modality_dry_runs(registry, tmp_path):
    names = own_modalities(registry)
    spec = tmp_path / "tiny.toml"
    spec.write_text(f'name = "tiny"\\nmodalities = {json.dumps(names)}\\n')
    result = subprocess.run([sys.executable, "-m", "gmn_plugins.cli.run", str(spec), "--dry-run"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    for name in names:
        assert name in result.stdout, result.stdout
''')


FAMILY_INIT = Template('''

# ------------------------------------------------------------------------------------------------------------------
# A model family (gmn-plugins new --family): senses of shape (H, W), the networks in nets.py. The contract of each
# method: docs/writing-a-modality-plugin.md of gmn-plugins, section 13; `gmn-plugins check $short-luma` checks it.

import math

from gmn_plugins.plugin import Family

SIZE = 16


def record_luma(rig) -> np.ndarray:
    """(16, 16) float32 luminance in [0, 1] of the camera view: its RGB averaged over channels and 4x4 pixels."""
    rgb = rig.render("rgb", size=(64, 64)).astype(np.float32) / 255.0
    return rgb.mean(0).reshape(SIZE, 4, SIZE, 4).mean((1, 3)).astype(np.float32)


LUMA = Sensor(
    name="camera.$short-luma",
    shape=(SIZE, SIZE),
    dtype="float32",
    units="luminance in [0, 1]",
    query="camera",
    record=record_luma,
    normalization="none",  # already in [0, 1]
    description="Luminance of the camera view, 16x16",
)
SENSORS.append(LUMA)


class GridFamily(Family):
    """Senses (H, W): an H/4 x W/4 latent grid, a Gaussian likelihood, drawn as grey pictures."""

    def latent_grid(self, shape):
        return (max(1, shape[0] // 4), max(1, shape[1] // 4))

    def draw(self, sense):
        """A sense or a prediction (H, W) as a picture (1, H, W), float in [0, 1] (or None: not drawn)."""
        return np.clip(np.asarray(sense, np.float32), 0.0, 1.0)[None]

    def nll(self, mean, senses, sigma):
        """Elementwise negative log-likelihood in nats, (N, H, W) float32 like ``mean`` and ``senses``: never summed
        or averaged here (the engine sums it over the elements of the targets)."""
        return 0.5 * ((senses - mean) / sigma) ** 2 + (math.log(sigma) + 0.5 * math.log(2 * math.pi))


GRID = GridFamily("$short-grid", 2, "$module.nets:GridEncoder", "$module.nets:GridRenderer",
                  "senses (H, W); latent grid H/4 x W/4")


@hookimpl
def register_families(register):
    register(GRID)
''')

FAMILY_NETS = Template('''\
"""The networks of the family $short-grid (torch): imported only when a model is built, since the family names them
as "module:Class"."""

import torch
import torch.nn as nn
import torch.nn.functional as F

from gmn_plugins.plugin import Encoder, Renderer, broadcast_query


class GridEncoder(Encoder):
    """(N, H, W) senses and (N, Q) encoded queries -> (N, r, h, w) on the latent grid: a strided conv, resized to
    the grid, the query joined, one conv."""

    def __init__(self, shape, preset, grid, query_dim):
        super().__init__(preset.r_channels, grid)
        r, self.grid = preset.r_channels, tuple(grid)
        self.down = nn.Conv2d(1, r, 4, stride=4)
        self.mix = nn.Conv2d(r + query_dim, r, 3, padding=1)

    def forward(self, senses, queries):
        x = F.relu(self.down(senses[:, None]))
        x = F.interpolate(x, size=self.grid, mode="bilinear", align_corners=False)
        return F.relu(self.mix(torch.cat([x, broadcast_query(queries, self.grid)], 1)))


class GridRenderer(Renderer):
    """The shared ConvLSTM canvas (N, hidden, h, w), decoded by ``self.decoder`` (a 1x1 conv) and resized: the
    mean (N, H, W), float32, the senses' own shape."""

    def __init__(self, shape, preset, grid, query_dim):
        super().__init__(preset, grid, query_dim)
        self.size = tuple(shape)
        self.decoder = nn.Conv2d(preset.hidden, 1, 1)

    def forward(self, z, queries, scene):
        canvas = super().forward(z, queries, scene)
        return F.interpolate(canvas, size=self.size, mode="bilinear", align_corners=False)[:, 0]
''')

FAMILY_TOML = Template('''\
# A modality of the family $short-grid (__init__.py): the sensor camera.$short-luma, whole.
name = "$short-luma"
description = "Luminance of the camera view, 16x16, a 2-d sense"
sensor = "camera.$short-luma"
query = "camera"
family = "$short-grid"
shape = [16, 16]
''')


def package_names(name: str) -> tuple[str, str]:
    """(import package, short name) of a distribution name: ``gmn-fingertips`` -> (``gmn_fingertips``,
    ``fingertips``). Raises ``ValueError`` (one line) for a name that cannot be a plugin package."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ValueError(f"invalid plugin name {name!r}: use lowercase letters, digits and single hyphens, starting "
                         f"with a letter, e.g. gmn-fingertips")  # fmt: skip
    module = name.replace("-", "_")
    if module in RESERVED or module in sys.stdlib_module_names or keyword.iskeyword(module):
        raise ValueError(f"invalid plugin name {name!r}: its import name {module!r} is taken; choose another")
    short = name.removeprefix("gmn-") if name.startswith("gmn-") else name
    return module, short


def new_package(name: str, dest: Path, family: bool = False) -> Path:
    """Write a plugin package skeleton into ``dest/name`` and return its path (see the module docstring).
    ``family``: also a model family for 2-d senses (H, W) (``NAME-grid``: networks in ``MODULE/nets.py``), a camera
    sensor of that shape and its modality ``NAME-luma`` (``gmn-plugins new NAME --family``).

    ``dest`` is made if missing. Raises ``ValueError`` (one line) for an invalid name, when ``dest`` (or a directory
    above it) is a file, or when ``dest/name`` exists.
    """
    module, short = package_names(name)
    dest = Path(dest)
    blocking = next((p for p in (dest, *dest.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:  # the user's --dir, not the machine: one line, exit 2
        raise ValueError(f"--dir {dest}: {blocking} is a file, not a directory: choose a directory")
    root = dest / name
    if root.exists() or root.is_symlink():
        raise ValueError(f"{root} already exists: choose another name or directory")
    values = {"name": name, "module": module, "short": short}
    contents = {
        "pyproject.toml": PYPROJECT,
        "README.md": README,
        f"{module}/__init__.py": INIT,
        f"{module}/{short}-touch.toml": TOUCH_TOML,
        f"{module}/{short}-mask.toml": MASK_TOML,
        "tests/test_plugin.py": TEST,
    }
    if family:
        contents[f"{module}/__init__.py"] = Template(INIT.template + FAMILY_INIT.template)
        contents[f"{module}/nets.py"] = FAMILY_NETS
        contents[f"{module}/{short}-luma.toml"] = FAMILY_TOML
    for relative, template in contents.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.substitute(values))
    return root

