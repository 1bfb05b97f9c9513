"""The camera rig: the object in a black room, seen from viewpoints on the radius-1 sphere (reference §1–2).

The model is compiled once; per scene only the blocks' body positions and geom colours change, and per view only
the camera pose. Images are rendered at their final size with the effective field of view of the authors' 150-pixel
centre crop of a 512-pixel, 45° frame: fovy = 2·atan(tan 22.5° · 150/512) = 13.84°; shadows off.

The 48-pixel variant (``render_rgb48``, sensor ``camera.rgb48``) is the authors' |M| = 8/14 loader input: the
centre 132 of the 150 crop pixels resized to 48, i.e. the same camera with fovy = 2·atan(tan 22.5° · 132/512) =
12.19°, rendered directly at 48x48 by a second camera of the rig posed with the first.

Sensors read the rig through ``CameraRig.render(kind, size, camera)``: RGB, depth in metres, per-pixel block ids or the
object mask, at any size, through either camera (docs/writing-a-modality-plugin.md).
"""

from __future__ import annotations

import math
import os

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")
import mujoco  # noqa: E402  (MUJOCO_GL must be set before import)

from .shapes import BLOCK_HALF_SIZE  # noqa: E402

FOVY_DEGREES = math.degrees(2 * math.atan(math.tan(math.radians(22.5)) * 150 / 512))  # 13.84°
FOVY48_DEGREES = math.degrees(2 * math.atan(math.tan(math.radians(22.5)) * 132 / 512))  # 12.19°: 0.88 centre crop
MAX_RENDER_ATTEMPTS = 3  # an all-black render (max pixel < 1) is retried on a rebuilt renderer (reference §2)
CAMERA_RADIUS = 1.0  # metres
RENDER_KINDS = ("rgb", "depth", "segmentation", "mask")  # what ``CameraRig.render`` makes
CAMERAS = {"view": 0, "view48": 1}  # the rig's cameras by name -> MuJoCo camera id (fovy 13.84° and 12.19°)


def room_xml() -> str:
    """Six black planes (floor/ceiling at z = ±5 m, walls at ±7 m) and the spot light of reference §1."""
    black = 'rgba="0 0 0 1" material="black"'
    planes = [
        ("0 0 -5", "1 0 0 0"), ("0 0 5", "0 1 0 0"),
        ("7 0 0", "0.7071068 0 -0.7071068 0"), ("-7 0 0", "0.7071068 0 0.7071068 0"),
        ("0 7 0", "0.7071068 0.7071068 0 0"), ("0 -7 0", "0.7071068 -0.7071068 0 0"),
    ]  # fmt: skip
    geoms = "\n".join(
        f'<geom type="plane" size="10 10 0.1" pos="{p}" quat="{q}" {black} contype="0" conaffinity="0"/>'
        for p, q in planes
    )
    light = (
        '<light pos="0 0 1.5" dir="0 0 -1" directional="false" cutoff="35" exponent="10" '
        'diffuse=".7 .7 .7" specular=".3 .3 .3" castshadow="false"/>'
    )
    return light + "\n" + geoms


def blocks_xml(n_blocks: int) -> str:
    """``n_blocks`` joint-less bodies ``block{i}``, one box geom each (positions and colours set per scene)."""
    h = BLOCK_HALF_SIZE
    return "\n".join(
        f'<body name="block{i}" pos="0 0 {-10 - i}"><geom name="block{i}" type="box" size="{h} {h} {h}" '
        f'rgba="1 1 1 1"/></body>'
        for i in range(n_blocks)
    )


def camera_xml(n_blocks: int) -> str:
    """The camera world: room, light, blocks and one movable camera ``view``."""
    return f"""
<mujoco model="mese-camera">
  <statistic extent="1" center="0 -0.2 0.2"/>
  <visual>
    <headlight diffuse=".6 .6 .6" specular="0 0 0"/>
    <quality shadowsize="0"/>
  </visual>
  <asset><material name="black" specular="0" shininess="0" reflectance="0"/></asset>
  <worldbody>
    {room_xml()}
    {blocks_xml(n_blocks)}
    <camera name="view" pos="0 0 1" fovy="{FOVY_DEGREES:.6f}"/>
    <camera name="view48" pos="0 0 1" fovy="{FOVY48_DEGREES:.6f}"/>
  </worldbody>
</mujoco>"""


def sample_viewpoint(rng: np.random.Generator) -> np.ndarray:
    """(5,) float64 camera query (x, y, z, pitch, yaw): pitch ~ U(-π/2, π/2) stored wrapped to [0, 2π), yaw ~ U(0, 2π).

    Position = -1.0·(cos p cos y, cos p sin y, sin p) on the radius-1 sphere (reference §2).
    """
    pitch = rng.uniform(-math.pi / 2, math.pi / 2)
    yaw = rng.uniform(0.0, 2 * math.pi)
    pos = -CAMERA_RADIUS * np.array([math.cos(pitch) * math.cos(yaw), math.cos(pitch) * math.sin(yaw), math.sin(pitch)])
    return np.array([*pos, pitch % (2 * math.pi), yaw])


def camera_frame(pitch: float, yaw: float) -> np.ndarray:
    """(3, 3) rotation of the camera: rig R = Rz(yaw)·Ry(-pitch), camera = R·Rz(-π/2)·Rx(π/2) (its -z looks at the origin)."""

    def rz(a: float) -> np.ndarray:
        c, s = math.cos(a), math.sin(a)
        return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])

    def ry(a: float) -> np.ndarray:
        c, s = math.cos(a), math.sin(a)
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])

    def rx(a: float) -> np.ndarray:
        c, s = math.cos(a), math.sin(a)
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])

    return rz(yaw) @ ry(-pitch) @ rz(-math.pi / 2) @ rx(math.pi / 2)


class CameraRig:
    """Renders the object from any viewpoint. Compile once, ``set_object`` per scene, ``look_from`` per view.

    A camera sensor's ``record(rig)`` receives the rig posed at its view and reads it through ``render`` (the public
    API: any of ``RENDER_KINDS``, any size, either camera), or the shortcuts ``render_rgb``, ``render_rgb48`` and
    ``render_depth``. ``model`` / ``data`` are the MuJoCo objects (read them, do not change them).

    Renderers (one MuJoCo ``Renderer``, i.e. one GL context, per (camera, size), shared by all kinds) are made on first
    use. ``close()`` (or leaving a ``with`` block) closes every one of them; closing twice is harmless, and a render
    after ``close()`` makes a new renderer, which the next ``close()`` closes.
    """

    def __init__(self, n_blocks: int = 5, size: tuple[int, int] = (64, 64)):
        self.model = mujoco.MjModel.from_xml_string(camera_xml(n_blocks))
        self.data = mujoco.MjData(self.model)
        self.n_blocks = n_blocks
        self.height, self.width = size
        self._body_ids = [self.model.body(f"block{i}").id for i in range(n_blocks)]
        self._geom_ids = [self.model.geom(f"block{i}").id for i in range(n_blocks)]
        # geom id -> block index, -1 for the room's planes; one extra -1 at the end, so that id -1 (nothing) maps to -1
        self._block_of_geom = np.full(self.model.ngeom + 1, -1, np.int32)
        self._block_of_geom[self._geom_ids] = np.arange(n_blocks, dtype=np.int32)
        self._renderers: dict[tuple[int, int, int], mujoco.Renderer] = {}  # (camera id, height, width) -> renderer

    def set_object(self, block_centres: np.ndarray, rgb: np.ndarray) -> None:
        """Place the blocks: ``block_centres`` (n, 3) metres, ``rgb`` (n, 3) in [0, 1]; n must equal ``n_blocks``."""
        if len(block_centres) != self.n_blocks:
            raise ValueError(f"expected {self.n_blocks} blocks, got {len(block_centres)}")
        self.model.body_pos[self._body_ids] = block_centres
        self.model.geom_rgba[self._geom_ids, :3] = rgb
        self.model.geom_rgba[self._geom_ids, 3] = 1.0

    def look_from(self, query: np.ndarray) -> None:
        """Pose the camera at a (5,) query (x, y, z, pitch, yaw) looking at the origin with the world z axis up."""
        quat = np.empty(4)
        mujoco.mju_mat2Quat(quat, camera_frame(query[3], query[4]).reshape(-1))
        self.model.cam_pos[:2] = query[:3]
        self.model.cam_quat[:2] = quat
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_camlight(self.model, self.data)

    # ---------------------------------------------------------------------------------------------- the public API

    def render(self, kind: str = "rgb", size: tuple[int, int] | None = None, camera: str = "view") -> np.ndarray:
        """Render the current view (the pose of the last ``look_from``) as a new numpy array.

        ``kind`` (``RENDER_KINDS``):

        - ``"rgb"``: (3, H, W) uint8, channels first like the ``camera.rgb`` sensor. An all-black frame (a rendering
          glitch: the object is always in view) is rendered again on a rebuilt renderer; ``RuntimeError`` after
          ``MAX_RENDER_ATTEMPTS``.
        - ``"depth"``: (H, W) float32, metres along the optical axis (the distance to the camera's image plane, not
          along the ray). The object is about 1 m away; the black room's planes (5-7 m from the origin) further.
        - ``"segmentation"``: (H, W) int32, the index 0 .. ``n_blocks`` - 1 of the block seen at each pixel, -1 where
          none is (walls, floor, ceiling).
        - ``"mask"``: (H, W) bool, True where any block is seen: the object mask (= ``segmentation >= 0``).

        ``size``: (H, W) pixels, default the camera's own (``view``: the rig's ``size``, 64x64; ``view48``: 48x48); any
        size within MuJoCo's offscreen buffer (H <= 480, W <= 640) works, at the same field of view.
        ``camera``: ``"view"`` (fovy 13.84°, what ``camera.rgb`` sees) or ``"view48"`` (fovy 12.19°, the 0.88 centre
        crop of ``camera.rgb48``); both are posed by ``look_from``. Raises ``ValueError`` for an unknown kind or
        camera or a bad size.
        """
        if kind not in RENDER_KINDS:
            raise ValueError(f"unknown render kind {kind!r}; expected one of {', '.join(RENDER_KINDS)}")
        if camera not in CAMERAS:
            raise ValueError(f"unknown camera {camera!r}; expected one of {', '.join(CAMERAS)}")
        camera_id = CAMERAS[camera]
        if size is None:
            size = (self.height, self.width) if camera == "view" else (48, 48)
        if len(size) != 2 or not all(isinstance(n, (int, np.integer)) and n > 0 for n in size):
            raise ValueError(f"size must be (height, width) in pixels, got {size!r}")
        key = (camera_id, int(size[0]), int(size[1]))
        if kind == "rgb":
            return self._render_guarded(key)
        renderer = self._renderer_for(key)
        if kind == "depth":
            renderer.enable_depth_rendering()
            try:
                renderer.update_scene(self.data, camera=camera_id)
                return renderer.render().astype(np.float32)
            finally:
                renderer.disable_depth_rendering()
        renderer.enable_segmentation_rendering()
        try:
            renderer.update_scene(self.data, camera=camera_id)
            ids = renderer.render()  # (H, W, 2): MuJoCo object id and object type, (-1, -1) for nothing
        finally:
            renderer.disable_segmentation_rendering()
        geom = np.where(ids[..., 1] == int(mujoco.mjtObj.mjOBJ_GEOM), ids[..., 0], -1)
        blocks = self._block_of_geom[geom]
        return blocks >= 0 if kind == "mask" else blocks

    def render_rgb(self) -> np.ndarray:
        """(3, H, W) uint8 RGB of the current view (fovy 13.84°): ``render("rgb")``. An all-black frame (max pixel < 1,
        a rendering glitch: the object is always in view) is rendered again on a rebuilt renderer; ``RuntimeError``
        after ``MAX_RENDER_ATTEMPTS``."""
        return self.render("rgb")

    def render_rgb48(self) -> np.ndarray:
        """(3, 48, 48) uint8 RGB of the current view with fovy 12.19°: the authors' 0.88 centre crop of the 64-px
        field of view, rendered directly at 48x48 (same guard as ``render_rgb``): ``render("rgb", camera="view48")``."""
        return self.render("rgb", camera="view48")

    def render_depth(self) -> np.ndarray:
        """(H, W) float32 depth in metres along the optical axis of the current view: ``render("depth")``."""
        return self.render("depth")

    def close(self) -> None:
        """Release every renderer (GL context) the rig made. Closing twice is harmless."""
        renderers, self._renderers = self._renderers, {}
        for renderer in renderers.values():
            renderer.close()

    def __enter__(self) -> "CameraRig":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---------------------------------------------------------------------------------------------- internals

    def _renderer_for(self, key: tuple[int, int, int]) -> mujoco.Renderer:
        renderer = self._renderers.get(key)
        if renderer is None:
            renderer = self._renderers[key] = mujoco.Renderer(self.model, key[1], key[2])
        return renderer

    def _render_guarded(self, key: tuple[int, int, int]) -> np.ndarray:
        for _ in range(MAX_RENDER_ATTEMPTS):
            renderer = self._renderer_for(key)
            renderer.update_scene(self.data, camera=key[0])
            image = renderer.render()
            if image.max() >= 1:
                return np.ascontiguousarray(image.transpose(2, 0, 1))
            renderer.close()  # the reference's guard: discard the frame, rebuild, render again
            del self._renderers[key]
        raise RuntimeError(f"{MAX_RENDER_ATTEMPTS} all-black renders in a row (GL problem?)")

    # the renderers of render_rgb / render_rgb48 under their former names (tests swap in a fake renderer)
    @property
    def _renderer(self):
        return self._renderers.get((0, self.height, self.width))

    @_renderer.setter
    def _renderer(self, renderer) -> None:
        self._set_renderer((0, self.height, self.width), renderer)

    @property
    def _renderer48(self):
        return self._renderers.get((1, 48, 48))

    @_renderer48.setter
    def _renderer48(self, renderer) -> None:
        self._set_renderer((1, 48, 48), renderer)

    def _set_renderer(self, key: tuple[int, int, int], renderer) -> None:
        if renderer is None:
            self._renderers.pop(key, None)
        else:
            self._renderers[key] = renderer
