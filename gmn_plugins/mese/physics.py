"""MuJoCo simulation presets of the grasp world (``data.physics``; mese_environment_reference.md §3.1, §6(c)).

Pure data, importing no mujoco: ``hand.py``, which implements the presets, imports and re-exports them. The preset
names (the keys of ``PHYSICS_PRESETS``) are ``gmn_plugins.core.options.PHYSICS``, the values of the spec's
``data.physics`` option; ``data.hand.wrist_lock``'s values and ``data.hand.hull_vertices``' bounds, measured below,
are defined there too (tests/test_options.py checks the keys).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PhysicsPreset:
    """MuJoCo options: ``timestep`` seconds per physics step, ``substeps`` physics steps per env step."""

    timestep: float
    substeps: int
    iterations: int = 50
    tolerance: float = 1e-10
    solver: str = "Newton"
    cone: str = "elliptic"
    # Pure speed settings, measured on the built-in hand: sparse Jacobians +16 %, no constraint islands +4 %, with
    # the same grasps (mean |Δq| < 1e-4 rad).
    jacobian: str = "sparse"
    islands: bool = False


# Measured effect of the presets on the data (benchmarks/hand_calibration.py, 2000 grasps = 400 five-block objects x
# 5 wrist poses, seed 0, same grasps for both settings; statistics over each setting's accepted grasps):
#   built-in fast vs built-in faithful: all 132 dims within 0.5 std (median |Δmean|/std 0.001-0.008 per sensor
#     group, std ratios 0.995-1.003), touch activation rates equal within 0.002 (thumb distal 0.607 / 0.608, index
#     distal 0.459 / 0.459, ...; 3.17 sensors fire per grasp in both), acceptance 0.866 / 0.866;
#   real MPL fast vs MPL faithful: likewise (median |Δmean|/std <= 0.009, std ratios 0.995-1.015, touch rates within
#     0.001, acceptance 0.893 / 0.892); only the friction-locked wrist_PRO dims differ at the 1e-5 level.
#   The built-in hand (either preset) vs the MPL faithful: see the calibration table in the issue #4 report (94.7 % of
#     dims within 0.5 std and std ratio in [0.5, 2], all touch rates within 0.05, acceptance 0.866 vs 0.892).
# Speed (grasp simulations/s on one core, idle machine, sensors on the last step only): built-in fast ~180, built-in
# faithful ~94, MPL fast ~71, MPL faithful ~38. The MPL's collision detection is 62 % of its step time (mesh narrow
# phase 56 %; the explicit forearm–wristy pair alone ~18 %), the built-in's 32 %. Tried on the MPL and not taken:
# multiccd off (+12 %, unlocks the wrist), ccd_tolerance 1e-4 (+6 %, unlocks it too), constraint islands (+-0),
# dense Jacobian (-17 %), collision hulls capped at 64 vertices (+32 %, but middle-distal touch rate 0.458 vs 0.404;
# measured again on 2026-11-30: +46 %, 0.458 vs 0.404, FAIL). Offered, not default: hulls capped at 128 vertices
# (``data.hand = {mjcf = PATH, hull_vertices = 128}``; the full hulls have 180-1611 vertices): +27 % grasps/s, and
# against the full hulls on the same 1000 grasps it passes the calibration criteria (99.2 % of dims within 0.5 std,
# every touch rate within 0.038, acceptance 0.896 / 0.898). Commands: benchmarks/hand_calibration.py --a
# MPL:faithful:hull=128 --b MPL:faithful --grasps 1000; benchmarks/mese_throughput.py --only-mpl --hull 128 64.
# The bounds of data.hand.hull_vertices: core.options.MIN_HULL_VERTICES, MAX_HULL_VERTICES.

# data.hand.wrist_lock of an MJCF hand (mese.hand.mpl_file_xml): "contact" (default) locks wrist_PRO as MuJoCo 1.50
# did, by an explicit forearm-wristy contact pair, which needs MuJoCo's multiccd; "equality" locks it at 0 by the
# built-in hand's stiff joint equality instead and turns multiccd off. Measured on the real MPL, faithful physics, the
# same 1000 grasps (benchmarks/hand_calibration.py --a MPL:faithful:lock=equality --b MPL:faithful --grasps 1000):
# PASS, 96.2 % of dims within 0.5 std (the 5 failing are wrist_PRO's own: 3e-4 rad vs 0, both locked), every touch
# rate within 0.029, acceptance 0.898 / 0.898; with hull=128 as well: PASS, 96.2 %, touch rates within 0.017,
# acceptance 0.899 / 0.898. Scenes/s with 2 workers (benchmarks/mese_throughput.py --only-mpl --hull 128
# --equality-lock --scenes 48, two runs, the first with 24): full MPL 1.60 / 1.58, hull 128 1.93 / 2.62, equality
# lock 1.97 / 2.25, both 2.37 / 3.07 (the 2.5 is reached by both options together in one run of two).
# The values: core.options.WRIST_LOCKS.

PHYSICS_PRESETS = {
    "faithful": PhysicsPreset(timestep=0.002, substeps=20),  # the authors' options (reference §3.1)
    # Same 0.04 s env step at half the physics steps (reference §6(c)). MuJoCo's multiccd stays on: turning it off
    # gains nothing for the built-in hand and unlocks the real MPL's friction-locked wrist (wrist_PRO 0.15 rad);
    # data.hand.wrist_lock = "equality" locks that wrist by a joint equality and turns multiccd off.
    "fast": PhysicsPreset(timestep=0.004, substeps=10),
}
