"""The built-in sensors, registered through the same ``register_sensors`` hook a plugin uses."""

from __future__ import annotations

import numpy as np

from gmn_plugins import hookimpl
from gmn_plugins.modality import Sensor

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

HAND_HAPTIC = Sensor(
    name="hand.haptic",
    shape=(132,),
    dtype="float32",
    units="MuJoCo sensordata: rad, rad/s, N, m/s², rad/s, N (reference §3.4)",
    query="wrist",
    record=lambda hand: hand.data.sensordata.astype(np.float32),
    normalization="minmax",
    description="MPL-layout hand sensordata after the 25-step closing grasp (reference §3.3–3.4)",
)


@hookimpl
def register_sensors(register):
    register(CAMERA_RGB)
    register(HAND_HAPTIC)
