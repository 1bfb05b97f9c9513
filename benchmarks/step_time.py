"""FLOPs, step time and peak memory of one GMN training step (forward + backward), hoisted vs straightforward.

Episodes: per modality and scene 7 context + 8 target points. Modality sets (reference §1.1, plus two larger):
  |M|=2: image (3,64,64) + vector (132,)          |M|=5: 4 x image (3,32,32) + vector (132,)
  |M|=8: 6 x image (1,48,24) + vectors (61,),(71,) |M|=14: 12 x image (1,24,24) + vectors (61,),(71,)
  |M|=32: 16 x image (3,16,16) + 15 vectors (12 x (9,), 3 x (8,): the 132 dims in groups) + vector (132,)
  |M|=64: 48 x image (1,16,16) + the same 15 vector groups + vector (132,)
FLOPs: torch.utils.flop_counter.FlopCounterMode (a multiply-add = 2 FLOPs; forward + backward). Time: median wall
time of a training step (zero_grad, forward, backward, element-wise clip at 0.25, Adam) in a fresh process per
configuration, after one warm-up step. "Straightforward" is GMN(hoisted=False), frozen as at commit 109f683
(tests/test_reference_flops.py pins its FLOPs), stepped as a plain implementation would be: torch's default
(for-loop) Adam, glibc's default allocator thresholds. The hoisted form is stepped as training steps it:
train.adam and train.malloc at their defaults (fused Adam, freed memory retained), or --adam / --malloc.
--same-step adds a column: the straightforward model under the hoisted form's step settings (the models alone).
The speed-up is straightforward time / hoisted time in one run.
Training batch: the specs' batch (12 scenes for |M| = 2, 5, 8; 9 for |M| = 14) with add-opposite, i.e. twice as
many episodes. Memory: the process's peak resident set size (ru_maxrss), weights and gradients included.
GFLOP/s are set against a reference convolution (256 -> 256 channels, 5x5, 16x16, batch 8, fp32) timed in the
same run with the same threads. The machine is shared: the load average is printed with every table.

    python benchmarks/step_time.py [--quick] [--threads 2] [--reps 3] [--profile] [--memory-format channels_last]
        [--compile cells] [--adam for-loop] [--malloc default] [--same-step] [--table1-only]
        [--training-reps 1] [--training-only 2,14]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from gmn_plugins.runtime import allocator
from gmn_plugins.models import GMN, PRESETS, ModalityInfo, Points
from gmn_plugins.core.spec import TrainSpec
from gmn_plugins.training.trainer import compile_model, make_optimizer, to_memory_format
from gmn_plugins.core.options import ADAMS, COMPILES, MALLOCS, MEMORY_FORMATS

VARIANTS = ("baseline", "apoe", "poe")
PAPER_RATIOS = {2: (1.70, 0.83), 5: (1.71, 1.16), 8: (2.06, 1.47), 14: (1.37, 1.73)}  # P100, batch 1, Table 1
TRAINING_BATCH = {2: 12, 5: 12, 8: 12, 14: 9}  # specs/m*.toml train.batch_scenes
REFERENCE_GFLOP = {"baseline": {2: 398, 14: 343}, "apoe": {2: 510, 14: 554}, "poe": {2: 510, 14: 547}}


def modalities(m: int) -> list[ModalityInfo]:
    """The modality set of |M| = m (module docstring). Raises ValueError for another m."""
    groups = [ModalityInfo(f"vec{k}", "vector", (9 if k < 12 else 8,)) for k in range(15)]
    sets = {
        2: [ModalityInfo("image", "image", (3, 64, 64)), ModalityInfo("haptic", "vector", (132,))],
        5: [ModalityInfo(f"image{k}", "image", (3, 32, 32)) for k in range(4)]
        + [ModalityInfo("haptic", "vector", (132,))],
        8: [ModalityInfo(f"image{k}", "image", (1, 48, 24)) for k in range(6)]
        + [ModalityInfo("haptics1", "vector", (61,)), ModalityInfo("haptics2", "vector", (71,))],
        14: [ModalityInfo(f"image{k}", "image", (1, 24, 24)) for k in range(12)]
        + [ModalityInfo("haptics1", "vector", (61,)), ModalityInfo("haptics2", "vector", (71,))],
        32: [ModalityInfo(f"image{k}", "image", (3, 16, 16)) for k in range(16)] + groups
        + [ModalityInfo("haptic", "vector", (132,))],
        64: [ModalityInfo(f"image{k}", "image", (1, 16, 16)) for k in range(48)] + groups
        + [ModalityInfo("haptic", "vector", (132,))],
    }
    if m not in sets:
        raise ValueError(f"|M| must be one of {sorted(sets)}, got {m}")
    return sets[m]


def episode(mods, scenes: int, context: int = 7, target: int = 8):
    """Random context and target Points, `context` and `target` points per modality and scene."""
    def pts(info, n):
        return Points(torch.rand(n * scenes, *info.shape), torch.randn(n * scenes, 5),
                      torch.arange(scenes).repeat_interleave(n))
    return [pts(i, context) for i in mods], [pts(i, target) for i in mods]


def build(cfg) -> tuple[GMN, list, list]:
    torch.manual_seed(0)
    mods = modalities(cfg["m"])
    model = GMN(mods, PRESETS[cfg["preset"]], inference=cfg["variant"], hoisted=cfg.get("hoisted", True),
                amortizer=cfg.get("amortizer", "batched"))
    if cfg.get("hoisted", True):  # the straightforward form stays as frozen
        compile_model(to_memory_format(model, cfg.get("memory_format", "contiguous")), cfg.get("compile", "off"))
    return model, *episode(mods, cfg["scenes"])


def step(model, context, target, scenes, optimizer=None):
    """One training step: forward, backward and, with an optimizer, the paper's element-wise clip and Adam."""
    model.zero_grad(set_to_none=True)
    model(context, target, scenes)["loss"].backward()
    if optimizer is not None:
        torch.nn.utils.clip_grad_value_(model.parameters(), 0.25)
        optimizer.step()


def amortizer_step(model, r, t, present):
    """The inference network alone (posterior + prior cells, every expert, T steps), forward + backward."""
    model.zero_grad(set_to_none=True)
    latents = model.inference.posterior(r, t, present, present)
    (latents.z.square().sum() + latents.kl.sum()).backward()


REFERENCE_STEP = {"adam": "for-loop", "malloc": "default"}  # torch's and the C library's defaults


def measure(cfg) -> dict:
    """One configuration, in this process: FLOPs (optional), median step time (s), peak RSS (MiB)."""
    allocator.configure(cfg.get("malloc", REFERENCE_STEP["malloc"]))
    torch.set_num_threads(cfg["threads"])
    model, context, target = build(cfg)
    if cfg.get("part") == "amortizer":  # time the amortizer alone on random representations (M, B, r, h, w)
        shape = (cfg["m"], cfg["scenes"], model.preset.r_channels, *model.grid)
        r, t = torch.rand(shape), torch.rand(shape)
        present = torch.ones(cfg["m"], cfg["scenes"], dtype=torch.bool)
        context, target = (r, t), present
        step_fn = lambda: amortizer_step(model, r, t, present)  # noqa: E731
    else:
        optimizer = make_optimizer(model.parameters(), 1e-4, cfg.get("adam", REFERENCE_STEP["adam"]))
        step_fn = lambda: step(model, context, target, cfg["scenes"], optimizer)  # noqa: E731
    out = {}
    if cfg.get("flops"):
        with FlopCounterMode(display=False) as counter:
            step(model, context, target, cfg["scenes"])
        out["gflop"] = counter.get_total_flops() / 1e9
    times = []
    for _ in range(cfg["reps"] + 1):
        started = time.perf_counter()
        step_fn()
        times.append(time.perf_counter() - started)
    out["time"] = statistics.median(times[1:]) if cfg["reps"] else None
    out["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def _memory_limit() -> None:
    """In the child: address space at most 3/4 of the machine's memory, so that a configuration too large for it
    fails alone (an allocation error) instead of waking the OOM killer."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    resource.setrlimit(resource.RLIMIT_AS, (total * 3 // 4, total * 3 // 4))


def run(cfg) -> dict:
    """`measure` in a fresh process, so that peak memory and allocator state belong to this configuration."""
    result = subprocess.run([sys.executable, __file__, "--one", json.dumps(cfg)], capture_output=True, text=True,
                            preexec_fn=_memory_limit)  # fmt: skip
    if result.returncode:
        raise RuntimeError(f"{cfg}: {result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def reference_conv_gflops(threads: int, reps: int = 10) -> float:
    """Achieved GFLOP/s of conv2d 256 -> 256, 5x5, 16x16, batch 8, fp32, padding 2, forward."""
    torch.set_num_threads(threads)
    x, w = torch.randn(8, 256, 16, 16), torch.randn(256, 256, 5, 5)
    F.conv2d(x, w, padding=2)
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        F.conv2d(x, w, padding=2)
        times.append(time.perf_counter() - started)
    return 2 * 8 * 256 * 256 * 25 * 16 * 16 / statistics.median(times) / 1e9


def load() -> str:
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def profile(threads: int) -> None:
    """torch.profiler table of one v4 |M|=2 APoE training step, hoisted."""
    torch.set_num_threads(threads)
    model, context, target = build({"m": 2, "preset": "v4", "variant": "apoe", "scenes": 1})
    step(model, context, target, 1)
    with torch.profiler.profile() as prof:
        step(model, context, target, 1)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="v4 FLOPs and timings at |M| in {2, 14} only, "
                        "1 repetition")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--training-reps", type=int, help="repetitions at the training batch (default: --reps; "
                        "a straightforward v4 step there takes minutes)")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--table1-only", action="store_true", help="only the Table 1 cells (|M| = 2, 5, 8, 14, v4): "
                        "FLOPs, batch 1 and the training batch; no small preset, |M| = 32/64 or amortizer tables")
    parser.add_argument("--memory-format", choices=MEMORY_FORMATS, default="contiguous",
                        help="train.memory_format of the hoisted form (the straightforward form stays contiguous)")
    parser.add_argument("--compile", choices=COMPILES, default="off", help="train.compile of the hoisted form")
    parser.add_argument("--adam", choices=ADAMS, default=TrainSpec().adam, help="train.adam of the hoisted form's "
                        "step (default: training's); the straightforward form keeps torch's for-loop Adam")
    parser.add_argument("--malloc", choices=MALLOCS, default=TrainSpec().malloc, help="train.malloc of the hoisted "
                        "form's process (default: training's); the straightforward form keeps the C library's")
    parser.add_argument("--same-step", action="store_true", help="batch-1 table: also time the straightforward "
                        "model under the hoisted form's Adam and malloc (the model's own speed-up)")
    parser.add_argument("--training-only", metavar="M,M", help="only the training-batch table, for these |M| "
                        "(e.g. 2,14)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(json.loads(args.one))))
        return
    if args.profile:
        profile(args.threads)
        return
    reps = 1 if args.quick else args.reps
    base = {"threads": args.threads, "memory_format": args.memory_format, "compile": args.compile}
    settings = {"adam": args.adam, "malloc": args.malloc}
    forms = {True: {"hoisted": True, **settings}, False: {"hoisted": False, **REFERENCE_STEP}}
    print(f"torch {torch.__version__}, {args.threads} threads, hoisted form {args.memory_format} "
          f"compile={args.compile} adam={args.adam} malloc={args.malloc}; straightforward form adam="
          f"{REFERENCE_STEP['adam']} malloc={REFERENCE_STEP['malloc']}, {load()}")
    conv = reference_conv_gflops(args.threads)
    print(f"reference conv (256->256, 5x5, 16x16, batch 8, fp32): {conv:.1f} GFLOP/s")

    ms = (2, 14) if args.quick else (2, 5, 8, 14)
    if args.training_only:  # only the training-batch table, for the given |M|
        ms = tuple(int(m) for m in args.training_only.split(","))
    else:
        print(f"\n## FLOPs of one training step (fwd+bwd), batch 1 scene, GFLOP, hoisted / straightforward  ({load()})")
        every = (2, 5, 8, 14) if args.table1_only else (2, 5, 8, 14, 32, 64)
        print("| preset | variant | " + " | ".join(f"|M|={m}" for m in every) + " |")
        print("|---|---|" + "---|" * len(every))
        flops = {}
        for preset in ("v4",) if args.table1_only else ("v4", "small"):
            for variant in VARIANTS:
                cells = []
                for m in every:
                    if (args.quick or args.table1_only) and m not in ((2, 14) if args.quick else (2, 5, 8, 14)):
                        cells.append("-")
                        continue
                    pair = [run({**base, "m": m, "preset": preset, "variant": variant, "scenes": 1, "hoisted": h,
                                 "flops": True, "reps": 0})["gflop"] for h in (True, False)]
                    flops[preset, variant, m] = pair
                    cells.append(f"{pair[0]:.1f} / {pair[1]:.1f} ({pair[0] / pair[1]:.2f})")
                print(f"| {preset} | {variant} | " + " | ".join(cells) + " |", flush=True)
        print("reference's straightforward GFLOP (v4, |M| = 2 / 14): "
              + ", ".join(f"{v} {r[2]} / {r[14]}" for v, r in REFERENCE_GFLOP.items()))

        print(f"\n## v4, batch 1 scene: median step time (s), peak RSS (MiB), hoisted vs straightforward  ({load()})")
        print("| |M| | variant | hoisted s | straightforward s | speed-up | hoisted GFLOP/s (% of ref conv) "
              "| RSS hoisted / straightforward |" + (" straightforward, same Adam and malloc s (speed-up) |"
                                                     if args.same_step else ""))
        print("|---|---|---|---|---|---|---|" + ("---|" if args.same_step else ""))
        times = {}
        for m in ms:
            for variant in VARIANTS:
                cell = {**base, "m": m, "preset": "v4", "variant": variant, "scenes": 1, "reps": reps}
                res = [run({**cell, **forms[h]}) for h in (True, False)]
                times[m, variant] = res[0]["time"]
                rate = flops["v4", variant, m][0] / res[0]["time"]
                same = ""
                if args.same_step:
                    t = run({**cell, "hoisted": False, **settings})["time"]
                    same = f" | {t:.2f} ({t / res[0]['time']:.2f}x)"
                print(f"| {m} | {variant} | {res[0]['time']:.2f} | {res[1]['time']:.2f} | "
                      f"{res[1]['time'] / res[0]['time']:.2f}x | {rate:.1f} ({100 * rate / conv:.0f}%) | "
                      f"{res[0]['rss_mib']:.0f} / {res[1]['rss_mib']:.0f}{same} |", flush=True)

    print(f"\n## v4, the specs' training batch (add-opposite: twice the scenes as episodes): median step time (s), "
          f"hoisted vs straightforward  ({load()})")
    print("| |M| | variant | episodes | hoisted s | straightforward s | speed-up | RSS hoisted / straightforward |")
    print("|---|---|---|---|---|---|---|")
    for m in ms:
        episodes = 2 * TRAINING_BATCH[m]
        for variant in VARIANTS:
            res = []
            for h in (True, False):
                try:
                    res.append(run({**base, "m": m, "preset": "v4", "variant": variant, "scenes": episodes,
                                    "reps": args.training_reps or reps, **forms[h]}))
                except RuntimeError as exc:  # e.g. out of memory
                    res.append({"time": float("nan"), "rss_mib": float("nan"), "error": str(exc)[-200:]})
            print(f"| {m} | {variant} | {episodes} | {res[0]['time']:.2f} | {res[1]['time']:.2f} | "
                  f"{res[1]['time'] / res[0]['time']:.2f}x | {res[0]['rss_mib']:.0f} / {res[1]['rss_mib']:.0f} |",
                  flush=True)

    if args.training_only:
        print(f"\ndone, {load()}")
        return

    print(f"\n## Table 1 layout, v4 batch 1, hoisted: time ratios (ours | paper P100)  ({load()})")
    print("| |M| | APoE/baseline (ours │ paper) | PoE/APoE (ours │ paper) |")
    print("|---|---|---|")
    for m in ms:
        t = {v: times[m, v] for v in VARIANTS}
        paper = PAPER_RATIOS[m]
        print(f"| {m} | {t['apoe'] / t['baseline']:.2f} \u2502 {paper[0]:.2f} | "
              f"{t['poe'] / t['apoe']:.2f} \u2502 {paper[1]:.2f} |")

    if args.table1_only:
        print(f"\ndone, {load()}")
        return
    print(f"\n## APoE amortizer, v4 batch 1 |M|=14: batched vs per-expert loop, fwd+bwd  ({load()})")
    for part in ("amortizer", "step"):
        res = [run({**base, "m": 14, "preset": "v4", "variant": "apoe", "scenes": 1, "amortizer": a, "reps": reps,
                    "part": part, **settings}) for a in ("batched", "loop")]  # fmt: skip
        what = "the amortizer alone" if part == "amortizer" else "whole training step"
        print(f"{what}: batched {res[0]['time']:.2f} s, loop {res[1]['time']:.2f} s, "
              f"speed-up {res[1]['time'] / res[0]['time']:.2f}x")

    print(f"\n## small preset, batch 12 scenes, hoisted: median step time (s) / peak RSS (MiB)  ({load()})")
    print("| variant | " + " | ".join(f"|M|={m}" for m in (2, 5, 8, 14, 32, 64)) + " |")
    print("|---|" + "---|" * 6)
    for variant in VARIANTS:
        cells = []
        for m in (2, 5, 8, 14, 32, 64):
            res = run({**base, "m": m, "preset": "small", "variant": variant, "scenes": 12, "reps": reps, **settings})
            cells.append(f"{res['time']:.2f} / {res['rss_mib']:.0f}")
        print(f"| {variant} | " + " | ".join(cells) + " |", flush=True)
    print(f"\ndone, {load()}")


if __name__ == "__main__":
    main()
