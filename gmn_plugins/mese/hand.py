"""The grasp world: the project's own MPL-style hand, the object blocks and the fixed closing grasp
(mese_environment_reference.md §3, §5, §7).

The built-in hand carries the kinematics and dynamics of the Johns Hopkins University / Applied Physics Laboratory
Modular Prosthetic Limb (MPL) right hand, as converted to MJCF by Roboti LLC for MuJoCo HAPTIX (``mpl_right.xml``,
Apache License 2.0, (C) 2013 JHU/APL): body positions and orientations, inertias, joint axes, ranges, damping and
armature, coupling tendons and equalities, actuators, IMU and touch sites and contact exclusions are that file's
numbers. Its 24 convex-hull STL meshes are replaced by capsules, boxes and cylinders fitted to each hull (volume IoU
0.70–0.92), so the hand needs no asset file. ``Hand(mjcf=...)`` loads the real MPL file instead, for comparison.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import mujoco
import numpy as np

from .grasp import wrist_mocap_pose
from ..core.options import MIN_HULL_VERTICES, WRIST_LOCKS
from .physics import PHYSICS_PRESETS  # torch- and mujoco-free there
from .shapes import BLOCK_HALF_SIZE

NUM_SENSORDATA = 132
SENSOR_LAYOUT = (
    ("jointpos", 22), ("jointvel", 22), ("actuatorpos", 13), ("actuatorvel", 13), ("actuatorfrc", 13),
    ("accelerometer", 15), ("gyro", 15), ("touch", 19),
)  # fmt: skip

GRASP_STEPS = 25  # env steps of the closing policy (reference §3.3)
CTRL_DECAY = 0.96  # ctrl_k = upper · (1 - 0.96^k): zero-noise OU update, rate 1, dt 0.04
SETTLE_STEPS = 10  # env steps with the open hand at its default pose before every grasp
DEFAULT_MOCAP_POS = (0.0, -0.35, 0.2)  # far from the object, rotated 180° about z (reference §3.1)
REMOVED_POS = (0.0, 0.0, -100.0)  # where remove_object parks the blocks


# ---- MPL right hand, numbers from mpl_right.xml (JHU/APL MPL via Roboti LLC / MuJoCo HAPTIX, Apache-2.0) ----
# (body, parent, pos, quat or None, joint or None, joint axis, joint range (rad)) in the file's order, which fixes the
# joint order of the sensordata. middle0 has no joint (commented out in the file), which leaves 22 hinges.
BODIES = (
    ("wristy", "forearm", (0, 0, 0), None, "wrist_PRO", (0, 1, 0), (-1.57, 1.57)),
    ("wristx", "wristy", (-3.36826e-05, -0.0476452, 0.00203763), None, "wrist_UDEV", (0, 0, -1), (-0.261, 0.785)),
    ("wristz", "wristx", (0.0001872, -0.03, -0.002094), None, "wrist_FLEX", (1, 0, 0), (-1.04, 1.04)),
    ("palm", "wristz", (0.025625, 0, 0), None, None, None, None),
    ("thumb0", "palm", (0.00835752, -0.0206978, -0.010093), (0.990237, 0.0412644, -0.0209178, -0.13149), "thumb_ABD", (0, 1, 0), (0, 2.07)),
    ("thumb1", "thumb0", (0.0209172, -0.00084, 0.0014476), None, "thumb_MCP", (0, 0, -1), (0, 1.03)),
    ("thumb2", "thumb1", (0.0335, 0, -0.0007426), None, "thumb_PIP", (0, 0, -1), (0, 1.03)),
    ("thumb3", "thumb2", (0.0335, 0, 0.0010854), None, "thumb_DIP", (0, 0, -1), (-0.819, 1.28)),
    ("index0", "palm", (0.00986485, -0.0658, 0.00101221), (0.996195, 0, 0.0871557, 0), "index_ABD", (0, 0, 1), (0, 0.345)),
    ("index1", "index0", (6.26e-05, -0.018, 0), None, "index_MCP", (1, 0, 0), (-0.785, 1.57)),
    ("index2", "index1", (0.001086, -0.0435, 0.0005), None, "index_PIP", (1, 0, 0), (0, 1.72)),
    ("index3", "index2", (-0.000635, -0.0245, 0), None, "index_DIP", (1, 0, 0), (0, 1.38)),
    ("middle0", "palm", (-0.012814, -0.0779014, 0.00544608), (-3.14, 0.0436194, 0, 0), None, None, None),
    ("middle1", "middle0", (6.26e-05, -0.018, 0), None, "middle_MCP", (1, 0, 0), (-0.785, 1.57)),
    ("middle2", "middle1", (0.001086, -0.0435, 0.0005), None, "middle_PIP", (1, 0, 0), (0, 1.73)),
    ("middle3", "middle2", (-0.000635, -0.0245, 0), None, "middle_DIP", (1, 0, 0), (0, 1.38)),
    ("ring0", "palm", (-0.0354928, -0.0666999, 0.00151221), (0.996195, 0, -0.0871557, 0), "ring_ABD", (0, 0, -1), (0, 0.345)),
    ("ring1", "ring0", (6.26e-05, -0.018, 0), None, "ring_MCP", (1, 0, 0), (-0.785, 1.57)),
    ("ring2", "ring1", (0.001086, -0.0435, 0.0005), None, "ring_PIP", (1, 0, 0), (0, 1.72)),
    ("ring3", "ring2", (-0.000635, -0.0245, 0), None, "ring_DIP", (1, 0, 0), (0, 1.38)),
    ("pinky0", "palm", (-0.0562459, -0.0554001, -0.00563858), (0.996195, 0, -0.0871557, 0), "pinky_ABD", (0, 0, -1), (0, 0.345)),
    ("pinky1", "pinky0", (6.26e-05, -0.0178999, 0), None, "pinky_MCP", (1, 0, 0), (-0.785, 1.57)),
    ("pinky2", "pinky1", (0.000578, -0.033, 0.0005), None, "pinky_PIP", (1, 0, 0), (0, 1.72)),
    ("pinky3", "pinky2", (-4.78e-05, -0.0175, 0), None, "pinky_DIP", (1, 0, 0), (0, 1.38)),
)  # fmt: skip
WRIST_DAMPING, JOINT_DAMPING, ARMATURE = 0.4, 0.2, 0.01

# body -> (centre of mass, principal-axes quat, mass kg, principal inertia kg·m²)
INERTIALS = {
    "wristy": ((-7.08369e-05, -0.0217787, -0.000286168), (0.707488, 0.00581744, -0.0107421, 0.70662), 0.0272932, (2.46813e-05, 1.77029e-05, 1.71079e-05)),
    "wristx": ((0.00139174, -0.00975189, -0.00252668), (-0.0729226, 0.705959, 0.0352732, 0.703605), 0.010691, (5.04455e-06, 4.25035e-06, 3.25677e-06)),
    "wristz": ((0.000579016, -0.00125952, 0.000455968), (0.527723, 0.475346, 0.521597, 0.472749), 0.00602247, (1.58133e-06, 1.43102e-06, 1.26861e-06)),
    "palm": ((-0.0217876, -0.0376147, 0.00276997), (-0.146373, 0.723094, 0.0985561, 0.66783), 0.119867, (0.000123088, 0.000100082, 6.89467e-05)),
    "thumb0": ((0.00863339, -0.000156884, -0.000945846), (0.408795, 0.551643, 0.541079, 0.485602), 0.00336696, (4.50769e-07, 4.48758e-07, 2.35017e-07)),
    "thumb1": ((0.019024, 0.000361131, -0.000186763), (0.5208, 0.469572, 0.484571, 0.522934), 0.00596213, (9.88001e-07, 9.45125e-07, 5.32989e-07)),
    "thumb2": ((0.0188965, 0.000375725, 0.00065381), (0.502274, 0.484638, 0.475673, 0.535333), 0.00599792, (9.96692e-07, 9.64948e-07, 5.14416e-07)),
    "thumb3": ((0.0188965, 0.000375725, 0.00065381), (0.502274, 0.484638, 0.475673, 0.535333), 0.00599792, (9.96692e-07, 9.64948e-07, 5.14416e-07)),
    "index0": ((-0.000142572, -0.00548494, 0.000206145), (0.699132, 0.714861, -0.000723869, 0.013694), 0.00295579, (4.22462e-07, 4.02281e-07, 1.93868e-07)),
    "index1": ((0.000406487, -0.0213125, 0.000655609), (0.698452, 0.715642, -0.00415384, 0.0023049), 0.00478235, (8.18599e-07, 7.95693e-07, 3.06254e-07)),
    "index2": ((-0.000841462, -0.012689, 0.000572665), (0.734882, 0.677481, -0.028511, 0.0124827), 0.00344764, (3.63962e-07, 3.59059e-07, 1.05304e-07)),
    "index3": ((4.32004e-05, -0.0125318, 0.000903476), (0.516251, 0.4829, -0.483241, 0.516498), 0.00274415, (1.19635e-07, 1.09202e-07, 7.77873e-08)),
    "middle0": ((-0.000142567, -0.00548493, 0.000206162), (0.699131, 0.714862, -0.000723874, 0.013694), 0.00295579, (4.22461e-07, 4.02281e-07, 1.93868e-07)),
    "middle1": ((0.000406411, -0.0213125, 0.00065565), (0.698451, 0.715642, -0.00415503, 0.00230486), 0.00478229, (8.18595e-07, 7.9569e-07, 3.06253e-07)),
    "middle2": ((-0.000841444, -0.012689, 0.00057266), (0.734883, 0.677482, -0.0284727, 0.0124412), 0.00344765, (3.63962e-07, 3.5906e-07, 1.05304e-07)),
    "middle3": ((4.31236e-05, -0.0125318, 0.000903446), (0.516263, 0.482913, -0.483228, 0.516487), 0.00274417, (1.19635e-07, 1.09202e-07, 7.77884e-08)),
    "ring0": ((-0.000142559, -0.00548494, 0.000206147), (0.699132, 0.714861, -0.000720946, 0.013691), 0.00295579, (4.22462e-07, 4.02281e-07, 1.93868e-07)),
    "ring1": ((0.000406447, -0.0213125, 0.00065563), (0.698451, 0.715642, -0.00415675, 0.00230715), 0.00478232, (8.18597e-07, 7.95692e-07, 3.06254e-07)),
    "ring2": ((-0.000841518, -0.012689, 0.000572674), (0.73488, 0.677478, -0.0285773, 0.0125557), 0.00344767, (3.63963e-07, 3.59061e-07, 1.05305e-07)),
    "ring3": ((4.31973e-05, -0.0125318, 0.000903457), (0.516255, 0.482902, -0.483238, 0.516495), 0.00274416, (1.19635e-07, 1.09202e-07, 7.77877e-08)),
    "pinky0": ((-0.000142559, -0.00538484, 0.000206147), (0.699132, 0.714861, -0.000721037, 0.0136911), 0.00295579, (4.22462e-07, 4.02281e-07, 1.93868e-07)),
    "pinky1": ((0.000458624, -0.0160478, 0.000924735), (0.685529, 0.72723, 0.021252, -0.0270914), 0.0034099, (4.03391e-07, 3.84061e-07, 2.19866e-07)),
    "pinky2": ((-0.000270832, -0.00914628, 0.000738493), (0.746786, 0.664476, -4.11065e-05, -0.0279675), 0.00250622, (1.79089e-07, 1.75934e-07, 7.44543e-08)),
    "pinky3": ((3.85026e-05, -0.0125047, 0.000912295), (0.516037, 0.484447, -0.483043, 0.515448), 0.00273265, (1.19141e-07, 1.08629e-07, 7.77271e-08)),
}  # fmt: skip

# Primitive stand-ins for the MPL meshes, in body coordinates (metres): ("capsule" | "cylinder", from, to, radius) or
# ("box", centre, half-sizes). Each was fitted to its convex hull by maximising the volume IoU, then checked against
# the MPL in free-air closing: the wrist yoke is a cylinder about the UDEV axis so the palm clears it as in the MPL, and
# the medial/distal radii equal the meshes' half-widths so that neighbouring fingertips stop where the MPL's do.
# Index, middle and ring links share their meshes in the file, so they share their shapes here.
FINGER_LINKS = {
    0: ("box", (0, -0.0078, 0), (0.009, 0.0185, 0.0095)),
    1: ("capsule", (0, -0.0400, 0), (0, -0.0011, 0), 0.0098),
    2: ("capsule", (0, -0.0225, 0), (0, -0.0006, 0), 0.0081),
    3: ("capsule", (0, -0.0151, 0.0008), (0, -0.0037, 0.0008), 0.0080),
}
PINKY_LINKS = {
    0: FINGER_LINKS[0],
    1: ("capsule", (0, -0.0298, 0), (0, -0.0006, 0), 0.0097),
    2: ("capsule", (0, -0.0153, 0), (0, -0.0003, 0), 0.0081),
    3: ("capsule", (0, -0.0152, 0.0008), (0, -0.0035, 0.0008), 0.0080),
}
GEOMS = {
    "forearm": (("cylinder", (0, 0.01, 0), (0, -0.01, 0), 0.02),),  # the file's own primitive
    "wristy": (("cylinder", (0, 0, 0), (0, -0.039, 0), 0.0335),
               ("cylinder", (0, -0.038, -0.026), (0, -0.038, 0.026), 0.022)),  # disc + yoke about the UDEV axis
    "wristx": (("box", (0, -0.0151, -0.002), (0.0239, 0.026, 0.0198)),),
    "wristz": (("cylinder", (-0.0226, 0, 0), (0.0222, 0, 0), 0.0151),),
    "palm": (("box", (-0.0227, -0.037, -0.0013), (0.0406, 0.0359, 0.0209)),
             ("capsule", (-0.0144, -0.0648, 0.0031), (-0.0184, -0.0233, 0.0025), 0.0232)),
    "thumb0": (("box", (0.0107, -0.0004, 0.0015), (0.0164, 0.0086, 0.0118)),),
    "thumb1": (("capsule", (0.0042, 0, 0), (0.0299, 0, 0), 0.0118),),
    "thumb2": (("capsule", (0.0046, 0, 0.0008), (0.0297, 0, 0.0008), 0.0117),),
    "thumb3": (("capsule", (0.0021, -0.0007, 0), (0.019, -0.0007, 0), 0.0100),),
    **{f"{finger}{k}": (shape,) for finger in ("index", "middle", "ring") for k, shape in FINGER_LINKS.items()},
    **{f"pinky{k}": (shape,) for k, shape in PINKY_LINKS.items()},
}  # fmt: skip

# (site, body, pos, ellipsoid half-axes, quat or None) in the MPL's touch-sensor order.
TOUCH_SITES = (
    ("palm_thumb", "palm", (-0.0052, -0.0438, -0.0182), (0.017, 0.03, 0.01), None),
    ("palm_pinky", "palm", (-0.0358, -0.0401, -0.0183), (0.017, 0.03, 0.01), None),
    ("palm_side", "palm", (-0.0604, -0.0329, -0.0048), (0.01, 0.03, 0.015), None),
    ("palm_back", "palm", (-0.0246, -0.0446, 0.018), (0.03, 0.035, 0.015), None),
    ("thumb_proximal", "thumb1", (0.0173, -0.008, 0.0009), (0.015, 0.0075, 0.01), None),
    ("thumb_medial", "thumb2", (0.0182, -0.008, 0.0015), (0.015, 0.0075, 0.01), None),
    ("thumb_distal", "thumb3", (0.0156, -0.007, 0.0003), (0.015, 0.0075, 0.01), (0.995004, 0, 0, 0.0998334)),  # 0.2 rad about z
    ("index_proximal", "index1", (0, -0.0235, -0.007), (0.009, 0.015, 0.0075), None),
    ("index_medial", "index2", (0, -0.009, -0.0047), (0.0075, 0.01, 0.006), None),
    ("index_distal", "index3", (0, -0.0132, -0.0038), (0.0075, 0.01, 0.006), None),
    ("middle_proximal", "middle1", (0, -0.025, -0.007), (0.009, 0.015, 0.0075), None),
    ("middle_medial", "middle2", (0, -0.0146, -0.0047), (0.0075, 0.01, 0.006), None),
    ("middle_distal", "middle3", (0, -0.0129, -0.0038), (0.0075, 0.01, 0.006), None),
    ("ring_proximal", "ring1", (0, -0.0259, -0.007), (0.009, 0.015, 0.0075), None),
    ("ring_medial", "ring2", (0, -0.0137, -0.0047), (0.0075, 0.01, 0.006), None),
    ("ring_distal", "ring3", (0, -0.0117, -0.0038), (0.0075, 0.01, 0.006), None),
    ("pinky_proximal", "pinky1", (0, -0.021, -0.0066), (0.009, 0.013, 0.0075), None),
    ("pinky_medial", "pinky2", (0, -0.0117, -0.0047), (0.0075, 0.01, 0.006), None),
    ("pinky_distal", "pinky3", (0, -0.0121, -0.0038), (0.0075, 0.01, 0.006), None),
)  # fmt: skip
# (site, body, pos, quat): fingertip IMUs (accelerometer + gyro), 3 mm boxes.
IMU_SITES = (
    ("thumb_IMU", "thumb3", (0.0099, -0.00052, 0), (0.5, 0.5, 0.5, 0.5)),
    ("index_IMU", "index3", (0, -0.0093, 0.00063), (0.5, 0.5, -0.5, 0.5)),
    ("middle_IMU", "middle3", (0, -0.0093, 0.00063), (0.5, 0.5, -0.5, 0.5)),
    ("ring_IMU", "ring3", (0, -0.0093, 0.00063), (0.5, 0.5, -0.5, 0.5)),
    ("pinky_IMU", "pinky3", (0, -0.0093, 0.00063), (0.5, 0.5, -0.5, 0.5)),
)
# Position actuators (kp 10) in the file's order: (joint, ctrl range in rad).
ACTUATORS = (
    ("wrist_PRO", (-1.57, 1.57)), ("wrist_UDEV", (-0.26, 0.79)), ("wrist_FLEX", (-1, 1)),
    ("thumb_ABD", (0, 2.1)), ("thumb_MCP", (0, 1.0)), ("thumb_PIP", (0, 1.0)), ("thumb_DIP", (-0.82, 1.3)),
    ("index_ABD", (0, 0.34)), ("index_MCP", (0, 1.6)), ("middle_MCP", (0, 1.6)), ("ring_MCP", (0, 1.6)),
    ("pinky_ABD", (0, 0.34)), ("pinky_MCP", (0, 1.6)),
)  # fmt: skip
ACTUATOR_KP = 10.0
# Fixed coupling tendons held at zero length by equalities: DIP·0.00705 = PIP·0.00805 and PIP = MCP per finger. Only
# the index tendons carry range="0 1" in the file (inert in MuJoCo 1.50, a limit since autolimits): kept as in the file.
COUPLINGS = ((("DIP", 0.00705), ("PIP", -0.00805)), (("PIP", 0.010), ("MCP", -0.010)))
TENDON_RANGES = {"T_index32_cpl": (0, 1), "T_index21_cpl": (0, 1)}
RING_PINKY_ABD = 0.5  # equality: ring_ABD = 0.5 · pinky_ABD
# Not in the file: wrist_PRO is locked at 0 by a stiff equality, as MuJoCo 1.50's contact artefact locked it in the
# authors' data (|q| < 0.009 rad; reference §5, §7). Impedance 0.999 keeps q within 1e-3 rad against the 10 N·m pull.
WRIST_LOCK_SOLIMP = "0.999 0.999 0.001"
CONTACT_EXCLUDES = (
    ("wristz", "wristy"), ("wristx", "thumb0"), ("palm", "thumb1"),
    ("palm", "index1"), ("palm", "middle1"), ("palm", "ring1"), ("palm", "pinky1"),
)  # fmt: skip


def _v(values) -> str:
    return " ".join(f"{float(x):.9g}" for x in values)


def _geom_xml(shape: tuple) -> str:
    if shape[0] == "box":
        return f'<geom type="box" pos="{_v(shape[1])}" size="{_v(shape[2])}"/>'
    return f'<geom type="{shape[0]}" fromto="{_v(shape[1])} {_v(shape[2])}" size="{shape[3]}"/>'


def _tendon_xml(finger: str, pair: str, coupling: tuple) -> str:
    name = f"T_{finger}{pair}_cpl"
    limits = f' range="{_v(TENDON_RANGES[name])}"' if name in TENDON_RANGES else ""
    joints = "".join(f'<joint joint="{finger}_{j}" coef="{c}"/>' for j, c in coupling)
    return f'<fixed name="{name}"{limits}>{joints}</fixed>'


def _body_xml(name: str) -> str:
    """The MJCF of one hand body and, recursively, its children."""
    _, _, pos, quat, joint, axis, limits = next(b for b in BODIES if b[0] == name)
    ipos, iquat, mass, inertia = INERTIALS[name]
    parts = [f'<inertial pos="{_v(ipos)}" quat="{_v(iquat)}" mass="{mass}" diaginertia="{_v(inertia)}"/>']
    if joint:
        damping = WRIST_DAMPING if joint.startswith("wrist") else JOINT_DAMPING
        parts.append(f'<joint name="{joint}" axis="{_v(axis)}" range="{_v(limits)}" damping="{damping}"/>')
    parts += [_geom_xml(shape) for shape in GEOMS[name]]
    parts += [f'<site name="{s}" pos="{_v(p)}" size="{_v(size)}"' + (f' quat="{_v(q)}"/>' if q else "/>")
              for s, body, p, size, q in TOUCH_SITES if body == name]  # fmt: skip
    parts += [f'<site name="{s}" class="IMU" pos="{_v(p)}" quat="{_v(q)}"/>'
              for s, body, p, q in IMU_SITES if body == name]  # fmt: skip
    parts += [_body_xml(child) for child, parent, *_ in BODIES if parent == name]
    quat_attr = f' quat="{_v(quat)}"' if quat else ""
    return f'<body name="{name}" pos="{_v(pos)}"{quat_attr}>\n' + "\n".join(parts) + "\n</body>"


def _sensors_xml() -> str:
    """The 112 sensors of the MPL, in its order (reference §3.4)."""
    joints = [b[4] for b in BODIES if b[4]]
    return "\n".join(
        [f'<jointpos joint="{j}"/>' for j in joints] + [f'<jointvel joint="{j}"/>' for j in joints]
        + [f'<{kind} actuator="A_{j}"/>' for kind in ("actuatorpos", "actuatorvel", "actuatorfrc")
           for j, _ in ACTUATORS]
        + [f'<{kind} site="{s[0]}"/>' for kind in ("accelerometer", "gyro") for s in IMU_SITES]
        + [f'<touch site="{s[0]}"/>' for s in TOUCH_SITES]
    )  # fmt: skip


def _option_xml(physics: str) -> str:
    if physics not in PHYSICS_PRESETS:
        raise ValueError(f"unknown physics preset {physics!r}; expected one of {sorted(PHYSICS_PRESETS)}")
    p = PHYSICS_PRESETS[physics]
    return (
        f'<option timestep="{p.timestep}" iterations="{p.iterations}" tolerance="{p.tolerance}" solver="{p.solver}" '
        f'cone="{p.cone}" jacobian="{p.jacobian}"><flag island="{"enable" if p.islands else "disable"}"/></option>'
    )


def _blocks_xml(n_blocks: int) -> str:
    h = BLOCK_HALF_SIZE
    return "\n".join(
        f'<body name="block{i}" pos="{_v(REMOVED_POS)}"><geom name="block{i}" type="box" size="{h} {h} {h}"/></body>'
        for i in range(n_blocks)
    )


def builtin_hand_xml(n_blocks: int = 5, physics: str = "faithful") -> str:
    """The whole grasp world as an MJCF string: physics options, the built-in hand (forearm = rigid child of the mocap
    body ``mocap``) and ``n_blocks`` joint-less bodies ``block{i}`` (one box geom of half-size 0.0175 m each, parked
    out of reach).

    Source: mese_environment_reference.md §3.1 (hand), §1 (blocks), §7 (wrist lock). Raises ``ValueError`` for an
    unknown ``physics`` preset.
    """
    fingers = ("index", "middle", "ring", "pinky")
    pairs = ("32", "21")  # DIP–PIP and PIP–MCP
    tendons = "\n".join(_tendon_xml(f, pair, coupling) for f in fingers for pair, coupling in zip(pairs, COUPLINGS))
    equalities = "\n".join(f'<tendon tendon1="T_{f}{pair}_cpl"/>' for f in fingers for pair in pairs)
    return f"""<mujoco model="mese-grasp">
  <compiler angle="radian"/>
  {_option_xml(physics)}
  <statistic extent="1" center="0 -0.2 0.2"/>
  <default>
    <default class="hand">
      <geom contype="1" conaffinity="1" condim="4" margin="0.001" rgba=".8 .65 .55 1"/>
      <joint type="hinge" limited="true" damping="{JOINT_DAMPING}" armature="{ARMATURE}"/>
      <site type="ellipsoid" group="3" rgba=".3 .9 .3 .3"/>
      <position ctrllimited="true" kp="{ACTUATOR_KP}"/>
      <default class="IMU"><site type="box" size=".003 .003 .003" group="4" rgba=".1 .1 .9 1"/></default>
    </default>
  </default>
  <contact>
    {"".join(f'<exclude body1="{a}" body2="{b}"/>' for a, b in CONTACT_EXCLUDES)}
  </contact>
  <worldbody>
    <body name="mocap" mocap="true" pos="{_v(DEFAULT_MOCAP_POS)}" axisangle="0 0 1 3.141592">
      <body name="forearm" childclass="hand">
        {"".join(_geom_xml(shape) for shape in GEOMS["forearm"])}
        {_body_xml("wristy")}
      </body>
    </body>
    {_blocks_xml(n_blocks)}
  </worldbody>
  <tendon>
    {tendons}
  </tendon>
  <equality>
    {equalities}
    <joint name="ring_pinky_cpl" joint1="ring_ABD" joint2="pinky_ABD" polycoef="0 {RING_PINKY_ABD} 0 0 0"/>
    <joint name="wrist_PRO_lock" joint1="wrist_PRO" polycoef="0 0 0 0 0" solimp="{WRIST_LOCK_SOLIMP}"/>
  </equality>
  <actuator>
    {"".join(f'<position name="A_{j}" class="hand" joint="{j}" ctrlrange="{_v(r)}"/>' for j, r in ACTUATORS)}
  </actuator>
  <sensor>
    {_sensors_xml()}
  </sensor>
</mujoco>"""


def mpl_file_xml(path: str | os.PathLike, n_blocks: int = 5, physics: str = "faithful", hull_vertices: int = 0,
                 wrist_lock: str = "contact") -> str:
    """The grasp world around a real MPL file, edited as MESE used it under modern MuJoCo (reference §3.1, §5): the
    ``apirate`` option dropped (options from the preset instead), the forearm a rigid child of the mocap body
    ``mocap`` (moved there and its free joint dropped if the file is the original HAPTIX one), an explicit
    forearm–wristy contact pair (MuJoCo 1.50's wrist lock), mesh/texture folders made absolute and the object blocks
    added. ``hull_vertices`` > 0 caps the convex hull MuJoCo builds for each mesh's collisions at that many vertices
    (its ``maxhullvert``; 0: the full hulls), a load-time simplification of the narrow phase (measured in
    ``mese/physics.py``: 128 vertices, +27 % grasps/s, passes the calibration against the full hulls).
    ``wrist_lock``: ``"contact"`` (MuJoCo 1.50's lock, by that pair, with multiccd on) or ``"equality"`` (the
    built-in hand's stiff joint equality at 0, no pair, multiccd off: faster; measured in ``mese/physics.py``).
    Raises ``FileNotFoundError`` if ``path`` is missing, ``ValueError`` for an unknown preset or ``wrist_lock``, or
    ``hull_vertices`` in 1 .. ``MIN_HULL_VERTICES`` - 1.
    """
    if hull_vertices and hull_vertices < MIN_HULL_VERTICES:
        raise ValueError(f"hull_vertices must be 0 (full hulls) or >= {MIN_HULL_VERTICES}, got {hull_vertices}")
    if wrist_lock not in WRIST_LOCKS:
        raise ValueError(f"wrist_lock must be one of {WRIST_LOCKS}, got {wrist_lock!r}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MPL hand file not found: {path}")
    root = ET.parse(path).getroot()
    compiler = root.find("compiler")
    for attr in ("meshdir", "texturedir"):
        compiler.set(attr, str(path.parent / compiler.get(attr, "")) + os.sep)
    root.remove(root.find("option"))
    root.insert(list(root).index(compiler) + 1, ET.fromstring(_option_xml(physics)))
    worldbody = root.find("worldbody")
    bodies = {b.get("name"): b for b in root.iter("body")}
    forearm, mocap = bodies["forearm"], bodies.get("mocap")
    if mocap is None:
        mocap = ET.SubElement(worldbody, "body", name="mocap", mocap="true", pos=_v(DEFAULT_MOCAP_POS),
                              axisangle="0 0 1 3.141592")  # fmt: skip
    if forearm not in list(mocap):
        parent = next(p for p in root.iter() if forearm in list(p))
        parent.remove(forearm)
        for joint in forearm.findall("joint"):
            forearm.remove(joint)
        for attr in ("pos", "quat", "axisangle", "euler", "xyaxes", "zaxis"):
            forearm.attrib.pop(attr, None)
        mocap.append(forearm)
    forearm.find("geom").set("name", "forearm")
    bodies["wristy"].find("geom").set("name", "wristy")
    if wrist_lock == "contact":
        contact = root.find("contact") if root.find("contact") is not None else ET.SubElement(root, "contact")
        ET.SubElement(contact, "pair", geom1="forearm", geom2="wristy")
    else:
        equality = root.find("equality") if root.find("equality") is not None else ET.SubElement(root, "equality")
        ET.SubElement(equality, "joint", name="wrist_PRO_lock", joint1="wrist_PRO", polycoef="0 0 0 0 0",
                      solimp=WRIST_LOCK_SOLIMP)
        root.find("option").find("flag").set("multiccd", "disable")
    worldbody.extend(ET.fromstring(f"<w>{_blocks_xml(n_blocks)}</w>"))
    if hull_vertices:
        for mesh in root.iter("mesh"):
            mesh.set("maxhullvert", str(int(hull_vertices)))
    return ET.tostring(root, encoding="unicode")


def sensor_layout(model: mujoco.MjModel) -> tuple[tuple[str, int], ...]:
    """The model's sensordata as runs of (sensor type, number of values), e.g. (("jointpos", 22), ...)."""
    runs: list[list] = []
    for sensor_type, dim in zip(model.sensor_type, model.sensor_dim):
        name = mujoco.mjtSensor(sensor_type).name.removeprefix("mjSENS_").lower()
        if runs and runs[-1][0] == name:
            runs[-1][1] += int(dim)
        else:
            runs.append([name, int(dim)])
    return tuple((name, count) for name, count in runs)


def check_sensor_layout(model: mujoco.MjModel) -> None:
    """Raise ``ValueError`` unless sensordata is the 132-value MPL layout ``SENSOR_LAYOUT`` of reference §3.4."""
    layout = sensor_layout(model)
    if layout != SENSOR_LAYOUT:
        raise ValueError(f"hand sensordata must be the {NUM_SENSORDATA}-value MPL layout {SENSOR_LAYOUT}, "
                         f"got {model.nsensordata} values: {layout}")  # fmt: skip


# Plausible physical ranges of the sensordata values that no table above bounds (this project's choice, issue 10).
# At the observation the closing ramp moves its targets at upper · 0.96^24 <= 0.38 · 2.1 = 0.79 rad/s (reference
# §3.3), and fingers stopped by the object barely move: joint, actuator and fingertip angular speeds +-1 rad/s. The
# hand is then nearly at rest, so an accelerometer axis reads mostly gravity: +-9.81 m/s^2. Touch: 0..150 N, the most
# an accepted grasp records (rejection rule, reference §3.3 step 4).
JOINT_SPEED_RANGE = (-1.0, 1.0)  # rad/s
ACCELEROMETER_RANGE = (-9.81, 9.81)  # m/s^2
GYRO_RANGE = (-1.0, 1.0)  # rad/s
TOUCH_RANGE = (0.0, 150.0)  # N


def haptic_physical_range() -> tuple[tuple[float, float], ...]:
    """The 132 (lo, hi) pairs of the MPL sensordata in ``SENSOR_LAYOUT`` order (reference §3.4), from the MPL tables
    above: jointpos 22 = the joint limits of ``BODIES`` (rad); jointvel 22 = ``JOINT_SPEED_RANGE``; actuatorpos 13 =
    the limits of each actuator's joint (its length is the joint angle, rad; the ctrl ranges are these rounded);
    actuatorvel 13 = ``JOINT_SPEED_RANGE``; actuatorfrc 13 = kp · ctrl range (N: the span of kp · (ctrl - q) as the
    target sweeps its range at a fixed joint angle); accelerometer 15 = ``ACCELEROMETER_RANGE``; gyro 15 =
    ``GYRO_RANGE``; touch 19 = ``TOUCH_RANGE`` (``TOUCH_SITES``). The same numbers serve the real MPL file."""
    limits = {joint: limits for _, _, _, _, joint, _, limits in BODIES if joint}
    counts = dict(SENSOR_LAYOUT)
    groups = {
        "jointpos": list(limits.values()),
        "jointvel": [JOINT_SPEED_RANGE] * counts["jointvel"],
        "actuatorpos": [limits[joint] for joint, _ in ACTUATORS],
        "actuatorvel": [JOINT_SPEED_RANGE] * counts["actuatorvel"],
        "actuatorfrc": [(ACTUATOR_KP * lo, ACTUATOR_KP * hi) for _, (lo, hi) in ACTUATORS],
        "accelerometer": [ACCELEROMETER_RANGE] * counts["accelerometer"],
        "gyro": [GYRO_RANGE] * counts["gyro"],
        "touch": [TOUCH_RANGE] * len(TOUCH_SITES),
    }
    return tuple((float(lo), float(hi)) for name, _ in SENSOR_LAYOUT for lo, hi in groups[name])


def haptic_index_names() -> tuple[str, ...]:
    """The 132 names of the MPL sensordata in ``SENSOR_LAYOUT`` order (reference §3.4), ``KIND:WHAT`` after the joint,
    actuator or site each sensor of ``mpl_right.xml`` reads: ``jointpos:wrist_PRO`` and ``jointvel:wrist_PRO`` per
    joint of ``BODIES``, ``actuatorpos:A_wrist_PRO`` (``actuatorvel``, ``actuatorfrc``) per actuator,
    ``accelerometer:thumb_IMU:x`` and ``gyro:thumb_IMU:x`` per ``IMU_SITES`` site and axis of the site's frame,
    ``touch:thumb_distal`` per ``TOUCH_SITES`` site (the fingertips: indices 119, 122, 125, 128, 131)."""
    joints = [joint for _, _, _, _, joint, _, _ in BODIES if joint]
    actuators = [f"A_{joint}" for joint, _ in ACTUATORS]
    imu_axes = [f"{site}:{axis}" for site, *_ in IMU_SITES for axis in "xyz"]
    groups = {"jointpos": joints, "jointvel": joints, "actuatorpos": actuators, "actuatorvel": actuators,
              "actuatorfrc": actuators, "accelerometer": imu_axes, "gyro": imu_axes,
              "touch": [site for site, *_ in TOUCH_SITES]}  # fmt: skip
    return tuple(f"{kind}:{what}" for kind, _ in SENSOR_LAYOUT for what in groups[kind])


class Hand:
    """The grasp world, compiled once: the hand (built-in, or the real MPL from ``mjcf``) plus ``n_blocks`` blocks.

    Per scene ``set_object`` rewrites block positions and colours; per grasp ``grasp`` restores the cached settled
    reset state (reference §3.3 step 1) and runs the closing policy. ``model`` / ``data`` are the MuJoCo objects.
    ``hull_vertices``, ``wrist_lock``: for an ``mjcf`` hand, the cap on each mesh's collision hull and how the wrist
    is locked (``mpl_file_xml``).
    Raises ``ValueError`` for an unknown ``physics`` preset or a sensordata layout other than the 132 values of
    §3.4, ``FileNotFoundError`` if ``mjcf`` does not exist.
    """

    def __init__(self, n_blocks: int = 5, physics: str = "faithful", mjcf: str | os.PathLike | None = None,
                 hull_vertices: int = 0, wrist_lock: str = "contact"):  # fmt: skip
        xml = (builtin_hand_xml(n_blocks, physics) if mjcf is None
               else mpl_file_xml(mjcf, n_blocks, physics, hull_vertices, wrist_lock))  # fmt: skip
        self.model = mujoco.MjModel.from_xml_string(xml)
        check_sensor_layout(self.model)
        self.data = mujoco.MjData(self.model)
        self.n_blocks = n_blocks
        self.substeps = PHYSICS_PRESETS[physics].substeps
        self.step_hooks: list = []  # hook(hand, k) after each env step k = 0..24 of a grasp (sensors' Sensor.step)
        self._mocap = self.model.body("mocap").mocapid[0]
        self._block_bodies = [self.model.body(f"block{i}").id for i in range(n_blocks)]
        self._block_geoms = [self.model.geom(f"block{i}").id for i in range(n_blocks)]
        upper = self.model.actuator_ctrlrange[:, 1]
        self._ctrl = upper * (1 - CTRL_DECAY ** np.arange(1, GRASP_STEPS + 1)[:, None])  # (25, 13)
        mujoco.mj_resetData(self.model, self.data)
        mujoco.mj_step(self.model, self.data, nstep=SETTLE_STEPS * self.substeps)
        self._state_spec = mujoco.mjtState.mjSTATE_INTEGRATION
        self._reset_state = np.empty(mujoco.mj_stateSize(self.model, self._state_spec))
        mujoco.mj_getState(self.model, self.data, self._reset_state, self._state_spec)

    def set_object(self, block_centres: np.ndarray, rgba: np.ndarray | None = None) -> None:
        """Place the blocks: ``block_centres`` (n_blocks, 3) metres in the world frame, ``rgba`` (n_blocks, 4) or RGB
        (n_blocks, 3, opaque) in [0, 1], or None to keep the colours (the rig protocol of ``QueryKind``).
        Raises ``ValueError`` for other shapes."""
        block_centres = np.asarray(block_centres, dtype=np.float64)
        if block_centres.shape != (self.n_blocks, 3):
            raise ValueError(f"block_centres must have shape ({self.n_blocks}, 3), got {block_centres.shape}")
        self.model.body_pos[self._block_bodies] = block_centres
        if rgba is not None:
            rgba = np.asarray(rgba, dtype=np.float64)
            if rgba.shape == (self.n_blocks, 3):
                rgba = np.c_[rgba, np.ones(self.n_blocks)]
            if rgba.shape != (self.n_blocks, 4):
                raise ValueError(f"rgba must have shape ({self.n_blocks}, 4), got {rgba.shape}")
            self.model.geom_rgba[self._block_geoms] = rgba

    def remove_object(self) -> None:
        """Park all blocks 100 m below the origin, out of reach of any grasp."""
        self.model.body_pos[self._block_bodies] = REMOVED_POS

    def grasp(self, wrist_pose: np.ndarray) -> np.ndarray:
        """Run the fixed closing grasp at ``wrist_pose`` (5,) = (x, y, z metres, pitch, yaw radians) and return the
        (132,) float64 sensordata after the 25th env step (reference §3.3): teleport the settled open hand to the
        pose, then for k = 1..25 set ctrl = upper · (1 - 0.96^k) and run one env step (0.04 s). After each env step
        every function in ``step_hooks`` is called as ``hook(hand, k - 1)`` (a sensor's ``Sensor.step``; it must not
        change the state; MuJoCo's sensordata is computed on the last step only)."""
        pos, quat = wrist_mocap_pose(wrist_pose)
        mujoco.mj_setState(self.model, self.data, self._reset_state, self._state_spec)
        self.data.mocap_pos[self._mocap] = pos
        self.data.mocap_quat[self._mocap] = quat
        # Only the last physics step's sensordata is returned, and sensors feed nothing back into the dynamics, so
        # they are computed on that step alone: the same bytes, ~10 % faster for the built-in hand (tested).
        opt = self.model.opt
        opt.disableflags |= mujoco.mjtDisableBit.mjDSBL_SENSOR
        hooks = self.step_hooks
        try:
            for k, ctrl in enumerate(self._ctrl[:-1]):
                self.data.ctrl[:] = ctrl
                mujoco.mj_step(self.model, self.data, nstep=self.substeps)
                for hook in hooks:
                    hook(self, k)
            self.data.ctrl[:] = self._ctrl[-1]
            if self.substeps > 1:
                mujoco.mj_step(self.model, self.data, nstep=self.substeps - 1)
        finally:
            opt.disableflags &= ~int(mujoco.mjtDisableBit.mjDSBL_SENSOR)
        mujoco.mj_step(self.model, self.data)
        for hook in hooks:
            hook(self, len(self._ctrl) - 1)
        return self.data.sensordata.copy()

    def ctrl_targets(self) -> np.ndarray:
        """(13,) float64 ctrl of the last grasp step: 63.96 % of each actuator's upper ctrl limit (radians)."""
        return self._ctrl[-1].copy()

    def close(self) -> None:
        """Drop the MuJoCo model and data (nothing else to release)."""
        self.model = self.data = None

    def __enter__(self) -> Hand:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
