"""A trained run, reopened for evaluation: its resolved spec, its modalities, the model with its weights, its data.

Everything comes from ``RUN/checkpoint.pt`` (state_dict + resolved spec + ordered modality identities), so a run is
evaluated with exactly the modalities and options it was trained with, and refused in one line when the installed
modality plugins differ from the ones it was trained with.

A checkpoint copied alone (to another machine, without its dataset) can be evaluated too: it carries its dataset's
settings, the training split's statistics and the sha256 of every val/test shard, so the val and test splits (never
train) are made again on demand into ``RUN/data`` (or ``data_dir``), normalised with the stored statistics, and each
remade shard is compared with its stored sha256; differences are reported (``Run.regenerated``, one line on stderr),
not refused, since another EGL vendor or MuJoCo version may render other bytes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import attrs

from ..training.checkpoint import CheckpointError, check_compatible, load_checkpoint
from ..data.episodes import SceneSet
from ..data.format import MANIFEST, DataError, manifest_sha256
from ..mese.generate import GENERATOR_VERSION, DatasetConfig, generate
from ..core.modality import Modality
from ..models.gmn import GMN
from ..core.registry import Registry
from ..core.spec import ExperimentSpec, structure, to_dict

EVAL_SPLITS = ("val", "test")  # the splits a checkpoint copied alone makes again (train: never)


@attrs.define
class Run:
    """``dir``: the run directory; ``spec``: the resolved spec it was trained with; ``modalities``: in id order;
    ``model``: the GMN in eval mode; ``step``: training steps done; ``manifest``: its dataset's manifest (checked
    against the spec; the training split's statistics normalise every split); ``data_dir``: where its scenes are
    read (the spec's ``data.dir``, or the directory its val/test splits were regenerated into).

    ``regenerated``: None when the run's own dataset was found; else ``{"dir", "splits": {split: scenes},
    "shards_total", "shards_differ": [file, ...]}``: the val/test splits were made again from the checkpoint's
    dataset settings into ``dir`` and ``shards_differ`` lists the shards whose sha256 differs from the one stored in
    the checkpoint (empty: byte-identical to the data the run was trained beside). ``manifest["stats"]`` is then the
    checkpoint's training statistics, and ``manifest["splits"]`` holds only the regenerated splits."""

    dir: Path
    spec: ExperimentSpec
    modalities: list[Modality]
    model: GMN
    step: int
    manifest: dict
    data_dir: Path | None = None
    regenerated: dict | None = None

    def scenes(self, split: str = "val") -> SceneSet:
        """The run's own dataset split (``val`` falls back to ``train`` when the run has no validation scenes).
        Raises ``DataError`` for a split that was not regenerated (``train``, when the checkpoint was copied alone)."""
        if split == "val" and not self.manifest["splits"].get("val", {}).get("scenes"):
            split = "train"
        if self.regenerated is not None and split not in self.manifest["splits"]:
            raise DataError(f"{self.spec.data.dir}: no finished dataset there, and a checkpoint copied alone remakes "
                            f"only its val/test splits ({', '.join(self.regenerated['splits']) or 'none'}), not "
                            f"{split}; evaluate beside the run's dataset for it")  # fmt: skip
        root = self.spec.data.dir if self.data_dir is None else self.data_dir
        return SceneSet(root, split, self.modalities, self.manifest["stats"])

    def heldout_scenes(self, blocks: int, scenes: int, workers: int | None = None, progress: bool = False) -> SceneSet:
        """A test-only set of ``scenes`` objects with ``blocks`` blocks (4 or 6: shapes the 5-block training never
        showed; reference §6.3), made like the run's data (sensors, hand, physics, saturation, seed) into
        ``DATA_DIR-heldout{blocks}x{scenes}`` if missing (``DATA_DIR``: ``data_dir``, the regenerated directory when
        the run's dataset is absent), normalised with the training split's statistics."""
        from ..training.experiment import dataset_config

        config = attrs.evolve(dataset_config(self.spec, self.modalities), blocks=blocks, splits={"test": scenes})
        root = f"{self.spec.data.dir if self.data_dir is None else self.data_dir}-heldout{blocks}x{scenes}"
        generate(root, config, workers=self.spec.data.workers if workers is None else workers, progress=progress)
        return SceneSet(root, "test", self.modalities, self.manifest["stats"])


def load_run(run_dir: str | Path, registry: Registry, progress: bool = False, device: str = "cpu",
             data_dir: str | Path | None = None, checkpoint: str | Path | None = None) -> Run:  # fmt: skip
    """Reopen ``run_dir`` (a ``train.out`` directory). Raises ``CheckpointError`` (one line) when it holds no readable
    checkpoint or the installed modalities differ from the trained ones; ``SpecError`` for a stored spec this version
    cannot read; ``DataError`` when its dataset directory holds other data, or no finished dataset and the
    checkpoint (written before checkpoints carried their data's statistics) cannot remake it. ``device``: as
    ``train.device``. ``checkpoint``: another checkpoint of the run than ``RUN/checkpoint.pt``, e.g. one that
    ``train.keep_every`` kept (``RUN/checkpoints/step-N.pt``).

    A checkpoint copied alone can be evaluated: when the spec's ``data.dir`` (relative to the current directory)
    holds no finished dataset, the val and test splits (never train) are made again from the checkpoint's dataset
    settings into ``data_dir`` (default ``RUN/data``; kept for the next call), normalised with the checkpoint's
    training statistics, and every remade shard's sha256 is compared with the checkpoint's: differences are reported
    in ``Run.regenerated`` and one line on stderr, not refused (another renderer may give other bytes)."""
    from ..training.experiment import dataset_config

    path = Path(run_dir) / "checkpoint.pt" if checkpoint is None else Path(checkpoint)
    ckpt, spec, modalities, model = open_checkpoint(path, registry, device)
    stored = ckpt.get("data") or {}
    if not (Path(spec.data.dir) / MANIFEST).is_file():  # never start a (possibly paper-sized) generation here
        if not {"config", "stats", "shards"} <= set(stored):
            raise DataError(f"{spec.data.dir}: no finished dataset there (the run's data.dir, relative to where it was "
                            f"trained); run gmn-eval from that directory, or make the data first (gmn-run / gmn-data)")  # fmt: skip
        root = Path(run_dir) / "data" if data_dir is None else Path(data_dir)
        manifest, regenerated = _regenerate(root, stored, spec, registry, progress)
        return Run(Path(run_dir), spec, modalities, model, int(ckpt["step"]), manifest, root, regenerated)
    manifest = generate(spec.data.dir, dataset_config(spec, modalities), workers=spec.data.workers, progress=progress,
                        registry=registry)
    check_compatible(ckpt, to_dict(spec), [m.identity() for m in modalities], path,
                     {"manifest_sha256": manifest_sha256(manifest)})  # the data it was trained on, wherever it lives
    return Run(Path(run_dir), spec, modalities, model, int(ckpt["step"]), manifest, Path(spec.data.dir))


def open_checkpoint(path: str | Path, registry: Registry, device: str = "cpu") -> tuple[dict, ExperimentSpec,
                                                                                         list[Modality], GMN]:  # fmt: skip
    """The model of one checkpoint file, and nothing else (no data is looked for or made): (the checkpoint's
    payload, its resolved spec, its modalities in id order, the GMN with its weights, in eval mode, on ``device``,
    as ``train.device``). Raises ``CheckpointError`` (one line) for a missing or unreadable file, or when the
    installed modality plugins differ from the ones it was trained with; ``SpecError`` for a stored spec this
    version cannot read or a device this machine lacks. ``load_run`` and ``gmn_plugins.open_run`` both open runs
    here."""
    from ..training.experiment import build_model, resolve_device

    path = Path(path)
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
    return ckpt, spec, modalities, model


def _regenerate(root: Path, stored: dict, spec: ExperimentSpec, registry: Registry,
                progress: bool) -> tuple[dict, dict]:  # fmt: skip
    """Make the val/test splits of the checkpoint's dataset (settings ``stored["config"]``) in ``root`` (or find them
    there), compare their shards with ``stored["shards"]``; return (the manifest with the checkpoint's training
    statistics, the ``Run.regenerated`` report). Each scene depends on (seed, split, index) alone, so a split's shards
    are the same whatever the sizes of the other splits."""
    config = DatasetConfig.from_json(stored["config"])
    splits = {split: n for split, n in config.splits.items() if split in EVAL_SPLITS and n > 0}
    made = generate(root, attrs.evolve(config, splits=splits), workers=spec.data.workers, progress=progress,
                    registry=registry)  # fmt: skip
    have = {e["file"]: e["sha256"] for split in splits for e in made["splits"][split]["shards"]}
    want = {e["file"]: e["sha256"] for split in splits for e in stored["shards"].get(split, [])}
    files = sorted(set(have) | set(want))
    differ = [f for f in files if have.get(f) != want.get(f)]
    report = {"dir": str(root), "splits": splits, "shards_total": len(files), "shards_differ": differ}
    if differ:
        version = stored["config"].get("generator_version")
        why = (f"the checkpoint's data was made by generator version {version}, this is {GENERATOR_VERSION}"
               if version != GENERATOR_VERSION else "another renderer (EGL vendor) or MuJoCo version")
        print(f"warning: {root}: {len(differ)} of {len(files)} regenerated val/test shards differ from the sha256 "
              f"stored in the checkpoint (first: {differ[0]}); likely {why}: numbers may differ slightly from the "
              f"original data's", file=sys.stderr)  # fmt: skip
    return {**made, "stats": stored["stats"]}, report
