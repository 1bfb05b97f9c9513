"""The built-in sensors, registered through the same ``register_sensors`` hook a plugin uses.

``OPTICS`` gives the vertical field of view of the camera sensors recorded in a dataset manifest; a plugin's camera
sensor that calls ``rig.render_rgb()`` / ``rig.render_depth()`` sees through the 13.84° camera.
"""

from __future__ import annotations

import numpy as np

from gmn_plugins import hookimpl
from gmn_plugins.core.modality import Sensor

from .camera import FOVY48_DEGREES, FOVY_DEGREES
from .hand import haptic_index_names, haptic_physical_range

OPTICS = {"camera.rgb": FOVY_DEGREES, "camera.rgb48": FOVY48_DEGREES}

CAMERA_RGB = Sensor(
    name="camera.rgb",
    shape=(3, 64, 64),
    dtype="uint8",
    units="8-bit intensity",
    query="camera",
    record=lambda rig: rig.render_rgb(),
    normalization="uint8",
    description="64x64 RGB render, fovy 13.84° (mese_environment_reference.md §2)",
)

CAMERA_RGB48 = Sensor(
    name="camera.rgb48",
    shape=(3, 48, 48),
    dtype="uint8",
    units="8-bit intensity",
    query="camera",
    record=lambda rig: rig.render_rgb48(),
    normalization="uint8",
    description="48x48 RGB render, fovy 12.19° = the 0.88 centre crop (132 of 150 px) of the 64-px view, as the "
    "authors' |M| = 8/14 loader (mese_environment_reference.md §2)",
)

HAND_HAPTIC = Sensor(
    name="hand.haptic",
    shape=(132,),
    dtype="float32",
    units="MuJoCo sensordata: rad, rad/s, N, m/s², rad/s, N (reference §3.4)",
    query="wrist",
    record=lambda hand: hand.data.sensordata.astype(np.float32),
    normalization="minmax",
    description="MPL-layout hand sensordata after the 25-step closing grasp (reference §3.3–3.4)",
    # floors the min-max range per dimension: joint limits, kp · ctrl ranges, 0..150 N touch, ... (hand.py)
    physical_range=haptic_physical_range(),
    index_names=haptic_index_names(),
)


@hookimpl
def register_sensors(register):
    register(CAMERA_RGB)
    register(CAMERA_RGB48)
    register(HAND_HAPTIC)
