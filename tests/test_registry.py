"""The plugin registry: built-ins through the same hook as plugins, listing, slicing."""

import json

import numpy as np

from conftest import run_cli
from gmn_plugins.plugins import load_registry


def test_builtins_register_rgb_and_haptic():
    registry = load_registry()
    assert registry.modalities["rgb"].shape == (3, 64, 64)
    assert registry.modalities["haptic"].shape == (132,)
    assert registry.modalities["rgb"].sensor.name == "camera.rgb"
    assert registry.modalities["haptic"].spec.query == "wrist"
    assert registry.modalities["rgb"].spec_path.endswith("rgb.toml")
    assert not [p for p in registry.plugins if p.error]


def test_slicing_is_declarative():
    rgb = load_registry().modalities["rgb"]
    raw = np.arange(2 * 3 * 64 * 64).reshape(2, 3, 64, 64)
    assert np.array_equal(rgb.slice(raw), raw)


def test_list_prints_one_row_per_modality():
    result = run_cli("plugins", "list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].split() == ["NAME", "SENSOR", "SHAPE", "QUERY", "FAMILY", "DISTRIBUTION", "SOURCE", "STATUS"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["rgb"][1:5] == ["camera.rgb", "3x64x64", "camera", "image"] and rows["rgb"][-1] == "ok"
    assert rows["haptic"][1:5] == ["hand.haptic", "132", "wrist", "vector"]
    assert rows["rgb"][5].startswith("gmn-plugins==") and rows["rgb"][6] == "built-in"
    listed = {r["name"]: r for r in json.loads(run_cli("plugins", "list", "--json").stdout)}
    assert len(lines) - 1 == len(listed) >= 105
    assert listed["haptic"]["spec"].endswith("haptic.toml") and listed["haptic"]["shape"] == [132]
