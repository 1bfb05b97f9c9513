"""The public Python API: open a trained run, infer a scene from observations, render or score any modality.

    from gmn_plugins import camera_orbit, open_run
    run = open_run("runs/quickstart")                        # a run directory, or a checkpoint file copied alone
    world = run.mese_scene(seed=7)                           # a new MESE object, made as the run's data was
    scene = run.observe(world.observations({"rgb": 3, "haptic": 5}))
    images = scene.render("rgb", camera_orbit(8), samples=4, seed=0)   # (4, 8, 3, 64, 64) uint8

Observations are keyed by the run's modality names (``run.names``); each is a pair ``(values, queries)`` of numpy
arrays or torch tensors:

- ``values`` (N, *sensor.shape) as the modality's sensor records them (``run.modalities[i].sensor``): ``camera.rgb``
  (N, 3, 64, 64) uint8 0-255 (or float in [0, 1]); ``hand.haptic`` (N, 132) in its physical units (rad, rad/s, N,
  ...). A modality cut from a sensor (an image quadrant, a finger group) takes the whole sensor's values; the API
  cuts and normalises them with the run's own training statistics, as training did (``modality.normalize``);
- ``queries`` (N, dim) in the modality's query kind's units: camera and wrist (x, y, z, pitch, yaw), metres and
  radians.

Renders come back in the sensor's units and dtype (``scale="sensor"``; ``"model"``: the normalised scale the model
works in) as numpy arrays of the modality's shape. Mistakes (an unknown modality name, a wrong shape or range,
queries of another dimension than the modality's query kind) raise one ``ValueError`` that names the argument and
the expected shape. Nothing here makes or looks for a dataset: a checkpoint copied alone is enough (its training
statistics travel in it); ``gmn-eval`` regenerates a copied run's val/test splits as an explicit step.

The ``gmn-eval`` experiments (``gmn_plugins.evaluation``) render and score through this module.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Callable, Literal

import attrs
import numpy as np
import torch

from .core.modality import Modality, denormalize, normalize
from .core.points import Points
from .models.convdraw import sampling_temperature

Array = Any  # a numpy array or a torch tensor
Observations = Mapping[str, tuple[Array, Array]]  # {modality name: (values (N, *sensor.shape), queries (N, dim))}
Scale = Literal["sensor", "model"]


def open_run(path: str | Path, device: str = "cpu") -> Run:
    """Open a trained run for inference: ``path`` is a run directory (a spec's ``train.out``, holding
    ``checkpoint.pt``) or a checkpoint file (``RUN/checkpoints/step-N.pt``, or one copied alone to another
    machine). ``device``: ``"cpu"`` (default), ``"auto"`` (cuda when available), ``"cuda"``, ``"cuda:N"``, ``"mps"``.

    Needs no data: the normalisation statistics of the training split come from the checkpoint (from the run's
    dataset manifest, read only, for checkpoints written before they carried them). Nothing is generated.

    Raises ``CheckpointError`` (one line) for a missing or unreadable checkpoint, or one trained with modality
    plugins that are not installed or differ from the installed ones; ``SpecError`` for an unknown modality or a
    device this machine lacks; ``DataError`` for an old checkpoint without statistics whose dataset is not found.
    """
    from .data.format import DataError, read_manifest
    from .evaluation.runs import open_checkpoint
    from .core.plugins import load_registry

    path = Path(path)
    file = path / "checkpoint.pt" if path.is_dir() else path
    ckpt, spec, modalities, model = open_checkpoint(file, load_registry(), device)
    stats = (ckpt.get("data") or {}).get("stats")
    if stats is None and any(m.sensor.normalization == "minmax" for m in modalities):
        try:
            stats = read_manifest(spec.data.dir)["stats"]
        except DataError:
            raise DataError(f"{file}: the checkpoint carries no training statistics (written before they were "
                            f"stored) and its dataset {spec.data.dir} is not here; open it beside its dataset") from None  # fmt: skip
    return Run(model, modalities, stats or {}, spec=spec, step=int(ckpt["step"]), path=file)


@attrs.define(eq=False)
class Run:
    """A trained model with what it needs to read observations (``open_run`` makes one).

    ``model``: the ``GMN`` in eval mode; ``modalities``: its ``core.modality.Modality`` in id order (``.name``,
    ``.shape``, ``.sensor``, ``.query_kind``); ``stats``: the training split's statistics (dataset manifest
    ``"stats"``) that normalise ``minmax`` sensors; ``spec``: the resolved ``ExperimentSpec`` it was trained with
    (None when made from a bare model); ``step``: training steps done; ``path``: its checkpoint file.
    Evaluation code holding a model and a ``SceneSet`` wraps them as ``Run(model, scenes.modalities, scenes.stats)``.
    """

    model: Any  # gmn_plugins.models.gmn.GMN
    modalities: list[Modality]
    stats: dict
    spec: Any = None
    step: int | None = None
    path: Path | None = None

    @property
    def names(self) -> list[str]:
        """The modality names, in id order: the keys observations take."""
        return [m.name for m in self.modalities]

    @property
    def device(self) -> torch.device:
        """Where the model's parameters live (inputs are moved there)."""
        return self.model.device

    def observe(self, observations: Observations | Sequence[Observations]) -> Scene:
        """Infer a scene from ``observations`` (the module docstring's form; modalities not named are absent): a
        ``Scene`` holding the context and, once first needed, its representations r_m (paper Eq. 3; the DRAW prior
        is autoregressive, so nothing else can be cached). A sequence of B mappings gives a batch of B scenes
        (``Scene.size``), as the evaluations use. An empty mapping is a scene seen by no sensor (the prior alone).
        Raises ``ValueError`` naming the argument and the expected shape for an unknown modality, a wrong shape,
        dtype or range, or queries of another dimension than the modality's query kind."""
        batch = [observations] if isinstance(observations, Mapping) else list(observations)
        if not batch or not all(isinstance(o, Mapping) for o in batch):
            raise ValueError("observations: expected a mapping {modality name: (values, queries)} or a non-empty "
                             "sequence of such mappings, one per scene")  # fmt: skip
        return Scene(self, self._points(batch, "observations"), len(batch))

    def classify(self, contexts: Sequence[Observations], observations: Sequence[Observations], samples: int = 50,
                 seed: int | None = None, batch: int = 25, channels_last: bool | None = None) -> Classification:  # fmt: skip
        """Scene classification without training (paper Eq. 6; Lake et al. 2015): which of K candidate scenes did
        each of J observation sets come from? ``contexts``: K observation mappings C_k (what is known of each
        candidate scene); ``observations``: J mappings O_i (each observed in one scene). Scores L[k, i] = IWAE
        log p(O_i | C_k) in nats per dimension of O_i, ``samples`` importance samples (paper: 50), ``batch`` (k, i)
        pairs per pass; Eq. 6 predicts k̂_i = argmax_k L[k, i]. ``seed``: None draws from torch's generator as it
        stands; an int draws under that seed and leaves torch's generator as it was. ``channels_last``: as
        ``evaluation.classification.score_matrix`` (None: on a CPU). Returns ``Classification`` with ``scores``
        (K, J) float64 and ``predicted`` (J,) int64. Raises ``ValueError`` as ``observe``, and when K or J is 0
        or an observation set is empty."""
        from .evaluation.classification import score_pairs

        contexts, observations = list(contexts), list(observations)
        if not contexts or not observations:
            raise ValueError(f"contexts and observations: expected K >= 1 and J >= 1 mappings, got K = "
                             f"{len(contexts)}, J = {len(observations)}")  # fmt: skip
        context = self._points(contexts, "contexts")
        targets = self._points(observations, "observations")
        empty = [i for i in range(len(observations)) if not any(bool((p.scene == i).any()) for p in targets)]
        if empty:
            raise ValueError(f"observations[{empty[0]}]: an observation set needs at least one (value, query) pair")
        with self._seeded(seed):
            scores = score_pairs(self.model, context, targets, len(contexts), len(observations), samples, batch,
                                 channels_last)  # fmt: skip
        return Classification(scores, np.argmax(scores, axis=0).astype(np.int64))

    def mese_scene(self, seed: int = 0, split: str | None = None, index: int | None = None,
                   blocks: int | None = None) -> MeseScene:  # fmt: skip
        """A MESE scene to observe, made as the run's data was (its blocks, colour saturation, physics, hand and
        sensors; ``spec.data``): a new object drawn from ``seed``, or, with ``split`` and ``index``, the object
        (and views) of that scene of the run's own dataset. ``blocks``: another object size (the held-out 4- and
        6-block objects of the paper's classification). Raises ``ValueError`` for a run without its spec, an
        unknown split, or only one of ``split`` and ``index``."""
        return MeseScene(self, seed, split, index, blocks)

    def normalize(self, name: str, values: Array, where: str = "values") -> np.ndarray:
        """(N, *modality shape) float32: sensor ``values`` (N, *sensor.shape) of modality ``name`` cut and
        normalised with the run's statistics, as the model sees them. Raises ``ValueError`` naming ``where``."""
        m = self._modality(name, where)
        return self._senses(m, values, where)

    def denormalize(self, name: str, senses: Array) -> np.ndarray:
        """``normalize``'s inverse for modality ``name``: (N, *modality shape) on the model's scale -> the sensor's
        units and dtype (``uint8``: rounded and clipped to 0..255; ``minmax``: the training range's units, where
        the model's [-1, 1] is the range; ``none``: as they are)."""
        m = self._modality(name, "modality")
        return denormalize(_numpy(senses), m.sensor, self.stats, m.slice)

    # ---------------------------------------------------------------------------------------------- internals

    def _modality(self, name: Any, where: str) -> Modality:
        for m in self.modalities:
            if m.name == name:
                return m
        raise ValueError(f"{where}: unknown modality {name!r}; the run's modalities: {self.names}")

    def _senses(self, m: Modality, values: Array, where: str) -> np.ndarray:
        sensor = m.sensor
        x = _numpy(values)
        expected = f"(N, {', '.join(str(d) for d in sensor.shape)})"
        what = ("uint8 0-255 or float in [0, 1]" if sensor.normalization == "uint8" else f"float, {sensor.units}")
        if x.ndim != 1 + len(sensor.shape) or tuple(x.shape[1:]) != tuple(sensor.shape):
            raise ValueError(f"{where}: expected shape {expected} ({sensor.name} values, {what}), got "
                             f"{tuple(x.shape)}")  # fmt: skip
        if x.dtype.kind not in "uifb" or x.dtype.kind == "b":
            raise ValueError(f"{where}: expected numbers of shape {expected} ({what}), got dtype {x.dtype}")
        if x.dtype.kind == "f" and not np.isfinite(x).all():
            raise ValueError(f"{where}: expected finite values of shape {expected}, got "
                             f"{int((~np.isfinite(x)).sum())} NaN or infinite")  # fmt: skip
        if sensor.normalization == "uint8" and x.dtype != np.uint8:
            if x.dtype.kind == "f":
                if x.size and (x.min() < 0 or x.max() > 1):
                    raise ValueError(f"{where}: float values of shape {expected} must lie in [0, 1] (or pass uint8 "
                                     f"0-255), got [{x.min():g}, {x.max():g}]")  # fmt: skip
                return np.ascontiguousarray(m.slice(x.astype(np.float32)))
            if x.size and (x.min() < 0 or x.max() > 255):
                raise ValueError(f"{where}: integer values of shape {expected} must lie in 0..255, got "
                                 f"[{x.min()}, {x.max()}]")  # fmt: skip
            x = x.astype(np.uint8)
        return np.ascontiguousarray(m.slice(normalize(x, sensor, self.stats)))

    def _queries(self, m: Modality, queries: Array, n: int | None, where: str) -> np.ndarray:
        kind = _kind(m)
        q = _numpy(queries)
        expected = f"({'N' if n is None else n}, {kind.dim})"
        if q.ndim != 2 or q.shape[1] != kind.dim or (n is not None and len(q) != n):
            raise ValueError(f"{where}: expected shape {expected}, {kind.name} queries ({kind.units}) of modality "
                             f"{m.name!r}, got {tuple(q.shape)}")  # fmt: skip
        if q.dtype.kind not in "uif" or not np.isfinite(q).all():
            raise ValueError(f"{where}: expected finite numbers of shape {expected} ({kind.units}), got dtype "
                             f"{q.dtype} with {int((~np.isfinite(q.astype(float))).sum())} non-finite")  # fmt: skip
        return q.astype(np.float32)

    def _pair(self, m: Modality, pair: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(pair, (str, bytes)) or not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise ValueError(f"{where}: expected a pair (values (N, {', '.join(map(str, m.sensor.shape))}), queries "
                             f"(N, {_kind(m).dim})), got {type(pair).__name__}")  # fmt: skip
        senses = self._senses(m, pair[0], f"{where} values")
        return senses, self._queries(m, pair[1], len(senses), f"{where} queries")

    def _points(self, batch: list[Mapping], where: str) -> list[Points]:
        """One ``Points`` per modality (the model's input) of B scenes' observations; absent modalities: N = 0."""
        checked = []
        for b, obs in enumerate(batch):
            at = where if len(batch) == 1 else f"{where}[{b}]"
            for name in obs:
                self._modality(name, at)
            checked.append({m.name: self._pair(m, obs[m.name], f"{at}[{m.name!r}]")
                            for m in self.modalities if m.name in obs})  # fmt: skip
        out = []
        for m in self.modalities:
            parts = [(b, c[m.name]) for b, c in enumerate(checked) if m.name in c]
            senses = [s for _, (s, _) in parts] or [np.zeros((0, *m.shape), np.float32)]
            queries = [q for _, (_, q) in parts] or [np.zeros((0, _kind(m).dim), np.float32)]
            scene = np.concatenate([np.full(len(s), b, np.int64) for b, (s, _) in parts] or [np.zeros(0, np.int64)])
            senses = np.concatenate(senses)
            out.append(Points(torch.from_numpy(senses).reshape(len(senses), *m.shape),
                              torch.from_numpy(np.concatenate(queries)), torch.from_numpy(scene)))  # fmt: skip
        return out

    @contextlib.contextmanager
    def _seeded(self, seed: int | None):
        """None: torch's generators as they stand; an int: seeded, and restored afterwards (``fork_rng``)."""
        if seed is None:
            yield
            return
        device = self.device
        devices = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices, device_type=device.type if device.type != "cpu" else "cuda"):
            torch.manual_seed(seed)
            yield


@attrs.frozen(eq=False)
class Classification:
    """``Run.classify``'s answer (paper Eq. 6). ``scores``: (K, J) float64, L[k, i] = IWAE log p(O_i | C_k) in nats
    per dimension; ``predicted``: (J,) int64, k̂_i = argmax_k L[k, i] (ties: the lower k)."""

    scores: np.ndarray
    predicted: np.ndarray


class Scene:
    """What a run inferred from observations (``Run.observe``): B scenes (``size``; 1 for one mapping), their
    context, and their representations r_m (``representations``, computed on first use and kept). Rendering
    draws z ~ P(z | C) through the DRAW prior each time (paper Eq. 2); scoring re-encodes the context together with
    the targets, in one encoder pass per modality, as training does, so its numbers equal ``GMN.log_likelihood``'s.
    """

    def __init__(self, run: Run, context: list[Points], size: int):
        self.run, self.context, self.size = run, context, size
        self._representations = None

    @property
    def representations(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(r, present): r (M, B, r_channels, h, w), each modality's aggregated context representation r_m
        (reference §2.3; zero where a modality has no context), present (M, B) bool."""
        if self._representations is None:
            self._representations = self.run.model.represent(self.context, self.size)
        return self._representations

    def render(self, modality: str, queries: Array, samples: int = 1, seed: int | None = None,
               scale: Scale = "sensor", temperature: float = 1.0) -> np.ndarray:  # fmt: skip
        """(samples, N, *modality shape): modality ``modality`` of this (one) scene rendered at ``queries`` (N, dim)
        in its query kind's units, each sample from its own z ~ P(z | C) (paper Eq. 2); the renderer's mean, in the
        sensor's units and dtype (``scale="sensor"``: e.g. uint8 0-255 RGB, (N, 3, 64, 64)) or on the model's
        normalised scale (``"model"``, float32). ``seed``: None draws from torch's generator as it stands; an int
        draws under that seed and leaves torch's generator as it was. ``temperature``: each z_t drawn as
        mu + temperature * sigma * eps (``models.convdraw.sampling_temperature``): 1 samples the prior, 0 renders
        its means, the same every time. Raises ``ValueError`` for an unknown modality, queries of another shape,
        samples < 1, temperature < 0, or a Scene of several scenes (use ``render_all``)."""
        if self.size != 1:
            raise ValueError(f"render: this Scene holds {self.size} scenes; use render_all with one mapping per scene")
        self.run._modality(modality, "modality")
        return self.render_all({modality: queries}, samples, seed, scale, temperature)[modality]

    def render_all(self, queries: Mapping[str, Array] | Sequence[Mapping[str, Array]], samples: int = 1,
                   seed: int | None = None, scale: Scale = "sensor",
                   temperature: float = 1.0) -> dict[str, np.ndarray]:  # fmt: skip
        """``render`` for several modalities at once, all from the same z per sample and scene: ``queries`` maps
        modality names to (N, dim) queries (one scene), or is a sequence of ``size`` such mappings (one per scene).
        Returns {name: (samples, N, *shape)}, a name's N points of all scenes in scene order. Raises ``ValueError``
        as ``render``."""
        _check_scale(scale)
        _check_samples(samples)
        run, per_scene = self.run, self._per_scene(queries, "queries")
        q, s = [None] * len(run.modalities), [None] * len(run.modalities)
        for b, scene_q in enumerate(per_scene):
            for name in scene_q:
                run._modality(name, "queries" if self.size == 1 else f"queries[{b}]")
        for i, m in enumerate(run.modalities):
            asked = [(b, run._queries(m, scene_q[m.name], None, _at("queries", b, self.size, m.name)))
                     for b, scene_q in enumerate(per_scene) if m.name in scene_q]  # fmt: skip
            if asked:
                q[i] = torch.from_numpy(np.concatenate([x for _, x in asked]))
                s[i] = torch.from_numpy(np.concatenate([np.full(len(x), b, np.int64) for b, x in asked]))
        r, present = self.representations
        out: dict[str, list] = {m.name: [] for m, x in zip(run.modalities, q) if x is not None}
        with run._seeded(seed), sampling_temperature(temperature):
            for _ in range(samples):
                rendered = run.model.generate_from(r, present, q, s)
                for m, x in zip(run.modalities, rendered):
                    if x is not None:
                        out[m.name].append(x.cpu().numpy())
        return {name: self._scaled(name, np.stack(rows), scale) for name, rows in out.items()}

    def log_likelihood(self, modality: str | Observations | Sequence[Observations], values: Array = None,
                       queries: Array = None, samples: int = 5, seed: int | None = None,
                       transforms: Mapping[str, Callable] | None = None) -> float | np.ndarray:  # fmt: skip
        """IWAE estimate of log p(X | V, C) in nats per target dimension (reference §6.1; ``samples`` importance
        samples from Q(z | C, O)): how likely this scene makes the observations ``values`` (N, *sensor.shape) of
        ``modality`` at ``queries`` (N, dim), in the units ``Run.observe`` takes. Instead of a name, ``modality``
        may be a mapping of several modalities' (values, queries) (one scene), or a sequence of ``size`` mappings:
        then a (B,) float64 array, one estimate per scene; else a float. ``transforms``: {name: callable}
        applied to the target senses and the rendered means (model scale) before the likelihood, e.g.
        ``evaluation.density.gray``. ``seed``: as ``render``. Raises ``ValueError`` as ``Run.observe``, and when a
        scene has no target."""
        if isinstance(modality, str):
            targets: Any = {modality: (values, queries)}
        elif values is not None or queries is not None:
            raise ValueError("log_likelihood: values and queries go with a modality name, not with a mapping")
        else:
            targets = modality
        _check_samples(samples)
        run, per_scene = self.run, self._per_scene(targets, "targets")
        points = run._points(per_scene, "targets")
        for name in transforms or {}:
            run._modality(name, "transforms")
        chosen = [(transforms or {}).get(m.name) for m in run.modalities]
        empty = [b for b in range(self.size) if not any(bool((p.scene == b).any()) for p in points)]
        if empty:
            raise ValueError(f"targets: scene {empty[0]} has no (value, query) pair to score")
        with run._seeded(seed):
            scores = run.model.log_likelihood(self.context, points, self.size, samples, chosen)
        scores = scores.cpu().double().numpy()
        return float(scores[0]) if isinstance(targets, Mapping) else scores

    def reconstruct(self, targets: Observations | Sequence[Observations], samples: int = 1, seed: int | None = None,
                    scale: Scale = "sensor") -> dict[str, np.ndarray]:  # fmt: skip
        """A diagnostic beside ``render``: the targets' modalities rendered at their queries from z ~ Q(z | C, O),
        the posterior that also saw the targets' values (``GMN.reconstruct``). ``targets``: observations as
        ``Run.observe`` takes them, one mapping (one scene) or ``size`` of them. Returns {name: (samples, N,
        *shape)} as ``render_all``. Raises ``ValueError`` as ``Run.observe``."""
        _check_scale(scale)
        _check_samples(samples)
        run, per_scene = self.run, self._per_scene(targets, "targets")
        points = run._points(per_scene, "targets")
        out: dict[str, list] = {m.name: [] for m, p in zip(run.modalities, points) if len(p.scene)}
        with run._seeded(seed):
            for _ in range(samples):
                for m, x in zip(run.modalities, run.model.reconstruct(self.context, points, self.size)):
                    if x is not None:
                        out[m.name].append(x.cpu().numpy())
        return {name: self._scaled(name, np.stack(rows), scale) for name, rows in out.items()}

    def _per_scene(self, value: Any, where: str) -> list:
        if isinstance(value, Mapping):
            if self.size != 1:
                raise ValueError(f"{where}: this Scene holds {self.size} scenes; pass a sequence of {self.size} "
                                 f"mappings, one per scene")  # fmt: skip
            return [value]
        value = list(value) if isinstance(value, Sequence) else None
        if value is None or len(value) != self.size or not all(isinstance(v, Mapping) for v in value):
            raise ValueError(f"{where}: expected a mapping {{modality name: ...}} or a sequence of {self.size} of them")
        return value

    def _scaled(self, name: str, senses: np.ndarray, scale: Scale) -> np.ndarray:
        if scale == "model":
            return senses
        return self.run.denormalize(name, senses)


class MeseScene:
    """A MESE scene (a Shepard-Metzler object of ``blocks`` blocks and its colours) to observe with a run's sensors,
    made with the run's dataset settings: colour saturation, physics preset, hand and its options
    (``Run.mese_scene``). ``walk`` (blocks - 1,) int8 and ``colours`` (blocks, 3) float32 in [0, 1] are the object.

    ``observations`` samples views as MESE does (the camera: random viewpoints on the sphere; the hand: random
    wrist poses until grasps are accepted), each query kind from its own random stream of the scene;
    ``record`` poses the rig at given queries, for query kinds that can be posed anywhere (the camera). Every call
    opens the rigs it needs and closes them before returning."""

    def __init__(self, run: Run, seed: int = 0, split: str | None = None, index: int | None = None,
                 blocks: int | None = None):  # fmt: skip
        from .data.format import SPLIT_CODES
        from .mese.scene import SATURATION, scene_rng
        from .mese.shapes import sample_colours, sample_walk

        if run.spec is None:
            raise ValueError("mese_scene: this Run has no spec (made from a bare model); open it with open_run")
        if (split is None) != (index is None):
            raise ValueError(f"mese_scene: split and index go together (a scene of the run's dataset), got "
                             f"split={split!r}, index={index!r}")  # fmt: skip
        if split is not None and split not in SPLIT_CODES:
            raise ValueError(f"mese_scene: split must be one of {list(SPLIT_CODES)}, got {split!r}")
        from .training.experiment import dataset_config

        self.run = run
        self.config = dataset_config(run.spec, run.modalities)
        self.blocks = self.config.blocks if blocks is None else int(blocks)
        if self.blocks < 2:
            raise ValueError(f"blocks: an object needs at least 2 blocks, got {self.blocks}")
        if split is None:
            self._rng = lambda stream: np.random.default_rng(np.random.SeedSequence([int(seed)], spawn_key=(stream,)))
        else:
            self._rng = lambda stream: scene_rng(self.config.seed, split, int(index), stream)
        object_rng = self._rng(0)
        walk = sample_walk(object_rng, self.blocks)
        self.walk = walk.astype(np.int8)
        self.colours = sample_colours(object_rng, self.blocks, SATURATION[self.config.saturation]).astype(np.float32)

    def observations(self, counts: Mapping[str, int]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """{name: (values (k, *sensor.shape) as the sensor records them, queries (k, dim) float32)} for each
        modality named in ``counts`` ({modality name: k}), sampled as MESE samples a dataset's views (the first k
        of the scene's sequence of its query kind: the same counts give the same views, more extend them), ready
        for ``Run.observe``. Raises ``ValueError`` for an unknown modality or a count < 0; ``RuntimeError`` when
        the hand cannot get enough accepted grasps (``mese.scene.MAX_GRASP_ATTEMPTS_PER_VIEW``)."""
        from .data.format import query_key
        from .mese.scene import SATURATION, SceneMaker

        run = self.run
        chosen = []
        for name, k in counts.items():
            m = run._modality(name, "counts")
            if not isinstance(k, (int, np.integer)) or k < 0:
                raise ValueError(f"counts[{name!r}]: expected an int >= 0, got {k!r}")
            chosen.append((m, int(k)))
        out = {}
        for kind_name in dict.fromkeys(m.sensor.query for m, _ in chosen):
            members = [(m, k) for m, k in chosen if m.sensor.query == kind_name]
            kind = _kind(members[0][0])
            views = max(k for _, k in members)
            if views == 0:
                arrays = {}
            else:
                sensors = list({m.sensor.name: m.sensor for m, _ in members}.values())
                with SceneMaker(sensors, self.blocks, views, self.config.physics, self.config.hand,
                                SATURATION[self.config.saturation], {kind_name: kind}) as maker:  # fmt: skip
                    arrays = maker.make_with(self._rng)
            for m, k in members:
                values = arrays[m.sensor.name][:k] if k else np.zeros((0, *m.sensor.shape), m.sensor.dtype)
                queries = arrays[query_key(kind_name)][:k] if k else np.zeros((0, kind.dim), np.float32)
                out[m.name] = (values, queries)
        return out

    def record(self, modality: str, queries: Array) -> np.ndarray:
        """(N, *sensor.shape): what modality ``modality``'s sensor records of this object with its rig posed at
        ``queries`` (N, dim) in the query kind's units, as the sensor records it (e.g. ``camera.rgb`` (N, 3, 64, 64)
        uint8): the truth beside ``Scene.render`` (which gives the modality's cut of it). Only for query kinds that
        can be posed anywhere (``QueryKind.can_pose``: the camera; ``camera_orbit`` makes such queries). Raises
        ``ValueError`` for an unknown modality, queries of another shape, or a kind that cannot be posed (use
        ``observations`` for its own views)."""
        from .mese.shapes import block_centres

        m = self.run._modality(modality, "modality")
        kind = _kind(m)
        if not kind.can_pose:
            raise ValueError(f"modality: {modality!r} has query kind {kind.name!r}, whose rig cannot be posed at any "
                             f"query; observations({{{modality!r}: N}}) gives its views where MESE takes them")  # fmt: skip
        q = self.run._queries(m, queries, None, "queries")
        rig = kind.open_rig(blocks=self.blocks, physics=self.config.physics, hand=self.config.hand)
        try:
            rig.set_object(block_centres(self.walk.astype(np.int64)), self.colours)
            views = []
            for query in q:
                kind.pose_rig(rig, query.astype(np.float64))
                views.append(np.asarray(m.sensor.record(rig), m.sensor.dtype))
        finally:
            rig.close()
        return np.stack(views) if views else np.zeros((0, *m.sensor.shape), m.sensor.dtype)


def camera_orbit(views: int, pitch: float = 0.0, yaw: float = 0.0) -> np.ndarray:
    """(views, 5) float32 camera queries (x, y, z in metres, pitch, yaw in radians): ``views`` viewpoints evenly
    spaced in yaw around the object (from ``yaw``, radians), at elevation ``pitch`` (radians, -π/2..π/2), on
    MESE's radius-1 sphere looking at the object, in the dataset's convention (``mese.camera.sample_viewpoint``:
    position -(cos p cos y, cos p sin y, sin p), pitch stored in [0, 2π)). Raises ``ValueError`` for views < 1."""
    if views < 1:
        raise ValueError(f"views: expected >= 1, got {views}")
    yaws = yaw + 2 * math.pi * np.arange(views) / views
    p = float(pitch)
    position = -np.stack([math.cos(p) * np.cos(yaws), math.cos(p) * np.sin(yaws), np.full(views, math.sin(p))], 1)
    angles = np.stack([np.full(views, p % (2 * math.pi)), yaws % (2 * math.pi)], 1)
    return np.concatenate([position, angles], 1).astype(np.float32)


def plot_views(rows: Mapping[str, Array], path: str | Path | None = None, size: float = 1.3):
    """A matplotlib figure of images, one labelled row per entry of ``rows`` ({label: (N, C, H, W)}, C = 1 or
    3, uint8 0-255 or float in [0, 1], e.g. ``MeseScene.record``'s truth and ``Scene.render``'s samples), ``size``
    inches per image; saved to ``path`` when given. Raises ``ValueError`` for another shape."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    images = {label: _numpy(x) for label, x in rows.items()}
    for label, x in images.items():
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"rows[{label!r}]: expected shape (N, C, H, W) with C = 1 or 3, got {tuple(x.shape)}")
    columns = max(len(x) for x in images.values())
    figure, axes = plt.subplots(len(images), columns, figsize=(size * columns, size * len(images)), squeeze=False)
    for row, (label, x) in zip(axes, images.items()):
        for ax in row:
            ax.set_axis_off()
        for ax, image in zip(row, x):
            picture = image.transpose(1, 2, 0)
            ax.imshow(picture[..., 0] if picture.shape[-1] == 1 else picture, cmap="gray")
        row[0].set_axis_on()
        row[0].set_xticks([]), row[0].set_yticks([])
        row[0].set_ylabel(label)
    figure.tight_layout()
    if path is not None:
        figure.savefig(path)
    return figure


def _numpy(x: Array) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _kind(m: Modality):
    from .mese.queries import BUILTIN

    return m.query_kind or BUILTIN[m.sensor.query]


def _at(where: str, b: int, size: int, name: str) -> str:
    return f"{where}[{name!r}]" if size == 1 else f"{where}[{b}][{name!r}]"


def _check_scale(scale: str) -> None:
    if scale not in ("sensor", "model"):
        raise ValueError(f"scale: expected 'sensor' or 'model', got {scale!r}")


def _check_samples(samples: int) -> None:
    if not isinstance(samples, (int, np.integer)) or samples < 1:
        raise ValueError(f"samples: expected an int >= 1, got {samples!r}")
