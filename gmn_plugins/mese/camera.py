"""The camera rig: the object in a black room, seen from viewpoints on the radius-1 sphere (reference §1–2).

The model is compiled once; per scene only the blocks' body positions and geom colours change, and per view only
the camera pose. Images are rendered at their final size with the effective field of view of the authors' 150-pixel
centre crop of a 512-pixel, 45° frame: fovy = 2·atan(tan 22.5° · 150/512) = 13.84°; shadows off.

The 48-pixel variant (``render_rgb48``, sensor ``camera.rgb48``) is the authors' |M| = 8/14 loader input: the
centre 132 of the 150 crop pixels resized to 48, i.e. the same camera with fovy = 2·atan(tan 22.5° · 132/512) =
12.19°, rendered directly at 48x48 by a second camera of the rig posed with the first.
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

    Close it with ``close()`` (or use it as a context manager): the GL context is released explicitly.
    """

    def __init__(self, n_blocks: int = 5, size: tuple[int, int] = (64, 64)):
        self.model = mujoco.MjModel.from_xml_string(camera_xml(n_blocks))
        self.data = mujoco.MjData(self.model)
        self.n_blocks = n_blocks
        self.height, self.width = size
        self._body_ids = [self.model.body(f"block{i}").id for i in range(n_blocks)]
        self._geom_ids = [self.model.geom(f"block{i}").id for i in range(n_blocks)]
        self._renderer = mujoco.Renderer(self.model, self.height, self.width)
        self._renderer48 = None  # made on first use

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

    def render_rgb(self) -> np.ndarray:
        """(3, H, W) uint8 RGB of the current view (fovy 13.84°). An all-black frame (max pixel < 1, a rendering
        glitch: the object is always in view) is rendered again on a rebuilt renderer; ``RuntimeError`` after
        ``MAX_RENDER_ATTEMPTS``."""
        return self._render_guarded("_renderer", (self.height, self.width), camera=0)

    def render_rgb48(self) -> np.ndarray:
        """(3, 48, 48) uint8 RGB of the current view with fovy 12.19°: the authors' 0.88 centre crop of the 64-px
        field of view, rendered directly at 48x48 (same guard as ``render_rgb``)."""
        return self._render_guarded("_renderer48", (48, 48), camera=1)

    def _render_guarded(self, attr: str, size: tuple[int, int], camera: int) -> np.ndarray:
        for _ in range(MAX_RENDER_ATTEMPTS):
            renderer = getattr(self, attr)
            if renderer is None:
                renderer = mujoco.Renderer(self.model, *size)
                setattr(self, attr, renderer)
            renderer.update_scene(self.data, camera=camera)
            image = renderer.render()
            if image.max() >= 1:
                return np.ascontiguousarray(image.transpose(2, 0, 1))
            renderer.close()  # the reference's guard: discard the frame, rebuild, render again
            setattr(self, attr, None)
        raise RuntimeError(f"{MAX_RENDER_ATTEMPTS} all-black renders in a row (GL problem?)")

    def render_depth(self) -> np.ndarray:
        """(H, W) float32 depth in metres along the optical axis of the current view."""
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.model, self.height, self.width)
        self._renderer.enable_depth_rendering()
        try:
            self._renderer.update_scene(self.data, camera=0)
            return self._renderer.render().astype(np.float32)
        finally:
            self._renderer.disable_depth_rendering()

    def close(self) -> None:
        """Release the GL context."""
        for attr in ("_renderer", "_renderer48"):
            if getattr(self, attr, None) is not None:
                getattr(self, attr).close()
                setattr(self, attr, None)

    def __enter__(self) -> "CameraRig":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
