"""``gmn-plugins check NAME``: the conformance check a modality plugin runs in its own CI (gymnasium ``check_env``
style). It builds the modality's encoder and renderer from its family, runs them on random data of the declared
shapes, and checks output shapes, dtypes, finiteness and that gradients flow; then the family's likelihood (``nll``)
on the renderer's output and, if the family draws, its pictures (``draw``).
"""

from __future__ import annotations

import numpy as np
import torch

from ..core.modality import Modality
from ..models.presets import PRESETS


class ConformanceError(Exception):
    """A failed check; ``str(err)`` names the failing point and what was expected."""


def _expect(condition: bool, point: str, message: str) -> None:
    if not condition:
        raise ConformanceError(f"{point}: {message}")


def check_modality(modality: Modality, preset_name: str = "small", points: int = 5) -> list[str]:
    """Run the checks; return what passed, one line each. Raises ``ConformanceError`` at the first failure."""
    preset, family = PRESETS[preset_name], modality.family
    shape = modality.shape
    grid = family.latent_grid(shape) or (4, 4)  # the grid its family asks for, else a small one
    done = []
    torch.manual_seed(0)
    try:
        kind = modality.query_kind
        encoder = family.build_encoder(shape, preset, grid, query_dim=kind.encoded_dim)
        renderer = family.build_renderer(shape, preset, grid, query_dim=kind.encoded_dim)
    except Exception as exc:
        raise ConformanceError(f"build: {type(exc).__name__}: {exc}") from None
    done.append(f"build: encoder {type(encoder).__name__}, renderer {type(renderer).__name__} for shape {shape}")

    senses = torch.rand(points, *shape)
    queries = kind.encode_queries(torch.rand(points, kind.dim))
    scene = torch.arange(points) % 2
    r = encoder.aggregate(senses, queries, scene, 2)
    want = (2, preset.r_channels, *grid)
    _expect(tuple(r.shape) == want, "encoder output", f"expected shape {want}, got {tuple(r.shape)}")
    _expect(r.dtype == torch.float32, "encoder output", f"expected float32, got {r.dtype}")
    _expect(bool(torch.isfinite(r).all()), "encoder output", "not finite")
    _expect(r.requires_grad, "encoder output", "detached from the encoder's parameters (no gradient can flow)")
    done.append(f"encoder: (N, *{shape}), (N, {kind.encoded_dim}) -> representation {want[1:]} per scene")

    z = torch.randn(2, preset.steps * preset.z_channels, *grid, requires_grad=True)
    mean = renderer(z, queries, scene)
    want = (points, *shape)
    _expect(tuple(mean.shape) == want, "renderer output", f"expected shape {want}, got {tuple(mean.shape)}")
    _expect(mean.dtype == torch.float32, "renderer output", f"expected float32, got {mean.dtype}")
    _expect(bool(torch.isfinite(mean).all()), "renderer output", "not finite")
    _expect(mean.requires_grad, "renderer output", "detached from z and the renderer's parameters")
    done.append(f"renderer: z {tuple(z.shape[1:])}, (N, {kind.encoded_dim}) -> mean {want[1:]}")

    defaults = family.likelihood_values({})  # the family's likelihood options, as the engine passes them
    nll = family.nll(mean, senses, 1.0, **defaults)
    want = (points, *shape)
    _expect(isinstance(nll, torch.Tensor), "family nll", f"expected a tensor, got {type(nll).__name__}")
    _expect(tuple(nll.shape) == want, "family nll", f"expected the elementwise shape (N, *shape) = {want}, got "
            f"{tuple(nll.shape)} (the engine sums it over the elements: a reduced or broadcast shape mis-scores)")
    _expect(nll.dtype == torch.float32, "family nll", f"expected float32, got {nll.dtype}")
    _expect(bool(torch.isfinite(nll).all()), "family nll", "not finite (mean, senses in [0, 1], sigma 1)")
    _expect(nll.requires_grad, "family nll", "detached from the renderer's mean (no gradient can flow)")
    other = family.nll(mean, torch.rand(points, *shape), 1.0, **defaults)
    _expect(not torch.equal(nll, other), "family nll", "the same for two different targets (it ignores the senses)")
    done.append(f"nll: mean, senses {want[1:]}, sigma -> elementwise {want[1:]} float32, finite, depends on both")

    for what, sense in (("a sense", senses[0]), ("a prediction", mean[0].detach())):
        picture = family.draw(sense.numpy())
        if picture is None:
            break
        _expect(isinstance(picture, np.ndarray) and picture.ndim == 3 and picture.shape[0] in (1, 3),
                "family draw", f"of {what}: expected a (C, H, W) array with C 1 or 3, got "
                f"{getattr(picture, 'shape', type(picture).__name__)}")  # fmt: skip
        _expect(picture.dtype.kind == "f" and bool(np.isfinite(picture).all()) and picture.min() >= 0
                and picture.max() <= 1, "family draw", f"of {what}: expected finite floats in [0, 1], got "
                f"{picture.dtype} in [{picture.min():.3g}, {picture.max():.3g}]")  # fmt: skip
    else:
        done.append(f"draw: a sense and a prediction -> {tuple(picture.shape)} pictures in [0, 1]")

    (r.square().mean() + mean.square().mean() + nll.mean()).backward()
    _expect(z.grad is not None and bool(z.grad.abs().sum() > 0), "renderer gradient", "no gradient reaches z")
    for part, module in (("encoder", encoder), ("renderer", renderer)):
        dead = [n for n, p in module.named_parameters() if p.grad is None and n != "rho"]
        _expect(not dead, f"{part} gradient", f"no gradient reaches {', '.join(dead[:5])}")
    done.append("gradients: reach z and every encoder and renderer parameter")
    return done
