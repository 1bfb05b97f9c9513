"""MESE sensors and options on real MuJoCo: the 48-px camera, the all-black guard, the real MPL through the spec,
the saturation option and the strict ``data.hand`` field."""

import json

import numpy as np
import pytest
from PIL import Image

from conftest import MPL_XML
from gmn_plugins.mese.camera import CameraRig, sample_viewpoint
from gmn_plugins.data.format import load_split
from gmn_plugins.mese.generate import DatasetConfig, generate
from gmn_plugins.mese.scene import SATURATION, SceneMaker
from gmn_plugins.mese.shapes import block_centres, sample_colours, sample_walk
from gmn_plugins.core.plugins import load_registry
from gmn_plugins.core.spec import SpecError, load_spec
from gmn_plugins.training.experiment import dataset_config


def test_rgb48_is_the_centre_crop_of_the_64_view():
    """camera.rgb48 = the 0.88 centre crop of the 64-px field of view at 48 px: compare with 56 of 64 px resized."""
    sensor = load_registry().sensor("camera.rgb48")
    assert sensor.shape == (3, 48, 48) and sensor.dtype == "uint8" and sensor.query == "camera"
    rng = np.random.default_rng(0)
    with CameraRig(5) as rig:
        rig.set_object(block_centres(sample_walk(rng, 5)), sample_colours(rng, 5))
        for _ in range(4):
            rig.look_from(sample_viewpoint(rng))
            full, small = rig.render_rgb(), np.asarray(sensor.record(rig))
            assert small.shape == (3, 48, 48) and small.dtype == np.uint8
            crop = Image.fromarray(full[:, 4:60, 4:60].transpose(1, 2, 0)).resize((48, 48), Image.BILINEAR)
            crop = np.asarray(crop).transpose(2, 0, 1).astype(float)
            assert np.abs(crop - small).mean() < 3.0  # measured 0.5-1.0 of 255
            a, b = crop.max(0) > 10, small.max(0) > 10
            assert (a & b).sum() / (a | b).sum() > 0.85  # measured 0.92-0.94
            assert b.sum() > 150


def test_all_black_render_is_rendered_again():
    class Black:
        def update_scene(self, *args, **kwargs):
            pass

        def render(self):
            return np.zeros((64, 64, 3), np.uint8)

        def close(self):
            self.closed = True

    with CameraRig(5) as rig:
        rig.set_object(block_centres(np.array([0, 0, 2, 2])), np.ones((5, 3)))
        rig.look_from(np.array([-1.0, 0, 0, 0, 0]))
        black = rig._renderer = Black()
        image = rig.render_rgb()
        assert black.closed and image.shape == (3, 64, 64) and image.max() >= 1


def test_saturation_option():
    with SceneMaker([], blocks=5, views=1, physics="fast", saturation=SATURATION["paper"]) as maker:
        paper = np.concatenate([maker.make(0, "train", i)["colours"] for i in range(20)])
    code = np.concatenate([SceneMaker([], 5, 1, "fast").make(0, "train", i)["colours"] for i in range(20)])
    saturation = lambda rgb: (rgb.max(1) - rgb.min(1)) / rgb.max(1)  # noqa: E731
    assert saturation(paper).max() < 0.75 and saturation(code).min() >= 0.75 - 1e-6
    assert paper.max(1).min() == pytest.approx(1.0) and code.max(1).min() == pytest.approx(1.0)  # value 1


def test_data_hand_field_is_strict(quickstart_spec):
    spec = load_spec(quickstart_spec, ['data.hand={mjcf="%s"}' % MPL_XML] if MPL_XML.exists() else [])
    assert dataset_config(spec, []).hand == ({"mjcf": str(MPL_XML)} if MPL_XML.exists() else "builtin")
    for override, message in [("data.hand=mpl", 'data.hand: expected "builtin" or a table {mjcf = "PATH"}'),
                              ('data.hand={mjcf="no/such.xml"}', "data.hand.mjcf: no such file 'no/such.xml'"),
                              ("data.hand={mjcf=1}", "data.hand.mjcf: expected str"),
                              ('data.saturation="text"', "data.saturation: 'text' is not one of")]:  # fmt: skip
        with pytest.raises(SpecError) as err:
            load_spec(quickstart_spec, [override])
        assert str(err.value) == f"{quickstart_spec}: {message}" or str(err.value).startswith(f"{quickstart_spec}: {message}")
        assert len(str(err.value).splitlines()) == 1


def test_real_mpl_dataset_through_the_spec(quickstart_spec, tmp_path):
    if not MPL_XML.exists():
        pytest.skip(f"real MPL hand not available at {MPL_XML} (shared assets are not part of the repo)")
    spec = load_spec(quickstart_spec, ['data.hand={mjcf="%s"}' % MPL_XML, "data.physics=faithful"])
    registry = load_registry()
    config = dataset_config(spec, registry.resolve(["haptic"], str(quickstart_spec)))
    config = DatasetConfig(seed=0, blocks=5, views=2, physics=config.physics, hand=config.hand, shard_size=1,
                           sensors=("hand.haptic", "camera.rgb48"), splits={"train": 1})
    manifest = generate(tmp_path, config, workers=1, progress=False)
    assert manifest["hand"] == {"mjcf": str(MPL_XML)} and manifest["physics"] == "faithful"
    assert len(manifest["hand_sha256"]) == 64
    assert manifest["sensor_info"]["camera.rgb48"]["resolution"] == [48, 48]
    assert manifest["sensor_info"]["camera.rgb48"]["fovy_degrees"] == pytest.approx(12.19, abs=0.01)
    assert manifest["sensor_info"]["hand.haptic"]["dtype"] == "float32"
    train = load_split(tmp_path, "train")
    assert train["hand.haptic"].shape == (1, 2, 132) and train["camera.rgb48"].shape == (1, 2, 3, 48, 48)
    assert np.all(train["hand.haptic"] <= 150) and abs(train["hand.haptic"][..., 0]).max() < 0.01  # wrist locked
    assert json.loads((tmp_path / "config.json").read_text())["hand"] == {"mjcf": str(MPL_XML)}


def test_mpl_hull_vertices_and_wrist_lock_reach_the_dataset_config_only_when_set(quickstart_spec):
    if not MPL_XML.exists():
        pytest.skip(f"real MPL hand not available at {MPL_XML} (shared assets are not part of the repo)")
    registry = load_registry()
    for hull, expected in ((None, {"mjcf": str(MPL_XML)}), (32, {"mjcf": str(MPL_XML), "hull_vertices": 32})):
        table = f'{{mjcf="{MPL_XML}"' + ("" if hull is None else f", hull_vertices={hull}") + "}"
        spec = load_spec(quickstart_spec, [f"data.hand={table}"])
        assert dataset_config(spec, registry.resolve(["haptic"], str(quickstart_spec))).hand == expected
    spec = load_spec(quickstart_spec, [f'data.hand={{mjcf="{MPL_XML}", wrist_lock="equality"}}'])
    assert dataset_config(spec, registry.resolve(["haptic"])).hand == {"mjcf": str(MPL_XML), "wrist_lock": "equality"}
    with pytest.raises(SpecError, match="data.hand.wrist_lock"):
        load_spec(quickstart_spec, [f'data.hand={{mjcf="{MPL_XML}", wrist_lock="glue"}}'])
    with pytest.raises(SpecError) as err:
        load_spec(quickstart_spec, [f'data.hand={{mjcf="{MPL_XML}", hull_vertices=2}}'])
    assert str(err.value) == (f"{quickstart_spec}: data.hand.hull_vertices: must be 0 (full hulls) or in "
                              f"[4, 100000], got 2")
