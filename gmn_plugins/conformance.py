"""``gmn-plugins check NAME``: the conformance check a modality plugin runs in its own CI (gymnasium ``check_env``
style). It builds the modality's encoder and renderer from its family, runs them on random data of the declared
shapes, and checks output shapes, dtypes, finiteness and that gradients flow.
"""

from __future__ import annotations

import torch

from .modality import Modality
from .models.presets import PRESETS


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

    (r.square().mean() + mean.square().mean()).backward()
    _expect(z.grad is not None and bool(z.grad.abs().sum() > 0), "renderer gradient", "no gradient reaches z")
    for part, module in (("encoder", encoder), ("renderer", renderer)):
        dead = [n for n, p in module.named_parameters() if p.grad is None and n != "rho"]
        _expect(not dead, f"{part} gradient", f"no gradient reaches {', '.join(dead[:5])}")
    done.append("gradients: reach z and every encoder and renderer parameter")
    return done
