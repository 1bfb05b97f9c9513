"""What a model family is: everything the engine must know about one kind of sense, and nothing it decides itself.

A **family** (``image``: (C, H, W); ``vector``: (D,); a plugin's ``sequence`` (T, D) or 2-d grid) owns:

- its encoder and renderer classes, referenced lazily as ``"module:Class"`` so that a process that only generates
  data imports no torch (``build_encoder()``, ``build_renderer()``);
- its shape rule (``check_shape``) and how a modality's ``[slice]`` cuts a sensor's array (``slice``);
- its model options (``options``: name -> allowed values, the first the default, e.g. ``vector_projection``);
- the latent grid it asks for (``latent_grid``; images: H/4 x W/4);
- how a sense or a prediction is drawn in sample grids and generation figures (``draw``);
- its likelihood (``nll``: a Gaussian with the model's fixed σ by default).

The engine calls these methods and never branches on a family's name or a tensor's rank. A plugin registers a
``Family`` (or an instance of a subclass that overrides some methods) through ``register_families``
(``gmn_plugins.hookspecs``); the built-ins ``image`` and ``vector`` (``gmn_plugins.families``) register the same way.
"""

from __future__ import annotations

import functools
import importlib
import math
from typing import Any

import attrs
import numpy as np

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def resolve(ref: Any) -> Any:
    """A class or function given itself or as ``"module:attribute"`` (imported on first use, then looked up once:
    ``QueryKind.encode`` runs in every training step). Raises ``ValueError`` for a malformed reference,
    ``ImportError``/``AttributeError`` when it names nothing."""
    return _import(ref) if isinstance(ref, str) else ref


@functools.lru_cache(maxsize=None)
def _import(ref: str) -> Any:
    module, sep, name = ref.partition(":")
    if not sep or not module or not name:
        raise ValueError(f"expected 'module:attribute', got {ref!r}")
    target = importlib.import_module(module)
    for part in name.split("."):
        target = getattr(target, part)
    return target


def _options(value) -> dict[str, tuple]:
    return {str(k): tuple(v) for k, v in dict(value or {}).items()}


@attrs.frozen
class Family:
    """A model family (see the module docstring).

    ``name``; ``dims``: the length of a sense's shape (3 for (C, H, W), 1 for (D,), 2 for (T, D)).
    ``encoder(shape, preset, grid, query_dim=Q, **options)`` is a ``gmn_plugins.models.encoders.Encoder``:
    ``forward(senses (N, *shape), queries (N, Q)) -> (N, r, h, w)``; ``renderer(shape, preset, grid, query_dim=Q,
    **options)`` a
    ``gmn_plugins.models.renderers.Renderer``: ``forward(z (B, T*z, h, w), queries (N, Q), scene (N,)) -> (N, *shape)``
    (design.md, layer 3). Each is a class or a ``"module:Class"`` string.
    ``options``: {model option: allowed values, default first}; ``build_encoder`` and ``build_renderer`` pass
    each to the constructor as a keyword argument.
    """

    name: str
    dims: int
    encoder: Any = attrs.field(eq=False)
    renderer: Any = attrs.field(eq=False)
    description: str = ""
    options: dict[str, tuple] = attrs.field(factory=dict, converter=_options, eq=False)

    def encoder_class(self) -> type:
        """The encoder class (imported on first use)."""
        return resolve(self.encoder)

    def renderer_class(self) -> type:
        """The renderer class (imported on first use)."""
        return resolve(self.renderer)

    def check_shape(self, shape: tuple[int, ...]) -> None:
        """Raise ``ValueError`` unless ``shape`` suits this family (default: ``dims`` positive sizes)."""
        if len(shape) != self.dims or any(int(s) < 1 for s in shape):
            raise ValueError(f"family {self.name!r} needs {self.dims} positive dimensions, got {tuple(shape)}")

    def option_values(self, given: dict[str, Any]) -> dict[str, Any]:
        """This family's options from ``given`` (others ignored), defaults for the missing ones. Raises
        ``ValueError`` for a value the family does not allow."""
        out = {}
        for name, allowed in self.options.items():
            value = given.get(name, allowed[0])
            if value not in allowed:
                raise ValueError(f"family {self.name!r}: {name} must be one of {allowed}, got {value!r}")
            out[name] = value
        return out

    def build_encoder(self, shape: tuple[int, ...], preset, grid: tuple[int, int], options: dict | None = None,
                      query_dim: int = 7):  # fmt: skip
        """The encoder of one modality of ``shape`` on the latent ``grid``, for encoded queries of ``query_dim``
        (``QueryKind.encoded_dim``; the camera's and wrist's 7), given this family's options taken from
        ``options`` (``option_values``) as keyword arguments. Raises ``ValueError`` for a bad shape or option."""
        self.check_shape(shape)
        return self.encoder_class()(tuple(shape), preset, tuple(grid), query_dim=query_dim,
                                    **self.option_values(options or {}))  # fmt: skip

    def build_renderer(self, shape: tuple[int, ...], preset, grid: tuple[int, int], options: dict | None = None,
                       query_dim: int = 7):  # fmt: skip
        """The renderer of one modality, as ``build_encoder``."""
        self.check_shape(shape)
        return self.renderer_class()(tuple(shape), preset, tuple(grid), query_dim=query_dim,
                                     **self.option_values(options or {}))  # fmt: skip

    def latent_grid(self, shape: tuple[int, ...]) -> tuple[int, int] | None:
        """The latent grid (h, w) a modality of ``shape`` asks for, or None (no preference; the default)."""
        return None

    def slice(self, cut, sense: np.ndarray) -> np.ndarray:
        """Cut a modality out of sensor arrays ``(..., *sensor shape)`` by its ``SliceSpec``. Default: ``indices`` /
        ``ranges`` select along the last axis (views where possible). Raises ``ValueError`` for slice fields this
        family does not use."""
        if any(getattr(cut, f) is not None for f in ("channels", "rows", "cols")):
            raise ValueError(f"family {self.name!r} slices the last axis by indices / ranges, not channels / rows / "
                             f"cols")  # fmt: skip
        indices = cut.vector_indices()
        return sense if indices is None else sense[..., indices]

    def split_axes(self) -> tuple[str, ...]:
        """The axes a modality file's ``[[axes]] split`` may cut, by position in the shape: names of ``SliceSpec``
        fields (``channels``, ``rows``, ``cols``). Default: none (such a family is cut by ``values`` axes only)."""
        return ()

    def draw(self, sense: np.ndarray) -> np.ndarray | None:
        """One sense or prediction ``(*shape)`` as a picture (C, H, W) float in [0, 1] with C in {1, 3}, or None
        when this family is not drawn (the default)."""
        return None

    def nll(self, mean, senses, sigma: float):
        """Elementwise negative log-likelihood (N, *shape) in nats of ``senses`` under the renderer's ``mean``.
        Default (reference §4.3): a Gaussian with the model's fixed ``sigma``,
        0.5 ((x - mean) / sigma)^2 + log sigma + 0.5 log 2 pi."""
        return 0.5 * ((senses - mean) / sigma) ** 2 + (math.log(sigma) + HALF_LOG_2PI)
