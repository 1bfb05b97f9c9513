"""MESE, the Multisensory Embodied 3D-Scene Environment (mese_environment_reference.md).

``shapes`` (Shepard–Metzler objects), ``camera`` (the camera rig), ``hand`` and ``grasp`` (the project's own MPL-style
hand and its closing policy), ``sensors`` (built-in sensors), ``scene`` (one scene), ``generate`` and ``shards``
(datasets on disk).

Layers: MESE sits above ``core``, ``runtime`` and ``data`` (it writes datasets in ``data.format``'s layout) and beside
``models``, which it never imports (tests/test_layers.py). Two cycles inside it stay, on paper only: ``grasp`` names
``hand.Hand`` for type checkers alone (``if TYPE_CHECKING``; at run time hand imports grasp, not the reverse), and
``queries`` opens its rigs through ``hand``, ``grasp`` and ``scene`` inside the functions that open them while
``scene`` takes the built-in query kinds from ``queries`` inside ``SceneMaker`` when none are given: the plugin
registry imports ``queries`` in torch- and MuJoCo-free processes, so those imports must stay lazy. The imports that run
at import time form no cycle (tests/test_layers.py).
"""

import os as _os

# Headless rendering by default; must be set before the first ``import mujoco`` of the process (any submodule).
_os.environ.setdefault("MUJOCO_GL", "egl")
