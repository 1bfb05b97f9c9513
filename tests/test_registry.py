"""The plugin registry: built-ins through the same hook as plugins, listing, slicing."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import run_cli
from gmn_plugins.core.plugins import load_registry


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


def _sensor_names(kinds_and_targets) -> list[str]:
    """``KIND:TARGET`` per value, ``KIND:TARGET:AXIS`` for the 3-axis IMU sensors."""
    return [f"{kind}:{target}" + (f":{axis}" if kind in ("accelerometer", "gyro") else "")
            for kind, target in kinds_and_targets for axis in ("xyz" if kind in ("accelerometer", "gyro") else "-")]


def test_haptic_index_names_follow_the_mpl_sensors():
    import mujoco

    from gmn_plugins.mese.hand import NUM_SENSORDATA, TOUCH_SITES, builtin_hand_xml, haptic_index_names

    names = haptic_index_names()
    assert len(names) == len(set(names)) == NUM_SENSORDATA == 132
    assert load_registry().sensor("hand.haptic").index_names == names
    assert names[:2] == ("jointpos:wrist_PRO", "jointpos:wrist_UDEV") and names[70] == "actuatorfrc:A_wrist_PRO"
    touch = [i for i, n in enumerate(names) if n.startswith("touch:") and n.endswith("_distal")]
    assert touch == [119, 122, 125, 128, 131]
    assert [names[i] for i in touch] == [f"touch:{site}" for site, *_ in TOUCH_SITES if site.endswith("_distal")]
    # the built-in hand's compiled sensors read exactly these joints, actuators and sites, in this order
    model = mujoco.MjModel.from_xml_string(builtin_hand_xml())
    compiled = [(mujoco.mjtSensor(t).name.removeprefix("mjSENS_").lower(), mujoco.mj_id2name(model, o, i))
                for t, o, i in zip(model.sensor_type, model.sensor_objtype, model.sensor_objid)]  # fmt: skip
    assert tuple(_sensor_names(compiled)) == names


def test_haptic_index_names_match_the_real_mpl_file():
    import xml.etree.ElementTree as ET

    from conftest import MPL_XML
    from gmn_plugins.mese.hand import haptic_index_names

    if not MPL_XML.exists():
        pytest.skip(f"real MPL hand not available at {MPL_XML} (shared assets are not part of the repo)")
    sensors = ET.parse(MPL_XML).getroot().find("sensor")
    declared = [(s.tag, s.get("joint") or s.get("actuator") or s.get("site")) for s in sensors]
    assert tuple(_sensor_names(declared)) == haptic_index_names()


def test_the_registry_knows_who_provided_each_item():
    registry = load_registry()
    assert registry.providers["sensor:hand.haptic"].name == "gmn_plugins.mese.sensors"
    assert registry.providers["family:vector"].name == "gmn_plugins.core.families"
    assert registry.providers["modality:rgb"].name == "gmn_modalities"
    provided = {key.removeprefix("modality:") for key in registry.providers if key.startswith("modality:")}
    assert provided == set(registry.modalities)


def test_the_plugin_core_finds_the_builtins_through_the_projects_own_entry_points():
    """The plugin core imports no model code and no built-in: they are entry points of the gmn-plugins
    distribution, loaded first and always (GMN_LOAD_PLUGINS restricts only third-party plugins)."""
    code = ("import sys, gmn_plugins.core.plugins as p; "
            "print(sorted(m for m in sys.modules if m.startswith(('gmn_plugins.models', 'gmn_plugins.mese', "
            "'gmn_plugins.core.families', 'gmn_modalities', 'torch')))); "
            "r = p.load_registry(); print([(s.name, s.distribution, s.source) for s in r.plugins][:4])")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "GMN_LOAD_PLUGINS": ""},
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    imported, builtins = done.stdout.splitlines()
    assert imported == "[]"
    assert eval(builtins) == [(name, "gmn-plugins", "built-in") for name in (
        "gmn_modalities", "gmn_plugins.core.families", "gmn_plugins.mese.queries", "gmn_plugins.mese.sensors")]
