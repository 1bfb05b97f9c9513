"""A trained run, reopened for evaluation: its resolved spec, its modalities, the model with its weights, its data.

Everything comes from ``RUN/checkpoint.pt`` (state_dict + resolved spec + ordered modality identities), so a run is
evaluated with exactly the modalities and options it was trained with, and refused in one line when the installed
modality plugins differ from the ones it was trained with.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from ..checkpoint import CheckpointError, check_compatible, load_checkpoint
from ..data.episodes import SceneSet
from ..mese.generate import DataError, generate
from ..mese.shards import manifest_sha256
from ..modality import Modality
from ..models.gmn import GMN
from ..registry import Registry
from ..spec import ExperimentSpec, structure, to_dict


@attrs.define
class Run:
    """``dir``: the run directory; ``spec``: the resolved spec it was trained with; ``modalities``: in id order;
    ``model``: the GMN in eval mode; ``step``: training steps done; ``manifest``: its dataset's manifest (checked
    against the spec; the training split's statistics normalise every split)."""

    dir: Path
    spec: ExperimentSpec
    modalities: list[Modality]
    model: GMN
    step: int
    manifest: dict

    def scenes(self, split: str = "val") -> SceneSet:
        """The run's own dataset split (``val`` falls back to ``train`` when the run has no validation scenes)."""
        if split == "val" and "val" not in self.manifest["splits"]:
            split = "train"
        return SceneSet(self.spec.data.dir, split, self.modalities, self.manifest["stats"])

    def heldout_scenes(self, blocks: int, scenes: int, workers: int | None = None, progress: bool = False) -> SceneSet:
        """A test-only set of ``scenes`` objects with ``blocks`` blocks (4 or 6: shapes the 5-block training never
        showed; reference §6.3), made like the run's data (sensors, hand, physics, saturation, seed) into
        ``DATA_DIR-heldout{blocks}x{scenes}`` if missing, normalised with the training split's statistics."""
        from ..experiment import dataset_config

        config = attrs.evolve(dataset_config(self.spec, self.modalities), blocks=blocks, splits={"test": scenes})
        root = f"{self.spec.data.dir}-heldout{blocks}x{scenes}"
        generate(root, config, workers=self.spec.data.workers if workers is None else workers, progress=progress)
        return SceneSet(root, "test", self.modalities, self.manifest["stats"])


def load_run(run_dir: str | Path, registry: Registry, progress: bool = False, device: str = "cpu") -> Run:
    """Reopen ``run_dir`` (a ``train.out`` directory). Raises ``CheckpointError`` (one line) when it holds no readable
    checkpoint or the installed modalities differ from the trained ones; ``SpecError`` for a stored spec this version
    cannot read; ``DataError`` when its dataset directory holds no finished dataset or other data. ``device``: as
    ``train.device``."""
    from ..experiment import build_model, dataset_config, resolve_device

    path = Path(run_dir) / "checkpoint.pt"
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file; train first (gmn-run SPEC writes it into train.out)")
    ckpt = load_checkpoint(path)
    spec = structure(ckpt["spec"], ExperimentSpec, str(path))
    modalities = registry.resolve(spec.modalities, str(path))
    check_compatible(ckpt, to_dict(spec), [m.identity() for m in modalities], path)
    model = build_model(spec, modalities, resolve_device(attrs.evolve(spec, train=attrs.evolve(spec.train, device=device)),
                                                        str(path)))  # fmt: skip
    model.load_state_dict(ckpt["model"])
    model.eval()
    if not (Path(spec.data.dir) / "manifest.json").is_file():  # never start a (possibly paper-sized) generation here
        raise DataError(f"{spec.data.dir}: no finished dataset there (the run's data.dir, relative to where it was "
                        f"trained); run gmn-eval from that directory, or make the data first (gmn-run / gmn-data)")  # fmt: skip
    manifest = generate(spec.data.dir, dataset_config(spec, modalities), workers=spec.data.workers, progress=progress,
                        registry=registry)
    check_compatible(ckpt, to_dict(spec), [m.identity() for m in modalities], path,
                     {"manifest_sha256": manifest_sha256(manifest)})  # the data it was trained on, wherever it lives
    return Run(Path(run_dir), spec, modalities, model, int(ckpt["step"]), manifest)
