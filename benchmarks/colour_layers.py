"""Where along the path from context to render does a trained GMN lose a scene's colour? For each stage (the context
representation r of the RGB modality, what its renderer reads, the renderer's ConvLSTM state, each layer of its
decoder, the render) it prints how well a linear read-out recovers the truth's chroma from that stage alone: the
held-out R^2 of a ridge regression, along the two axes of the chroma plane that the renders treat most differently.

    python benchmarks/colour_layers.py RUN [--split train] [--scenes 160] [--checkpoint RUN/checkpoints/step-N.pt]

The axes: u1 and u2, the singular vectors (on the truth's side) of the best linear map from the truth's chroma to
the render's (the chroma of the object's mean colour, in an orthonormal basis of the plane of colours whose three
channels sum to zero), with singular values s1 >= s2. A run that renders colour along one axis only has s2 near 0
(docs/fast-recipe.md, "Colour along one axis"); then the stage where R^2 along u2 falls is where the second axis
is lost. Each scene renders its first target view from z ~ P(z | C), C its first 5 RGB views; the regression is
fitted on the first half of the scenes and scored on the second. Spatial stages (r, the renderer's input) are read
out whole; the renderer's layers as each channel's mean over the target's object pixels (the mask resized to the
layer), one value per call (the ConvLSTM runs once per DRAW step).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F

from gmn_plugins.core.plugins import load_registry
from gmn_plugins.evaluation.colour import OBJECT_THRESHOLD, chroma, object_colour
from gmn_plugins.evaluation.runs import load_run

CHROMA_BASIS = np.array([[1, -1, 0], [1, 1, -2]]) / np.sqrt([[2], [6]])  # orthonormal, each row sums to 0


def heldout_r2(features: np.ndarray, target: np.ndarray) -> float:
    """R^2 on the second half of a ridge regression (features standardised on the first half, lambda = dims / 10)
    fitted on the first half: features (S, D), target (S,)."""
    h = len(target) // 2
    x = (features - features[:h].mean(0)) / (features[:h].std(0) + 1e-8)
    y = target - target[:h].mean()
    w = np.linalg.solve(x[:h].T @ x[:h] + x.shape[1] / 10 * np.eye(x.shape[1]), x[:h].T @ y[:h])
    residual = y[h:] - x[h:] @ w
    return float(1 - (residual**2).sum() / ((y[h:] - y[h:].mean()) ** 2).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run")
    parser.add_argument("--split", default="train")
    parser.add_argument("--scenes", type=int, default=160)
    parser.add_argument("--checkpoint")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    run = load_run(args.run, load_registry(), checkpoint=args.checkpoint)
    model, scenes = run.model, run.scenes(args.split)
    names = [m.name for m in scenes.modalities]
    index = names.index("rgb")
    renderer = model.renderers[index]
    calls: dict[str, list[torch.Tensor]] = {}

    def keep(name):
        def hook(module, inputs, output):
            calls.setdefault(name, []).append((output[0] if isinstance(output, tuple) else output).detach())
        return hook

    renderer.register_forward_pre_hook(lambda module, inputs: calls.setdefault("renderer input", []).append(inputs[0]))
    renderer.lstm.register_forward_hook(keep("ConvLSTM state"))
    for i, layer in enumerate(renderer.decoder):
        layer.register_forward_hook(keep(f"decoder {i} {type(layer).__name__}"))
    n = min(args.scenes, scenes.num_scenes)
    truth, render, features = [], [], {}
    for s in range(n):
        calls.clear()
        plan = [[((s, np.arange(5 if i == index else 0)), (s, np.arange(5, 6))) for i in range(len(names))]]
        context, target = scenes.assemble(plan)
        image = target[index].senses
        mask = (image.max(1, keepdim=True).values > OBJECT_THRESHOLD).float()
        r, present = model.represent(context, 1)
        queries = [p.queries if i == index else None for i, p in enumerate(target)]
        out = model.generate_from(r, present, queries, [p.scene for p in target])[index]
        truth.append(object_colour(image, mask))
        render.append(object_colour(out, mask))
        rows = {"context r": r[index, 0].flatten()}
        for name, tensors in calls.items():
            if name == "renderer input":
                rows[name] = tensors[0].flatten()
                continue
            per_call = []
            for t in tensors:
                m = F.adaptive_avg_pool2d(mask, t.shape[-2:])
                per_call.append((t * m).sum((0, 2, 3)) / m.sum().clamp(min=1e-8))
            rows[name] = torch.cat(per_call)
        for name, row in rows.items():
            features.setdefault(name, []).append(row.float().cpu().numpy())
    planar = [chroma(np.array(c)) @ CHROMA_BASIS.T for c in (truth, render)]  # (S, 2) each
    t, rc = (c - c.mean(0) for c in planar)
    u, singular, _ = np.linalg.svd(np.linalg.lstsq(t, rc, rcond=None)[0])
    print(f"{args.run} ({n} {args.split} scenes): truth -> render chroma map, singular values "
          f"{singular[0]:.2f}, {singular[1]:.2f}")
    print(f"{'stage':28s} {'values':>7s}  R^2 along u1  along u2")
    for name, rows in [*features.items(), ("render", list(planar[1]))]:
        x = np.array(rows, dtype=np.float64).reshape(n, -1)
        r2 = [heldout_r2(x, planar[0] @ u[:, k]) for k in (0, 1)]
        print(f"{name:28s} {x.shape[1]:7d}  {r2[0]:12.2f}  {r2[1]:8.2f}")


if __name__ == "__main__":
    main()
