"""Calibrate the built-in hand against the real MPL on the same grasps (mese_environment_reference.md §3, §7).

Both hands grasp the same objects at the same wrist poses (one 5-block object per ``--poses`` grasps, all randomness
from ``--seed``). Each hand's statistics are over its own accepted grasps (what a dataset would hold). Criteria:

* for >= 90 % of the 132 dimensions the built-in mean lies within 0.5 MPL standard deviations of the MPL mean and the
  std ratio (built-in / MPL) is in [0.5, 2] (a dimension constant in both hands passes when the means agree to 1e-3);
* per touch sensor, the activation rate (value > 0) within ±0.05 absolute;
* acceptance rates (no value > 150) within ±0.05.

Prints one table row per sensor group and the failing dimensions, then PASS/FAIL. Any two hand/physics settings can
be compared (``--a``/``--b`` as ``HAND:PHYSICS[:hull=N][:lock=equality]``, HAND = ``builtin`` or an MJCF path,
``hull=N`` its mesh hulls capped at N vertices, ``lock=equality`` its wrist locked by a joint equality with multiccd
off), e.g. built-in faithful vs fast, or the MPL with simplified hulls or the equality lock vs the original:

    python benchmarks/hand_calibration.py --grasps 2000 --workers 2
    python benchmarks/hand_calibration.py --a builtin:fast --b builtin:faithful
    python benchmarks/hand_calibration.py --a ../shared/assets/mpl_hand/mpl_right.xml:faithful:hull=64 \
        --b ../shared/assets/mpl_hand/mpl_right.xml:faithful
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time
from pathlib import Path

import numpy as np

MPL_XML = Path(__file__).resolve().parents[2] / "shared/assets/mpl_hand/mpl_right.xml"
GROUPS = (  # (name, first index, count) in sensordata order (reference §3.4)
    ("jointpos", 0, 22), ("jointvel", 22, 22), ("actuatorpos", 44, 13), ("actuatorvel", 57, 13),
    ("actuatorfrc", 70, 13), ("accelerometer", 83, 15), ("gyro", 98, 15), ("touch", 113, 19),
)  # fmt: skip


def _hand(setting: str):
    from gmn_plugins.mese.hand import Hand

    hand, _, rest = setting.partition(":")
    physics, *extras = rest.split(":")
    options = dict(extra.split("=") for extra in extras)
    return Hand(5, physics=physics or "faithful", mjcf=None if hand == "builtin" else hand,
                hull_vertices=int(options.get("hull", 0)), wrist_lock=options.get("lock", "contact"))


def _grasps(args: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Worker: sensordata of both hands for objects [first, stop): (objects·poses, 2, 132) float64 and the poses."""
    seed, first, stop, poses, settings = args
    from gmn_plugins.mese.grasp import sample_wrist_pose
    from gmn_plugins.mese.shapes import block_centres, sample_walk

    hands = [_hand(s) for s in settings]
    out, queries = [], []
    for obj in range(first, stop):
        rng = np.random.default_rng([seed, obj])
        centres = block_centres(sample_walk(rng, 5))
        for hand in hands:
            hand.set_object(centres)
        for _ in range(poses):
            query = sample_wrist_pose(rng)
            out.append([hand.grasp(query) for hand in hands])
            queries.append(query)
    return np.array(out), np.array(queries)


def collect(settings: list[str], grasps: int, poses: int, workers: int, seed: int) -> np.ndarray:
    objects = -(-grasps // poses)
    chunks = np.array_split(np.arange(objects), max(1, workers) * 4)
    tasks = [(seed, int(c[0]), int(c[-1]) + 1, poses, settings) for c in chunks if len(c)]
    if workers <= 1:
        parts = [_grasps(t) for t in tasks]
    else:
        with mp.get_context("spawn").Pool(workers) as pool:
            parts = pool.map(_grasps, tasks)
    return np.concatenate([p[0] for p in parts])[:grasps]


def compare(data: np.ndarray, names: tuple[str, str]) -> bool:
    """Print the per-group table for hand a (data[:, 0]) against reference hand b (data[:, 1]); return pass/fail."""
    a_all, b_all = data[:, 0], data[:, 1]
    ok_a, ok_b = a_all.max(axis=1) <= 150, b_all.max(axis=1) <= 150
    a, b = a_all[ok_a], b_all[ok_b]
    mean_a, mean_b, std_a, std_b = a.mean(0), b.mean(0), a.std(0), b.std(0)
    const = std_b < 1e-6
    mean_ok = np.where(const, np.abs(mean_a - mean_b) < 1e-3, np.abs(mean_a - mean_b) <= 0.5 * np.maximum(std_b, 1e-12))
    ratio = std_a / np.maximum(std_b, 1e-12)
    std_ok = np.where(const, std_a < 1e-3, (ratio >= 0.5) & (ratio <= 2.0))
    dim_ok = mean_ok & std_ok
    act_a, act_b = (a[:, 113:] > 0).mean(0), (b[:, 113:] > 0).mean(0)
    act_ok = np.abs(act_a - act_b) <= 0.05
    print(f"a = {names[0]}  vs  b = {names[1]} (reference); {len(data)} grasps; a accepted {len(a)}, b {len(b)}")
    header = f"{'group':<14}{'dims':>5}{'mean ok':>9}{'std ok':>8}{'both':>6}  {'|Δmean|/std_b med':>18}{'std ratio med':>14}"
    print(header)
    print("-" * len(header))
    for name, start, count in GROUPS:
        s = slice(start, start + count)
        z = np.abs(mean_a[s] - mean_b[s]) / np.maximum(std_b[s], 1e-12)
        print(f"{name:<14}{count:>5}{mean_ok[s].sum():>9}{std_ok[s].sum():>8}{dim_ok[s].sum():>6}  "
              f"{np.median(np.where(const[s], 0, z)):>18.3f}{np.median(np.where(const[s], 1, ratio[s])):>14.3f}")  # fmt: skip
    print("-" * len(header))
    print(f"{'all':<14}{132:>5}{mean_ok.sum():>9}{std_ok.sum():>8}{dim_ok.sum():>6}  "
          f"-> {dim_ok.mean():.1%} of dims pass (need >= 90 %)")  # fmt: skip
    bad = [int(i) for i in np.flatnonzero(~dim_ok)]
    if bad:
        print("failing dims (index: mean_a / mean_b, std_a / std_b):")
        for i in bad:
            print(f"  {i:3d}: {mean_a[i]:9.4f} / {mean_b[i]:9.4f}   {std_a[i]:8.4f} / {std_b[i]:8.4f}")
    print("touch activation rate (a / b):")
    touch_names = ["palm_thumb", "palm_pinky", "palm_side", "palm_back"] + [
        f"{f}_{p}" for f in ("thumb", "index", "middle", "ring", "pinky") for p in ("prox", "med", "dist")]  # fmt: skip
    for i, name in enumerate(touch_names):
        flag = "" if act_ok[i] else "   <-- off by more than 0.05"
        print(f"  {name:<15}{act_a[i]:6.3f} / {act_b[i]:6.3f}{flag}")
    acc_a, acc_b = ok_a.mean(), ok_b.mean()
    print(f"touch sensors firing per accepted grasp (mean): a {(a[:, 113:] > 0).sum(1).mean():.2f}, "
          f"b {(b[:, 113:] > 0).sum(1).mean():.2f}")  # fmt: skip
    print(f"acceptance: a {acc_a:.3f}, b {acc_b:.3f}")
    passed = dim_ok.mean() >= 0.9 and act_ok.all() and abs(acc_a - acc_b) <= 0.05
    print(f"dims {dim_ok.mean():.1%} (>= 90 %): {dim_ok.mean() >= 0.9}; touch rates within 0.05: {act_ok.all()} "
          f"({act_ok.sum()}/19); acceptance within 0.05: {abs(acc_a - acc_b) <= 0.05}  =>  {'PASS' if passed else 'FAIL'}")  # fmt: skip
    return passed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", default="builtin:faithful", help="hand under test, HAND:PHYSICS")
    parser.add_argument("--b", default=f"{MPL_XML}:faithful", help="reference hand, HAND:PHYSICS")
    parser.add_argument("--grasps", type=int, default=2000)
    parser.add_argument("--poses", type=int, default=5, help="wrist poses per object")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", help="save the raw (grasps, 2, 132) sensordata as .npy")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()} (timings and nothing else depend on it)")
    started = time.perf_counter()
    data = collect([args.a, args.b], args.grasps, args.poses, args.workers, args.seed)
    print(f"{len(data)} grasps per hand in {time.perf_counter() - started:.1f} s; load average {os.getloadavg()}")
    if args.save:
        np.save(args.save, data)
    names = tuple(s.replace(str(MPL_XML), "mpl_right.xml") for s in (args.a, args.b))
    raise SystemExit(0 if compare(data, names) else 1)


if __name__ == "__main__":
    main()
