"""``gmn-data``: make, merge, check and look at MESE datasets.

    gmn-data generate --out DIR --scenes N [--val N] [--test N] [--workers K] [--seed S] [--blocks B]
                      [--hand builtin|PATH.xml] [--hull-vertices N] [--wrist-lock contact|equality]
                      [--physics fast|faithful] [--saturation code|paper]
                      [--sensors camera.rgb,hand.haptic] [--shard-range A:B | --part K/N | --part auto]
    gmn-data finalize DIR        (re)write the manifest from the per-shard records (after --shard-range runs)
    gmn-data repair DIR          regenerate missing or corrupted shards (same bytes) and rewrite the manifest
    gmn-data verify DIR          check every shard's sha256; one line per bad shard, exit 2 if any
    gmn-data info DIR [--json]   counts, splits, sensors, shapes, statistics
    gmn-data pack DIR [--splits train,val]
                                 the uncompressed, memory-mapped copy training reads (made on first use anyway)
    gmn-data show DIR --scene I [--split train] [--grasp G] --out PNG

Shards are pure functions of (seed, split, shard index): ``--shard-range A:B`` makes the global shards A..B-1 only
(no manifest), so N machines can each make a range of one dataset; ``finalize`` merges them. ``--part K/N`` makes
the K-th of N equal ranges and, when it finds every shard made, writes the manifest itself; ``--part auto`` reads K
and N from a Slurm array job or torchrun (``mese.generate.scheduler_part``), so one command line serves every task. ``generate`` on a
finished dataset checks it and regenerates what is missing or corrupted, as ``repair`` does. Errors are one line on
stderr: exit code 2 for the user's input, 1 for a fault of the machine (disk full, read-only directory).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from . import user_errors
from ..data.format import (MANIFEST, PACKED, SHARD_GLOB, DataError, pack_split, packed_dir, query_key, read_manifest,
                           read_shard, shard_path)  # fmt: skip
from ..runtime.faults import cannot_write
from ..mese.generate import (BOUNDS, DatasetConfig, finalize, generate, generate_part, read_config, repair,
                             scheduler_part, shard_tasks, verify)  # fmt: skip
from ..core.options import MAX_HULL_VERTICES, MIN_HULL_VERTICES, WRIST_LOCKS
from ..mese.physics import PHYSICS_PRESETS
from ..mese.scene import SATURATION, hand_setting


def _part(text: str) -> tuple[int, int] | str:
    if text == "auto":
        return text
    k, sep, n = text.partition("/")
    try:
        return int(k), int(n)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected K/N (two integers) or auto, got {text!r}") from None


def _shard_range(text: str) -> tuple[int, int]:
    a, sep, b = text.partition(":")
    try:
        return int(a), int(b)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected A:B (two integers), got {text!r}") from None


def _fail(message: str) -> None:
    print(f"gmn-data: {message}", file=sys.stderr)
    sys.exit(2)


def _generate(args: argparse.Namespace) -> None:
    for flag in ("seed", "blocks", "views", "shard_size", "scenes", "val", "test", "workers"):
        low, high = BOUNDS["scenes" if flag in ("val", "test") else flag]  # gmn-run's bounds (mese.generate)
        if not low <= getattr(args, flag) <= high:
            _fail(f"--{flag.replace('_', '-')}: must be in [{low}, {high}], got {getattr(args, flag)}")
    if args.scenes + args.val + args.test < 1:
        _fail("--scenes/--val/--test: the dataset must hold at least one scene")
    splits = {"train": args.scenes, **({"val": args.val} if args.val else {}), **({"test": args.test} if args.test else {})}
    hulls_ok = MIN_HULL_VERTICES <= args.hull_vertices <= MAX_HULL_VERTICES
    if args.hull_vertices and (args.hand == "builtin" or not hulls_ok):
        _fail(f"--hull-vertices: caps an MJCF hand's mesh hulls: give --hand PATH.xml and N in [{MIN_HULL_VERTICES}, "
              f"{MAX_HULL_VERTICES}] (0: full hulls)")
    if args.wrist_lock != "contact" and args.hand == "builtin":
        _fail("--wrist-lock: chooses how an MJCF hand's wrist is locked: give --hand PATH.xml")
    hand = hand_setting(None if args.hand == "builtin" else args.hand, args.hull_vertices, args.wrist_lock)
    config = DatasetConfig(seed=args.seed, blocks=args.blocks, views=args.views, physics=args.physics, hand=hand,
                           saturation=args.saturation, shard_size=args.shard_size,
                           sensors=tuple(args.sensors.split(",")), splits=splits)  # fmt: skip
    if args.part and args.shard_range:
        _fail("--part and --shard-range: give one of them")
    started = time.perf_counter()
    if args.part:
        k, n = scheduler_part() if args.part == "auto" else args.part
        result = generate_part(args.out, config, k, n, workers=args.workers, progress=not args.no_progress)
    else:
        result = generate(args.out, config, workers=args.workers, progress=not args.no_progress,
                          shard_range=args.shard_range)  # fmt: skip
    seconds = time.perf_counter() - started
    if "part" in result:
        scenes = sum(e["scenes"] for e in result["shards"])
        report = {"dir": args.out, "part": result["part"], "scenes": scenes, "shards": len(result["shards"]),
                  "total_shards": result["total_shards"], "finalized": result["finalized"]}  # fmt: skip
        if not result["finalized"]:
            report["next"] = "the part that finishes last writes the manifest (or: gmn-data finalize DIR)"
    elif "splits" in result:
        scenes = sum(s["scenes"] for s in result["splits"].values())
        report = {"dir": args.out, "scenes": scenes}
    else:
        scenes = sum(e["scenes"] for e in result["shards"])
        report = {"dir": args.out, "scenes": scenes, "shards": len(result["shards"]),
                  "total_shards": result["total_shards"], "next": f"gmn-data finalize {args.out} once all shards exist"}  # fmt: skip
    report.update(seconds=round(seconds, 2), scenes_per_second=round(scenes / max(seconds, 1e-9), 2))
    print(json.dumps(report))


def _info(args: argparse.Namespace) -> None:
    import numpy as np

    root = Path(args.dir)
    config = read_config(root)
    tasks = shard_tasks(config)
    present = sum(shard_path(root, split, shard).exists() for split, shard, _, _ in tasks)
    manifest = read_manifest(root) if (root / MANIFEST).exists() else None
    info = {"dir": str(root), "config": config.to_json(), "shards": {"total": len(tasks), "present": present},
            "finalized": manifest is not None}  # fmt: skip
    if manifest:
        info["splits"] = {}
        for name, split in manifest["splits"].items():
            grasps = split["scenes"] * config.views if query_key("wrist") in manifest["shapes"] else 0
            info["splits"][name] = {"scenes": split["scenes"], "shards": len(split["shards"]),
                                    "grasp_acceptance": round(grasps / split["grasp_attempts"], 4) if grasps else None}  # fmt: skip
        info["shapes_per_scene"] = manifest["shapes"]
        info["sensors"] = manifest["sensor_info"]
        info["stats"] = {}
        for key, s in manifest["stats"].items():
            lo, hi = np.array(s["min"]), np.array(s["max"])
            info["stats"][key] = {"dims": int(lo.size), "shape": list(lo.shape), "min": float(lo.min()),
                                  "max": float(hi.max()), "dims_below_range_floor_0.1": int(((hi - lo) < 0.1).sum())}
        info["bytes"] = sum(p.stat().st_size for p in root.glob(SHARD_GLOB))
        info["packed_bytes"] = sum(p.stat().st_size for p in root.glob(f"{PACKED}/*/*.npy"))
    if args.json:
        print(json.dumps(info, indent=2))
        return
    c = info["config"]
    print(f"{root}: MESE dataset, seed {c['seed']}, {c['blocks']} blocks, {c['views']} views/scene, hand {c['hand']}, "
          f"physics {c['physics']}, saturation {c['saturation']}, generator v{c['generator_version']}")  # fmt: skip
    print(f"shards: {present} of {len(tasks)} present; " + ("finalized" if manifest else f"not finalized (gmn-data finalize {root})"))
    if not manifest:
        return
    for name, s in info["splits"].items():
        acc = f", grasp acceptance {s['grasp_acceptance']:.3f}" if s["grasp_acceptance"] else ""
        print(f"  {name:<6}{s['scenes']:>9} scenes in {s['shards']} shards{acc}")
    print(f"  {info['bytes'] / 2**20:.1f} MiB on disk" + (f", {info['packed_bytes'] / 2**20:.1f} MiB packed for "
          f"training (gmn-data pack)" if info.get("packed_bytes") else ""))
    print("sensors:")
    for name, s in info["sensors"].items():
        optics = f", {s['resolution'][0]}x{s['resolution'][1]} px, fovy {s['fovy_degrees']:.2f}°" if "resolution" in s else ""
        print(f"  {name:<14}{str(tuple(s['shape'])):<14}{s['dtype']:<8} {s['units']}{optics}; query {s['query']}, "
              f"normalization {s['normalization']}")  # fmt: skip
    print("arrays per scene: " + ", ".join(f"{k} {tuple(v)}" for k, v in sorted(info["shapes_per_scene"].items())))
    for key, s in info["stats"].items():
        shape = f" ({'x'.join(map(str, s['shape']))})" if len(s["shape"]) > 1 else ""
        print(f"stats {key}: {s['dims']} dims{shape} over the train split, min {s['min']:.4g}, max {s['max']:.4g}, "
              f"{s['dims_below_range_floor_0.1']} dims with range < 0.1 (floored)")  # fmt: skip


def _show(args: argparse.Namespace) -> None:
    from ..mese.show import show_scene

    root = Path(args.dir)
    config = read_config(root)
    manifest = read_manifest(root) if (root / MANIFEST).exists() else {}
    scenes = config.splits.get(args.split, 0)
    if not 0 <= args.scene < scenes:
        raise DataError(f"{root}: --scene {args.scene}: split {args.split!r} has {scenes} scenes")
    shard, within = divmod(args.scene, config.shard_size)
    path = shard_path(root, args.split, shard)
    if not path.exists():
        raise DataError(f"{path}: missing; generate it first")
    arrays = {k: v[within] for k, v in read_shard(path).items()}
    if not 0 <= args.grasp < config.views:
        raise DataError(f"{root}: --grasp {args.grasp}: scenes have {config.views} views")
    title = (f"{root} {args.split} scene {args.scene}: label {int(arrays['label'])}, walk {arrays['walk'].tolist()}, "
             f"hand {config.hand}, physics {config.physics}")  # fmt: skip
    try:
        show_scene(arrays, config, manifest.get("stats", {}), args.out, title, grasp=args.grasp)
    except OSError as exc:
        raise DataError(f"{args.out}: cannot write: {exc.strerror or exc}") from None
    print(args.out)


def _finalize(args: argparse.Namespace) -> None:
    manifest = finalize(args.dir)
    scenes = {name: s["scenes"] for name, s in manifest["splits"].items()}
    print(json.dumps({"dir": args.dir, "scenes": scenes, "manifest": str(Path(args.dir) / MANIFEST)}))


def _repair(args: argparse.Namespace) -> None:
    manifest, remade = repair(args.dir, workers=args.workers, progress=not args.no_progress)
    scenes = {name: s["scenes"] for name, s in manifest["splits"].items()}
    print(json.dumps({"dir": args.dir, "scenes": scenes, "shards_regenerated": remade}))


def _pack(args: argparse.Namespace) -> None:
    root = Path(args.dir)
    manifest = read_manifest(root)
    splits = args.splits.split(",") if args.splits else [s for s, v in manifest["splits"].items() if v["scenes"]]
    packed = {}
    for split in splits:
        read_manifest(root, split)  # an unknown split: one line naming it
        try:
            index = pack_split(root, split, progress=not args.no_progress)
        except OSError as exc:
            raise cannot_write(packed_dir(root, split), exc, "the shards are intact; free space or fix the "
                               "directory and run it again", DataError) from None  # fmt: skip
        size = sum((packed_dir(root, split) / f["file"]).stat().st_size for f in index["files"].values())
        packed[split] = {"scenes": index["scenes"], "dir": str(packed_dir(root, split)), "bytes": size}
    print(json.dumps({"dir": args.dir, "packed": packed}))


def _verify(args: argparse.Namespace) -> None:
    problems = verify(args.dir)
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        sys.exit(2)
    print(f"{args.dir}: all shard checksums match the manifest")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="gmn-data", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="generate (or finish) a dataset; same bytes for any --workers")
    gen.add_argument("--out", required=True, help="dataset directory")
    gen.add_argument("--scenes", type=int, required=True, help="training scenes (0 for a test-only held-out set)")
    gen.add_argument("--val", type=int, default=0, help="validation scenes")
    gen.add_argument("--test", type=int, default=0, help="test scenes")
    gen.add_argument("--workers", type=int, default=0, help="processes (0 = one per core)")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--blocks", type=int, default=5, help="blocks per object (5; 4 and 6 for held-out sets)")
    gen.add_argument("--views", type=int, default=15)
    gen.add_argument("--hand", default="builtin", help="'builtin' or the path of an MPL-layout MJCF file")
    gen.add_argument("--hull-vertices", type=int, default=0, help="cap each mesh's collision hull of an MJCF hand at "
                     "N vertices (faster, see mese/hand.py; 0: full hulls)")
    gen.add_argument("--wrist-lock", choices=WRIST_LOCKS, default="contact", help="how an MJCF hand's wrist is "
                     "locked: contact (MuJoCo 1.50's lock, the authors' data) or equality (faster, see mese/physics.py)")
    gen.add_argument("--physics", choices=tuple(PHYSICS_PRESETS), default="fast")
    gen.add_argument("--saturation", choices=tuple(SATURATION), default="code",
                     help="block colour saturation: code = U(0.75, 1) (authors' code), paper = U(0, 0.75)")
    gen.add_argument("--shard-size", type=int, default=32)
    gen.add_argument("--sensors", default="camera.rgb,hand.haptic", help="comma-separated sensor names")
    gen.add_argument("--shard-range", type=_shard_range, help="make only global shards A..B-1, no manifest")
    gen.add_argument("--part", type=_part, help="K/N: make part K (0-based) of N; auto: from Slurm or torchrun's "
                     "environment; the last part to finish writes the manifest")  # fmt: skip
    gen.add_argument("--no-progress", action="store_true")
    gen.set_defaults(run=_generate)
    fin = sub.add_parser("finalize", help="(re)write the manifest from the per-shard records")
    fin.add_argument("dir")
    fin.set_defaults(run=_finalize)
    rep = sub.add_parser("repair", help="regenerate missing or corrupted shards (same bytes), rewrite the manifest")
    rep.add_argument("dir")
    rep.add_argument("--workers", type=int, default=0, help="processes (0 = one per core)")
    rep.add_argument("--no-progress", action="store_true")
    rep.set_defaults(run=_repair)
    ver = sub.add_parser("verify", help="check every shard against its sha256 in the manifest")
    ver.add_argument("dir")
    ver.set_defaults(run=_verify)
    pack = sub.add_parser("pack", help="write the uncompressed, memory-mappable copy of splits that training reads")
    pack.add_argument("dir")
    pack.add_argument("--splits", default="", help="comma-separated splits (default: every non-empty one)")
    pack.add_argument("--no-progress", action="store_true")
    pack.set_defaults(run=_pack)
    inf = sub.add_parser("info", help="counts, splits, sensors, shapes, statistics")
    inf.add_argument("dir")
    inf.add_argument("--json", action="store_true")
    inf.set_defaults(run=_info)
    show = sub.add_parser("show", help="camera views, hand-view renders and the haptic vector of one scene as a PNG")
    show.add_argument("dir")
    show.add_argument("--scene", type=int, required=True)
    show.add_argument("--split", default="train")
    show.add_argument("--grasp", type=int, default=0, help="which grasp's haptic vector to plot")
    show.add_argument("--out", required=True, help="PNG file")
    show.set_defaults(run=_show)
    args = parser.parse_args(argv)
    with user_errors():
        args.run(args)


if __name__ == "__main__":
    main()
