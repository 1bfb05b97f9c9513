"""What a model family is: everything the engine must know about one kind of sense, and nothing it decides itself.

A **family** (``image``: (C, H, W); ``vector``: (D,); a plugin's ``sequence`` (T, D) or 2-d grid) owns:

- its encoder and renderer classes, referenced lazily as ``"module:Class"`` so that a process that only generates
  data imports no torch (``build_encoder()``, ``build_renderer()``), and optionally a shallow encoder of targets
  for the posterior (``target_encoder``, used with ``model.target_encoder = "shallow"``);
- its shape rule (``check_shape``) and how a modality's ``[slice]`` cuts a sensor's array (``slice``);
- its model options (``options``: name -> allowed values, the first the default, e.g. ``vector_projection``);
- the latent grid it asks for (``latent_grid``; images: H/4 x W/4);
- how a sense or a prediction is drawn in sample grids and generation figures (``draw``), and so how many context
  views a generation figure gives its modalities by default (``figure_context``);
- its likelihood (``nll``: a Gaussian with the model's fixed σ by default) and the likelihood's own options
  (``likelihood_options``: name -> default, passed to ``nll`` as keywords, e.g. the image family's ``chroma_weight``);
- how ``gmn-eval predict`` scores a prediction (``prediction_error``: per-element squared error by default).

The engine calls these methods and never branches on a family's name or a tensor's rank. A plugin registers a
``Family`` (or an instance of a subclass that overrides some methods) through ``register_families``
(``gmn_plugins.core.hookspecs``); the built-ins ``image`` and ``vector`` (``gmn_plugins.core.families``) register the
same way.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
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


def reference_problem(ref: Any) -> str | None:
    """What is wrong with a ``"module:attribute"`` reference, found without importing the module (a family's classes
    import torch): a malformed string, a module that cannot be found, or an attribute its source does not define at
    top level (checked only where the source can tell: no ``import *`` or module ``__getattr__``). None when it looks
    right or is not a string."""
    if not isinstance(ref, str):
        return None
    module, sep, name = ref.partition(":")
    if not sep or not module or not name:
        return f"expected 'module:Class', got {ref!r}"
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError) as exc:
        return f"{ref!r}: {type(exc).__name__}: {' '.join(str(exc).split())}"
    except Exception as exc:  # a parent package that fails to import
        return f"{ref!r}: importing its package raised {type(exc).__name__}: {' '.join(str(exc).split())}"
    if spec is None:
        return f"{ref!r}: no module named {module!r}"
    if not spec.origin or not spec.origin.endswith(".py"):
        return None
    try:
        with open(spec.origin, "rb") as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, ValueError):
        return None  # the import itself will say what is wrong, when a model is built
    defined = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            defined.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name == "*":
                    return None
                defined.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                defined.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        else:  # names bound under if / try / with: anything bound anywhere at module level counts
            defined.update(n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store))
            defined.update(n.name for n in ast.walk(node) if isinstance(n, (ast.ClassDef, ast.FunctionDef)))
            defined.update((a.asname or a.name).split(".")[0] for n in ast.walk(node)
                           if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names)  # fmt: skip
    if "__getattr__" in defined:
        return None
    first = name.split(".")[0]
    if first not in defined:
        import difflib

        close = difflib.get_close_matches(first, sorted(d for d in defined if not d.startswith("_")), n=1)
        hint = f" (did you mean {module}:{close[0]}?)" if close else ""
        return f"{ref!r}: module {module} ({spec.origin}) defines no {first!r}{hint}"
    return None


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
    ``likelihood_options``: {model option: default} that ``nll`` takes as keyword arguments (``likelihood_values``;
    none by default, so ``nll(mean, senses, sigma)`` is called as it is written).
    ``target_encoder`` (optional, None = none): an encoder class of the ``encoder`` signature with a short path from
    a target's values to the latent grid, which the posterior reads instead of ``encoder``'s with
    ``model.target_encoder = "shallow"`` (GQN's inference core reads the target image directly); without one, the
    posterior reads this family's targets through ``encoder`` under either setting.
    """

    name: str
    dims: int
    encoder: Any = attrs.field(eq=False)
    renderer: Any = attrs.field(eq=False)
    description: str = ""
    options: dict[str, tuple] = attrs.field(factory=dict, converter=_options, eq=False)
    target_encoder: Any = attrs.field(default=None, eq=False)
    likelihood_options: dict[str, Any] = attrs.field(factory=dict, converter=dict, eq=False)

    def _references(self) -> list[tuple[str, Any]]:
        parts = [("encoder", self.encoder), ("renderer", self.renderer)]
        return parts + ([("target_encoder", self.target_encoder)] if self.target_encoder is not None else [])

    def reference_problems(self) -> list[str]:
        """``encoder ...`` / ``renderer ...`` lines for class references that name nothing (``reference_problem``:
        no import, so ``gmn-plugins list`` stays torch-free); empty when both look right."""
        problems = [(part, reference_problem(ref)) for part, ref in self._references()]
        return [f"{part} {problem}" for part, problem in problems if problem]

    def import_classes(self) -> None:
        """Import the encoder and renderer classes; ``ValueError`` (one line naming the family and the reference)
        when either cannot be imported."""
        for part, ref in self._references():
            try:
                resolve(ref)
            except Exception as exc:
                raise ValueError(f"family {self.name!r}: {part} {ref!r} cannot be imported: {type(exc).__name__}: "
                                 f"{' '.join(str(exc).split())}") from None  # fmt: skip

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

    def likelihood_values(self, given: dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments of this family's ``nll``: each of its ``likelihood_options`` from ``given`` (others
        ignored), its default where missing."""
        return {name: given.get(name, default) for name, default in self.likelihood_options.items()}

    def build_encoder(self, shape: tuple[int, ...], preset, grid: tuple[int, int], options: dict | None = None,
                      query_dim: int = 7):  # fmt: skip
        """The encoder of one modality of ``shape`` on the latent ``grid``, for encoded queries of ``query_dim``
        (``QueryKind.encoded_dim``; the camera's and wrist's 7), given this family's options taken from
        ``options`` (``option_values``) as keyword arguments. Raises ``ValueError`` for a bad shape or option."""
        self.check_shape(shape)
        return self.encoder_class()(tuple(shape), preset, tuple(grid), query_dim=query_dim,
                                    **self.option_values(options or {}))  # fmt: skip

    def build_target_encoder(self, shape: tuple[int, ...], preset, grid: tuple[int, int], options: dict | None = None,
                             query_dim: int = 7):  # fmt: skip
        """The shallow target encoder of one modality, as ``build_encoder``; ``ValueError`` when the family has none."""
        if self.target_encoder is None:
            raise ValueError(f"family {self.name!r} has no target_encoder (model.target_encoder = 'shallow' needs one)")
        self.check_shape(shape)
        return resolve(self.target_encoder)(tuple(shape), preset, tuple(grid), query_dim=query_dim,
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

    def figure_context(self, shape: tuple[int, ...], views: int) -> int:
        """Context views of a modality of ``shape`` in a generation figure (``gmn-eval generate`` without
        ``--context``), of the ``views`` a scene has. Default, as the paper's Fig. 1: one view of a family that draws
        (``draw`` is not None: a picture), every view of one that does not (haptics). Override to choose otherwise:
        defining ``draw`` alone makes it 1."""
        return 1 if self.draw(np.zeros(shape, np.float32)) is not None else views

    def prediction_error(self, predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
        """Squared errors of predictions (N, *shape) against the true senses (N, *shape), numpy, on the model's input
        scale: ``gmn-eval predict`` sums them and divides by the number of true elements (its "per-element MSE").
        Default: element against element, (predicted - truth)^2, shape (N, *shape). A family whose senses have no
        order (a set of contacts, points) overrides it, e.g. with each element's squared distance to its nearest
        match, so that a permuted but right prediction scores 0."""
        return (np.asarray(predicted) - np.asarray(truth)) ** 2

    def nll(self, mean, senses, sigma: float):
        """Elementwise negative log-likelihood (N, *shape) in nats of ``senses`` under the renderer's ``mean``.
        Default (reference §4.3): a Gaussian with the model's fixed ``sigma``,
        0.5 ((x - mean) / sigma)^2 + log sigma + 0.5 log 2 pi. A family with ``likelihood_options`` also receives
        them as keyword arguments."""
        return 0.5 * ((senses - mean) / sigma) ** 2 + (math.log(sigma) + HALF_LOG_2PI)
