"""The grasp world with real MuJoCo: sensordata layout, closing grasp, acceptance, and the real MPL for comparison."""

import xml.etree.ElementTree as ET
from pathlib import Path

import mujoco
import numpy as np
import pytest

from gmn_plugins.mese.grasp import MAX_SENSOR_VALUE, grasp_views, sample_wrist_pose, wrist_mocap_pose, wrist_pose
from gmn_plugins.mese.hand import NUM_SENSORDATA, Hand, builtin_hand_xml, check_sensor_layout
from gmn_plugins.mese.shapes import block_centres, sample_walk

MPL_XML = Path(__file__).resolve().parents[2] / "shared/assets/mpl_hand/mpl_right.xml"
L_SHAPE = block_centres(np.array([0, 0, 2, 2]))  # +x, +x, +y, +y: an L in the xy plane, centroid at the origin
WRIST = wrist_pose(pitch=0.0, yaw=1.6)  # hand level, palm down, fingers over the L
ACTUATOR_POS, JOINT_POS, TOUCH = slice(44, 57), slice(0, 22), slice(113, 132)
FINGER_MCP_ACTUATORS = [8, 9, 10, 12]  # index, middle, ring, pinky MCP
SENSORS = (  # (type, values per sensor, sensors) in sensordata order, reference §3.4
    ("JOINTPOS", 1, 22), ("JOINTVEL", 1, 22), ("ACTUATORPOS", 1, 13), ("ACTUATORVEL", 1, 13), ("ACTUATORFRC", 1, 13),
    ("ACCELEROMETER", 3, 5), ("GYRO", 3, 5), ("TOUCH", 1, 19),
)  # fmt: skip
EXPECTED_SENSORS = [(int(getattr(mujoco.mjtSensor, f"mjSENS_{t}")), dim) for t, dim, n in SENSORS for _ in range(n)]
FINGERS = ("thumb", "index", "middle", "ring", "pinky")
TOUCH_SITES = ["palm_thumb", "palm_pinky", "palm_side", "palm_back"] + [
    f"{finger}_{part}" for finger in FINGERS for part in ("proximal", "medial", "distal")
]
CTRL_TARGETS = [1.004, 0.505, 0.640, 1.343, 0.640, 0.640, 0.831, 0.2175, 1.023, 1.023, 1.023, 0.2175, 1.023]  # §3.3


@pytest.fixture(scope="module")
def hand():
    with Hand(n_blocks=5) as h:
        yield h


@pytest.fixture(scope="module")
def mpl_hand():
    if not MPL_XML.exists():
        pytest.skip(f"real MPL hand not available at {MPL_XML} (shared assets are not part of the repo)")
    with Hand(n_blocks=5, mjcf=MPL_XML) as h:
        yield h


def assert_mpl_layout(model):
    assert model.nsensordata == NUM_SENSORDATA
    assert list(zip(model.sensor_type, model.sensor_dim)) == EXPECTED_SENSORS
    hinges = [j for j in range(model.njnt) if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_HINGE]
    assert len(hinges) == 22 and model.nu == 13
    assert list(model.sensor_objid[:22]) == hinges and list(model.sensor_objid[44:57]) == list(range(13))
    assert [model.site(i).name for i in model.sensor_objid[-19:]] == TOUCH_SITES
    np.testing.assert_allclose(model.actuator_gainprm[:, 0], 10.0)


def test_builtin_sensordata_has_the_mpl_layout(hand):
    assert_mpl_layout(hand.model)
    assert hand.grasp(WRIST).shape == (NUM_SENSORDATA,)


def test_wrong_layout_unknown_preset_and_missing_file_are_rejected(tmp_path):
    xml = builtin_hand_xml(n_blocks=1).replace('<touch site="pinky_distal"/>', "")
    with pytest.raises(ValueError, match="132"):
        check_sensor_layout(mujoco.MjModel.from_xml_string(xml))
    with pytest.raises(ValueError, match="faithful"):
        Hand(physics="warp-speed")
    with pytest.raises(FileNotFoundError):
        Hand(mjcf=tmp_path / "no_such_hand.xml")


def test_wrist_pose_puts_the_object_centre_out_along_the_fingers():
    rng = np.random.default_rng(0)
    for _ in range(20):
        query = sample_wrist_pose(rng)
        pos, quat = wrist_mocap_pose(query)
        rot = np.empty(9)
        mujoco.mju_quat2Mat(rot, quat)
        np.testing.assert_allclose(rot.reshape(3, 3).T @ (np.zeros(3) - pos), [0, -0.17, -0.05], atol=1e-12)
        assert 0 <= query[3] < 2 * np.pi and 0 <= query[4] < 2 * np.pi


def test_grasp_touches_the_object_and_fingers_stop_short(hand):
    hand.remove_object()
    free = hand.grasp(WRIST)
    hand.set_object(L_SHAPE)
    held = hand.grasp(WRIST)
    targets = hand.ctrl_targets()
    np.testing.assert_allclose(targets, CTRL_TARGETS, atol=5e-4)
    np.testing.assert_allclose(hand.data.ctrl, targets)
    assert held.max() <= MAX_SENSOR_VALUE and (held[TOUCH] > 0).sum() >= 2
    shortfall = (targets - held[ACTUATOR_POS])[FINGER_MCP_ACTUATORS].max()
    assert shortfall > 0.3 and shortfall > (targets - free[ACTUATOR_POS])[FINGER_MCP_ACTUATORS].max() + 0.2
    assert abs(held[0]) < 0.005 and abs(held[70] - 10.04) < 0.05  # wrist_PRO locked, its actuator pulls 10·1.004
    np.testing.assert_array_equal(hand.grasp(WRIST), held)  # cached reset state: grasps are repeatable


def test_no_object_means_only_self_contact(hand):
    """Without an object nothing touches the blocks; touch comes only from the hand's own fingertips meeting (the MPL
    does the same: its thumb tip presses the index finger when closing in free air)."""
    hand.remove_object()
    sensordata = hand.grasp(WRIST)
    m, d = hand.model, hand.data
    blocks = {m.body(f"block{i}").id for i in range(hand.n_blocks)}
    touching = {m.geom_bodyid[g] for c in d.contact[: d.ncon] for g in (c.geom1, c.geom2)}
    assert d.ncon > 0 and not touching & blocks
    fired = [i for i, v in enumerate(sensordata[TOUCH]) if v > 1e-9]
    assert all(m.site_bodyid[m.sensor_objid[-19 + i]] in touching for i in fired)
    assert np.all(sensordata[TOUCH][:4] == 0)  # nothing reaches the palm


def test_grasp_views_returns_accepted_grasps(hand):
    rng = np.random.default_rng(1)
    hand.set_object(block_centres(sample_walk(rng, 5)))
    haptics, queries, attempts = grasp_views(hand, rng, n_views=15, max_attempts=30)
    assert haptics.shape == (15, NUM_SENSORDATA) and queries.shape == (15, 5)
    assert haptics.dtype == queries.dtype == np.float32
    assert 15 <= attempts <= 30 and haptics.max() <= MAX_SENSOR_VALUE
    assert (haptics[:, TOUCH] > 0).any(axis=1).mean() > 0.5  # most grasps touch the object
    with pytest.raises(RuntimeError, match="accepted"):
        grasp_views(hand, rng, n_views=15, max_attempts=5)


def test_grasp_computes_sensors_on_the_last_step_only_with_the_same_bytes(hand):
    """``grasp`` skips the sensors until the last physics step; a plain loop with sensors on gives the same bytes."""
    hand.set_object(L_SHAPE)
    pos, quat = wrist_mocap_pose(WRIST)
    mujoco.mj_setState(hand.model, hand.data, hand._reset_state, hand._state_spec)
    hand.data.mocap_pos[0], hand.data.mocap_quat[0] = pos, quat
    for ctrl in hand._ctrl:
        hand.data.ctrl[:] = ctrl
        mujoco.mj_step(hand.model, hand.data, nstep=hand.substeps)
    plain, plain_qpos = hand.data.sensordata.copy(), hand.data.qpos.copy()
    assert (plain[TOUCH] > 0).any()
    np.testing.assert_array_equal(hand.grasp(WRIST), plain)
    np.testing.assert_array_equal(hand.data.qpos, plain_qpos)
    assert not hand.model.opt.disableflags & mujoco.mjtDisableBit.mjDSBL_SENSOR  # the model is left as it was


def test_fast_preset_gives_the_same_grasp_within_contact_noise(hand):
    hand.set_object(L_SHAPE)
    with Hand(n_blocks=5, physics="fast") as fast:
        fast.set_object(L_SHAPE)
        a, b = hand.grasp(WRIST), fast.grasp(WRIST)
        assert fast.model.opt.timestep == 2 * hand.model.opt.timestep
    np.testing.assert_allclose(a[JOINT_POS], b[JOINT_POS], atol=0.05)
    np.testing.assert_array_equal(a[TOUCH] > 0, b[TOUCH] > 0)


def test_real_mpl_loads_and_grasps_like_the_builtin_hand(mpl_hand, hand):
    assert_mpl_layout(mpl_hand.model)
    mpl_hand.set_object(L_SHAPE)
    hand.set_object(L_SHAPE)
    real, own = mpl_hand.grasp(WRIST), hand.grasp(WRIST)
    assert real.max() <= MAX_SENSOR_VALUE and (real[TOUCH] > 0).any()
    assert abs(real[0]) < 0.01  # the forearm–wristy contact pair locks the pronation joint (reference §5)
    np.testing.assert_array_equal(real[TOUCH] > 0, own[TOUCH] > 0)
    np.testing.assert_allclose(real[JOINT_POS], own[JOINT_POS], atol=0.1)


def test_original_haptix_layout_is_attached_to_the_mocap_like_mese(mpl_hand, tmp_path):
    """The HAPTIX file has a free-floating forearm beside the mocap body; loading it must give MESE's hand exactly."""
    root = ET.parse(MPL_XML).getroot()
    compiler = root.find("compiler")
    for attr in ("meshdir", "texturedir"):
        compiler.set(attr, str(MPL_XML.parent / compiler.get(attr)) + "/")
    mocap = next(b for b in root.iter("body") if b.get("name") == "mocap")
    forearm = mocap.find("body")
    mocap.remove(forearm)
    forearm.attrib.update(pos="0 -0.35 0.2", axisangle="0 0 1 3.141592")
    forearm.insert(0, ET.Element("joint", type="free"))
    root.find("worldbody").append(forearm)
    haptix = tmp_path / "mpl_haptix.xml"
    ET.ElementTree(root).write(haptix)
    mpl_hand.set_object(L_SHAPE)
    with Hand(n_blocks=5, mjcf=haptix) as loaded:
        loaded.set_object(L_SHAPE)
        assert loaded.model.nq == 22 and loaded.model.body("forearm").parentid == loaded.model.body("mocap").id
        np.testing.assert_array_equal(loaded.grasp(WRIST), mpl_hand.grasp(WRIST))


def test_mpl_hulls_capped_at_load_time(mpl_hand):
    """``hull_vertices`` caps every mesh's collision hull (MuJoCo's maxhullvert); the hand still grasps, locked."""
    def hull_sizes(model):  # mesh_graph[adr] = number of hull vertices (MuJoCo's convex-hull graph layout)
        return [int(model.mesh_graph[model.mesh_graphadr[i]]) for i in range(model.nmesh) if model.mesh_graphadr[i] >= 0]

    with Hand(n_blocks=5, mjcf=MPL_XML, hull_vertices=12) as capped:
        assert max(hull_sizes(capped.model)) <= 12 < max(hull_sizes(mpl_hand.model))
        capped.set_object(L_SHAPE)
        sense = capped.grasp(WRIST)
        assert sense.max() <= MAX_SENSOR_VALUE and (sense[TOUCH] > 0).any() and abs(sense[0]) < 0.01
    with pytest.raises(ValueError, match="hull_vertices"):
        Hand(n_blocks=5, mjcf=MPL_XML, hull_vertices=3)


def test_mpl_wrist_locked_by_an_equality_lets_multiccd_go(mpl_hand):
    """``wrist_lock="equality"`` replaces the forearm-wristy contact lock by a joint equality and turns MuJoCo's
    multiccd off; the contact lock needs multiccd (without it the wrist turns 0.118 rad in this grasp)."""
    multiccd = int(mujoco.mjtDisableBit.mjDSBL_MULTICCD)
    assert not mpl_hand.model.opt.disableflags & multiccd and mpl_hand.model.npair == 1
    with Hand(n_blocks=5, mjcf=MPL_XML, wrist_lock="equality") as locked:
        assert locked.model.opt.disableflags & multiccd and locked.model.npair == 0
        assert locked.model.neq == mpl_hand.model.neq + 1
        locked.set_object(L_SHAPE)
        sense = locked.grasp(WRIST)
        assert abs(sense[0]) < 1e-3 and (sense[TOUCH] > 0).any() and sense.max() <= MAX_SENSOR_VALUE
    with Hand(n_blocks=5, mjcf=MPL_XML) as loose:
        loose.model.opt.disableflags |= multiccd
        loose.set_object(L_SHAPE)
        assert abs(loose.grasp(WRIST)[0]) > 0.05
    with pytest.raises(ValueError, match="wrist_lock"):
        Hand(n_blocks=5, mjcf=MPL_XML, wrist_lock="glue")
