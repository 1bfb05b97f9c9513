"""The camera rig's public render API (``CameraRig.render``), what a plugin's camera sensor calls in ``record(rig)``."""

import numpy as np
import pytest

from gmn_plugins.mese import camera as camera_module
from gmn_plugins.mese.camera import RENDER_KINDS, CameraRig, sample_viewpoint
from gmn_plugins.mese.shapes import block_centres, sample_colours, sample_walk


@pytest.fixture(scope="module")
def rig():
    rng = np.random.default_rng(0)
    with CameraRig(5) as rig:
        rig.set_object(block_centres(sample_walk(rng, 5)), sample_colours(rng, 5))
        rig.look_from(sample_viewpoint(rng))
        yield rig


def test_every_kind_has_its_documented_shape_dtype_and_units(rig):
    rgb = rig.render("rgb")
    assert rgb.shape == (3, 64, 64) and rgb.dtype == np.uint8
    depth = rig.render("depth")
    assert depth.shape == (64, 64) and depth.dtype == np.float32
    segmentation = rig.render("segmentation")
    assert segmentation.shape == (64, 64) and segmentation.dtype == np.int32
    mask = rig.render("mask")
    assert mask.shape == (64, 64) and mask.dtype == np.bool_
    assert set(RENDER_KINDS) == {"rgb", "depth", "segmentation", "mask"}

    # segmentation: block indices 0..4 and -1 elsewhere; the mask is exactly the pixels of some block
    assert set(np.unique(segmentation)) <= {-1, 0, 1, 2, 3, 4} and len(np.unique(segmentation)) >= 3
    assert (mask == (segmentation >= 0)).all()
    # the mask is where the object is: it covers the lit pixels of the RGB view (edges are anti-aliased)
    lit = rgb.max(0) > 10
    assert 200 < mask.sum() < 64 * 64 / 2
    assert (mask & lit).sum() / (mask | lit).sum() > 0.85  # measured 0.92-0.94
    # depth in metres: the object about 1 m from the camera on the radius-1 sphere, the room's planes far behind
    assert 0.8 < depth[mask].min() and depth[mask].max() < 1.2
    assert depth[~mask].min() > 4.0


def test_sizes_and_cameras(rig):
    assert rig.render("rgb", size=(32, 48)).shape == (3, 32, 48)
    assert rig.render("depth", size=(128, 128)).shape == (128, 128)
    assert rig.render("mask", size=(16, 16)).shape == (16, 16)
    # the 48-px camera: render_rgb48 is render("rgb", camera="view48"), same bytes
    assert rig.render("rgb", camera="view48").shape == (3, 48, 48)
    assert (rig.render("rgb", camera="view48") == rig.render_rgb48()).all()
    assert rig.render("mask", camera="view48").shape == (48, 48)
    # the narrower camera sees the object larger: a larger share of its pixels
    assert rig.render("mask", camera="view48").mean() > rig.render("mask").mean()


def test_the_old_methods_are_the_new_api_and_other_kinds_leave_rgb_unchanged(rig):
    before = rig.render_rgb()
    assert (rig.render("rgb") == before).all()
    assert (rig.render_depth() == rig.render("depth")).all()
    rig.render("segmentation")
    rig.render("depth")
    rig.render("mask")
    assert (rig.render_rgb() == before).all()


@pytest.mark.parametrize("kwargs, message", [
    ({"kind": "normals"}, "unknown render kind 'normals'"),
    ({"camera": "top"}, "unknown camera 'top'"),
    ({"size": (64,)}, "size must be (height, width)"),
    ({"size": (0, 64)}, "size must be (height, width)"),
])  # fmt: skip
def test_bad_arguments_are_one_clear_error(rig, kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        rig.render(**kwargs)


def test_close_closes_every_renderer_and_twice_is_harmless(monkeypatch):
    made = []

    class Counted(camera_module.mujoco.Renderer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.closes = 0
            made.append(self)

        def close(self):
            self.closes += 1
            super().close()

    monkeypatch.setattr(camera_module.mujoco, "Renderer", Counted)
    rng = np.random.default_rng(1)
    rig = CameraRig(5)
    assert made == []  # renderers are made on first use
    rig.set_object(block_centres(sample_walk(rng, 5)), sample_colours(rng, 5))
    rig.look_from(sample_viewpoint(rng))
    for kind in RENDER_KINDS:
        rig.render(kind)
    assert len(made) == 1  # one renderer per (camera, size), shared by the kinds
    rig.render("mask", size=(32, 32))
    rig.render("depth", camera="view48")
    rig.render_rgb48()
    assert len(made) == 3
    rig.close()
    assert [r.closes for r in made] == [1, 1, 1]
    rig.close()  # harmless
    assert [r.closes for r in made] == [1, 1, 1]
    # a render after close() works on a new renderer, which the next close() closes
    assert rig.render("mask").shape == (64, 64)
    assert len(made) == 4
    with rig:
        pass
    assert made[-1].closes == 1
