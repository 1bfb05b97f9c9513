"""How far can a predictor that knows part of the truth get on the quickstart's two measures? (issue 28)

Issue 28's quickstart goal asks the prior's renders, from 5 RGB context views, for a per-element RGB MSE 30 % below
the mean of the scene's own views (``own_mean``: all 15 views, the targets included) and a chroma correlation
>= 0.6 with the truth (``gmn_plugins.evaluation.colour``). This prints, on a dataset's split, both measures for
predictors that need no model, each given some of the truth:

- ``own_mean``, ``context_mean`` (the 5 context views' mean), ``nearest_context`` (the context view whose camera
  is nearest the target's), ``nearest_other`` (the nearest of all 14 other views, the targets included: an oracle);
- ``silhouette + context colour``: the target's own object mask (any channel > ``OBJECT_THRESHOLD``) filled with
  the mean object colour of the 5 context views, black elsewhere: the exact shape at the query, the colour the
  context shows;
- ``silhouette + own colour``: the same mask filled with the target's own mean object colour (an oracle of shape
  and colour, without the blocks' separate colours);
- ``... blurred s px``: the last, blurred by a Gaussian of std s pixels (a shape known to about s pixels).

Errors are per element on the [0, 1] scale, as ``gmn-eval predict`` reports them; gain = 1 - MSE / own_mean's.
Chroma correlations as ``colour_transfer`` computes them (each scene's colour over its targets' object pixels).
Run from the repository root (a few seconds per 64 scenes)::

    python benchmarks/prediction_bounds.py DATA --split test --scenes 64
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gmn_plugins.core.plugins import load_registry
from gmn_plugins.data.episodes import SceneSet
from gmn_plugins.evaluation.colour import OBJECT_THRESHOLD, chroma, chroma_correlation, object_colour

BLURS = (1.0, 2.0, 4.0)  # pixels


def blur(images: np.ndarray, std: float) -> np.ndarray:
    """(N, C, H, W) images blurred channel by channel by a Gaussian of ``std`` pixels (zero padding: black)."""
    radius = int(3 * std)
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (x / std) ** 2)
    kernel /= kernel.sum()
    t = torch.from_numpy(images).float()
    c = t.shape[1]
    t = F.conv2d(t, kernel.view(1, 1, 1, -1).repeat(c, 1, 1, 1), padding=(0, radius), groups=c)
    t = F.conv2d(t, kernel.view(1, 1, -1, 1).repeat(c, 1, 1, 1), padding=(radius, 0), groups=c)
    return t.numpy()


def predictors(views: np.ndarray, cameras: np.ndarray, context: int) -> dict[str, np.ndarray]:
    """Each predictor's (V - context, C, H, W) prediction of one scene's targets from ``views`` (V, C, H, W) in
    [0, 1] and the cameras' positions ``cameras`` (V, 3)."""
    targets = views[context:]
    masks = torch.from_numpy(views.max(1, keepdims=True) > OBJECT_THRESHOLD).float()  # (V, 1, H, W)
    images = torch.from_numpy(views)
    mask = masks[context:].numpy()
    ctx_colour = object_colour(images[:context], masks[:context])  # (C,)
    own_colour = np.stack([object_colour(images[t : t + 1], masks[t : t + 1])
                           for t in range(context, len(views))])  # (N, C): each target's own  # fmt: skip
    out = {"own_mean": np.broadcast_to(views.mean(0), targets.shape),
           "context_mean": np.broadcast_to(views[:context].mean(0), targets.shape)}  # fmt: skip
    nearest, other = [], []
    for t in range(context, len(views)):
        distance = np.linalg.norm(cameras - cameras[t], axis=1)
        nearest.append(views[np.argmin(distance[:context])])
        distance[t] = np.inf
        other.append(views[np.argmin(distance)])
    out |= {"nearest_context": np.stack(nearest), "nearest_other": np.stack(other),
            "silhouette + context colour": mask * ctx_colour[None, :, None, None],
            "silhouette + own colour": mask * own_colour[:, :, None, None]}  # fmt: skip
    for std in BLURS:
        out[f"silhouette + own colour, blurred {std:g} px"] = blur(out["silhouette + own colour"], std)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", help="a dataset made by gmn-data generate or gmn-run (RGB and haptic sensors)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--scenes", type=int, default=64)
    parser.add_argument("--context", type=int, default=5, help="context views (the first ones), as gmn-eval predict")
    parser.add_argument("--json", help="also write the table as JSON here")
    args = parser.parse_args()
    rgb = load_registry().resolve(["rgb"], "prediction_bounds")[0]
    manifest = json.loads((Path(args.data) / "manifest.json").read_text())
    scenes = SceneSet(args.data, args.split, [rgb], manifest["stats"])
    sse, colours, elements = {}, {"truth": []}, 0
    for s in range(min(args.scenes, scenes.num_scenes)):
        views = scenes.senses(rgb, np.full(scenes.views, s), np.arange(scenes.views))
        cameras = scenes.queries[rgb.sensor.query][s, :, :3].astype(np.float64)
        truth = views[args.context:]
        mask = torch.from_numpy(truth.max(1, keepdims=True) > OBJECT_THRESHOLD).float()
        colours["truth"].append(object_colour(torch.from_numpy(truth), mask))
        for name, predicted in predictors(views, cameras, args.context).items():
            sse[name] = sse.get(name, 0.0) + float(((predicted - truth) ** 2).sum())
            colours.setdefault(name, []).append(object_colour(torch.from_numpy(np.ascontiguousarray(predicted)), mask))
        elements += truth.size
    truth_chroma = chroma(np.array(colours["truth"]))
    own = sse["own_mean"] / elements
    rows = []
    print(f"{args.data} {args.split}: {len(colours['truth'])} scenes, {args.context} context views\n")
    print("| predictor | RGB MSE | gain over own_mean | chroma corr. |\n|---|---|---|---|")
    for name, total in sse.items():
        mse = total / elements
        corr = chroma_correlation(truth_chroma, chroma(np.array(colours[name])))
        rows.append({"predictor": name, "mse": mse, "gain": 1 - mse / own, "chroma_corr": corr})
        print(f"| {name} | {mse:.5f} | {1 - mse / own:+.1%} | {corr:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
