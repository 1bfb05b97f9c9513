"""Should modalities of one family and shape run as one batched call? (issue 15, "where the time still goes")

At |M| = 14 (v4), 12 image modalities of shape (1, 24, 24) each have their own encoder and renderer. This times,
forward + backward, in one run:

1. the renderers' ConvLSTM convolution alone (the largest single cost of the step: 8 targets, 64 -> 256 channels,
   5 x 5, on the 6 x 6 latent grid), 12 modalities as 12 calls, as one grouped convolution (weights concatenated,
   ``groups=12``) and as one batched matrix product (im2col + einsum);
2. the 12 encoders and renderers whole, one after another against ``torch.func.vmap`` over their stacked
   parameters (``functional_call``; the parameters stay per modality, gradients reach each).

    python benchmarks/grouped_modalities.py [--threads 2] [--reps 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch.func import functional_call, vmap

from gmn_plugins.models import GMN, PRESETS, ModalityInfo


def timed(fn, reps: int) -> float:
    """Median seconds of ``fn().backward()`` over ``reps`` calls after one warm-up."""
    times = []
    for _ in range(reps + 1):
        started = time.perf_counter()
        fn().backward()
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def convolutions(groups: int, points: int, reps: int) -> dict[str, float]:
    xs = [torch.randn(points, 64, 6, 6, requires_grad=True) for _ in range(groups)]
    ws = [torch.randn(256, 64, 5, 5, requires_grad=True) for _ in range(groups)]

    def separate():
        return sum(F.conv2d(x, w, padding=2).square().sum() for x, w in zip(xs, ws))

    def grouped():
        return F.conv2d(torch.cat(xs, 1), torch.cat(ws, 0), padding=2, groups=groups).square().sum()

    def matmul():
        cols = F.unfold(torch.stack(xs).flatten(0, 1), 5, padding=2).view(groups, points, 64 * 25, 36)
        return torch.einsum("gok,gnkp->gnop", torch.stack(ws).view(groups, 256, -1), cols).square().sum()

    return {name: timed(fn, reps) for name, fn in (("separate", separate), ("grouped", grouped), ("bmm", matmul))}


def modules(groups: int, points: int, reps: int) -> dict[str, float]:
    torch.manual_seed(0)
    preset, shape = PRESETS["v4"], (1, 24, 24)
    model = GMN([ModalityInfo(f"image{k}", "image", shape) for k in range(groups)], preset)
    encoders, renderers = list(model.encoders), list(model.renderers)
    senses, queries = torch.rand(groups, points, *shape), torch.randn(groups, points, 7)
    scene = torch.zeros(groups, points, dtype=torch.long)
    z = torch.randn(1, preset.steps * preset.z_channels, *model.grid, requires_grad=True)

    def loop():
        return sum(e(senses[k], queries[k]).sum() + r(z, queries[k], scene[k]).sum()
                   for k, (e, r) in enumerate(zip(encoders, renderers)))  # fmt: skip

    def stacked():
        pe = {n: torch.stack([dict(e.named_parameters())[n] for e in encoders]) for n, _ in encoders[0].named_parameters()}
        pr = {n: torch.stack([dict(r.named_parameters())[n] for r in renderers]) for n, _ in renderers[0].named_parameters()}
        r = vmap(lambda p, s, q: functional_call(encoders[0], p, (s, q)))(pe, senses, queries)
        x = vmap(lambda p, q, sc: functional_call(renderers[0], p, (z, q, sc)))(pr, queries, scene)
        return r.sum() + x.sum()

    torch.testing.assert_close(loop(), stacked(), rtol=1e-4, atol=1e-2)
    return {"one after another": timed(loop, reps), "torch.func.vmap": timed(stacked, reps)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, load {torch.get_num_threads()} / "
          f"{open('/proc/loadavg').read().split()[0]}")
    for what, result in (("ConvLSTM convolution, 12 modalities x 8 targets", convolutions(12, 8, args.reps)),
                         ("12 encoders (8 points) + 12 renderers (8 targets), v4", modules(12, 8, args.reps))):
        base = next(iter(result.values()))
        print(f"{what}: " + ", ".join(f"{k} {v * 1000:.1f} ms ({base / v:.2f}x)" for k, v in result.items()))


if __name__ == "__main__":
    main()
