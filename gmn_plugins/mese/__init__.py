"""MESE, the Multisensory Embodied 3D-Scene Environment (mese_environment_reference.md).

``shapes`` (Shepard–Metzler objects), ``camera`` (the camera rig), ``hand`` and ``grasp`` (the project's own MPL-style
hand and its closing policy), ``sensors`` (built-in sensors), ``scene`` (one scene), ``generate`` and ``shards``
(datasets on disk).
"""

import os as _os

# Headless rendering by default; must be set before the first ``import mujoco`` of the process (any submodule).
_os.environ.setdefault("MUJOCO_GL", "egl")
