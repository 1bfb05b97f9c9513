"""Does a trained GMN carry colour from what it observes to what it renders? (issue 11's "undertrained or a bug?")

For the first 16 scenes of a split: 5 RGB context views, the other views as targets, rendered from the posterior
Q(z | C, O) (``GMN.reconstruct``, which saw the targets) and from the prior P(z | C) (``GMN.generate``). Colour is
each render's mean over the truth's object pixels (any channel > 0.1), and its chroma that colour minus its grey
level. Printed: the correlation of the renders' chroma with the truth's, the same after swapping the RGB channels
of every observed image (R, G, B -> B, R, G; for the prior: of the context views), and the mean |chroma| of truth
and renders. A model that reads colour
from its input follows the swap (both correlations high); one that memorised its training scenes' colours does
not (the second low); one that renders grey has |chroma| near 0. Where colour is lost: the RGB encoder's
representation r of each context view changes by ``encoder_swap`` (mean L2 norm) when its channels are swapped and
by ``encoder_gray`` when it is made grey, against ``encoder_other_scene`` between two scenes' views; a small ratio
says the encoder hardly tells colours apart (an untrained tiny-preset encoder: 1.4 % and 2.5 % for init seeds 0, 1;
one that overfitted 8 scenes: 41 %).

    python benchmarks/colour_transfer.py RUN [--split val] [--checkpoint RUN/checkpoints/step-N.pt]

The RGB modality is the one named ``rgb`` (the quickstart's and the m2 spec's).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from gmn_plugins.evaluation.runs import load_run
from gmn_plugins.core.plugins import load_registry
from gmn_plugins.core.points import Points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run")
    parser.add_argument("--split", default="val")
    parser.add_argument("--checkpoint")
    parser.add_argument("--scenes", type=int, default=16)
    parser.add_argument("--context", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    run = load_run(args.run, load_registry(), checkpoint=args.checkpoint)
    model, scenes = run.model, run.scenes(args.split)
    rgb = [m.name for m in run.modalities].index("rgb")

    def swapped(points):
        return [Points(p.senses[:, [2, 0, 1]], p.queries, p.scene) if i == rgb else p for i, p in enumerate(points)]

    colours = {"truth": [], "posterior": [], "posterior_swapped": [], "prior": [], "prior_swapped": []}
    with torch.no_grad():
        for s in range(min(args.scenes, scenes.num_scenes)):
            plan = [[((s, np.arange(args.context if i == rgb else 0)), (s, np.arange(args.context, scenes.views)))
                     for i in range(len(scenes.modalities))]]  # fmt: skip
            context, target = scenes.assemble(plan)
            mask = (target[rgb].senses.max(1, keepdim=True).values > 0.1).float()

            def colour(image):
                return ((image * mask).sum((0, 2, 3)) / mask.sum((0, 2, 3)).clamp(min=1)).numpy()

            colours["truth"].append(colour(target[rgb].senses))
            colours["posterior"].append(colour(model.reconstruct(context, target, 1)[rgb]))
            colours["posterior_swapped"].append(colour(model.reconstruct(swapped(context), swapped(target), 1)[rgb]))
            queries, scene = [p.queries for p in target], [p.scene for p in target]
            colours["prior"].append(colour(model.generate(context, queries, scene, 1)[rgb]))
            colours["prior_swapped"].append(colour(model.generate(swapped(context), queries, scene, 1)[rgb]))
    chroma = {k: np.array(v) - np.array(v).mean(1, keepdims=True) for k, v in colours.items()}
    m, info, encoder = run.modalities[rgb], model.modalities[rgb], model.encoders[rgb]
    n = min(args.scenes, scenes.num_scenes)
    ids, views = np.repeat(np.arange(n), args.context), np.tile(np.arange(args.context), n)
    images = torch.as_tensor(scenes.senses(m, ids, views))
    queries = info.encode(torch.as_tensor(scenes.queries[m.sensor.query][ids, views].astype(np.float32)))
    with torch.no_grad():
        r = encoder(images, queries)
        distance = {"encoder_swap": encoder(images[:, [2, 0, 1]], queries),
                    "encoder_gray": encoder(images.mean(1, keepdim=True).expand_as(images), queries),
                    "encoder_other_scene": r.roll(args.context, 0)}  # fmt: skip
    distance = {k: round(float((r - v).flatten(1).norm(dim=1).mean()), 4) for k, v in distance.items()}

    def corr(a, b):
        return round(float(np.corrcoef(a.ravel(), b.ravel())[0, 1]), 3)

    print(json.dumps({"run": str(run.dir), "step": run.step, "split": args.split, "scenes": len(colours["truth"]),
                      "chroma_corr_posterior": corr(chroma["truth"], chroma["posterior"]),
                      "chroma_corr_posterior_swapped": corr(chroma["truth"][:, [2, 0, 1]], chroma["posterior_swapped"]),
                      "chroma_corr_prior": corr(chroma["truth"], chroma["prior"]),
                      "chroma_corr_prior_swapped": corr(chroma["truth"][:, [2, 0, 1]], chroma["prior_swapped"]),
                      "mean_abs_chroma": {k: round(float(np.abs(v).mean()), 4) for k, v in chroma.items()},
                      **distance}))  # fmt: skip


if __name__ == "__main__":
    main()
