"""A sensor's records are checked where they are made: a wrong shape, a lossy dtype or NaNs stop the first scene with
one line naming the sensor, what it declared and what came; nothing is written."""

import numpy as np
import pytest

from gmn_plugins.mese.scene import SceneMaker
from gmn_plugins.mese.sensors import CAMERA_RGB, HAND_HAPTIC
from gmn_plugins.core.modality import Sensor, SensorRecordError, record_problem


def camera_sensor(record, shape=(1, 64, 64), dtype="uint8") -> Sensor:
    return Sensor(name="test.mask", shape=shape, dtype=dtype, units="0/1", query="camera", record=record,
                  normalization="none")  # fmt: skip


def test_record_problem_names_what_was_declared_and_what_came():
    assert record_problem(CAMERA_RGB, np.zeros((3, 64, 64), np.uint8)) is None
    assert record_problem(HAND_HAPTIC, np.zeros(132, np.float64)) is None  # same kind: cast to float32
    assert record_problem(CAMERA_RGB, np.zeros((64, 64), np.uint8)) == (
        "record() returned shape (64, 64) uint8, declared (3, 64, 64) uint8")
    assert "returned shape (3, 64, 64) float32, declared" in record_problem(CAMERA_RGB, np.zeros((3, 64, 64), np.float32))
    assert record_problem(HAND_HAPTIC, [0.0] * 132) == "record() returned list, declared (132,) float32"
    haptic = np.zeros(132, np.float32)
    haptic[[3, 7]] = [np.nan, np.inf]
    assert record_problem(HAND_HAPTIC, haptic) == "record() returned 2 non-finite value(s) (NaN or inf) of 132"


def test_a_camera_sensor_of_the_wrong_shape_stops_the_first_scene():
    """The trap of issue 13: (64, 64) for a declared (1, 64, 64) used to pass generation and training and fail only
    while drawing samples.png."""
    bad = camera_sensor(lambda rig: (rig.render_rgb().max(axis=0) > 0).astype(np.uint8))
    with SceneMaker([bad], blocks=3, views=1, physics="fast") as maker:
        with pytest.raises(SensorRecordError) as err:
            maker.make(0, "train", 0)
    assert str(err.value) == "sensor test.mask: record() returned shape (64, 64) uint8, declared (1, 64, 64) uint8"
    good = camera_sensor(lambda rig: (rig.render_rgb().max(axis=0, keepdims=True) > 0).astype(np.uint8))
    with SceneMaker([good], blocks=3, views=2, physics="fast") as maker:
        scene = maker.make(0, "train", 0)
    assert scene["test.mask"].shape == (2, 1, 64, 64) and scene["test.mask"].any()


def test_nan_from_a_wrist_sensor_stops_the_first_scene():
    nan = Sensor(name="test.nan", shape=(2,), dtype="float32", units="N", query="wrist",
                 record=lambda hand: np.array([hand.data.sensordata[0], np.nan], np.float32))  # fmt: skip
    with SceneMaker([nan], blocks=3, views=1, physics="fast") as maker:
        with pytest.raises(SensorRecordError, match=r"sensor test.nan: record\(\) returned 1 non-finite value"):
            maker.make(0, "train", 0)


def test_gmn_data_show_draws_plugin_sensors(tmp_path):
    """The depth camera of the example plugin (installed by the test command) gets a row of its own."""
    from PIL import Image

    from conftest import run_cli

    heights = {}
    for sensors in ("camera.rgb,hand.haptic", "camera.rgb,hand.haptic,camera.depth"):
        root = tmp_path / str(len(sensors))
        made = run_cli("data", "generate", "--out", str(root), "--scenes", "1", "--views", "2", "--workers", "1",
                       "--sensors", sensors, "--no-progress")  # fmt: skip
        assert made.returncode == 0, made.stderr
        shown = run_cli("data", "show", str(root), "--scene", "0", "--out", str(root / "scene.png"))
        assert shown.returncode == 0, shown.stderr
        heights[sensors] = Image.open(root / "scene.png").size[1]
    assert heights["camera.rgb,hand.haptic,camera.depth"] > heights["camera.rgb,hand.haptic"]
