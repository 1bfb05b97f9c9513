"""Issue 31, points 14-32: nothing silent, one line for each mistake, and a model family checked from the docs
alone. In-process: the CLIs' ``main`` functions on a tiny dataset made once, fixture plugins written into a
temporary site directory (a dist-info with a ``gmn_plugins`` entry point)."""

import json
import math

import attrs
import numpy as np
import pytest
import torch

from conftest import REPO
from gmn_plugins.cli import data as data_cli
from gmn_plugins.cli import plugins as plugins_cli
from gmn_plugins.cli import run as run_cli
from gmn_plugins.authoring.conformance import ConformanceError, check_modality
from gmn_plugins.core.family import Family
from gmn_plugins.core.modality import Sensor
from gmn_plugins.core.plugins import load_registry
from gmn_plugins.core.spec import SpecError, load_spec

SPEC = str(REPO / "specs" / "quickstart.toml")
TINY = ["data.views=3", "data.shard_size=2", "data.workers=1", "train.batch_scenes=2", "train.max_targets=2",
        "train.threads=1", "train.log_every=1", "train.checkpoint_every=1", 'model.preset="tiny"', "model.sigma=0.3",
        "train.eval_every=0"]  # fmt: skip


def cli(main, argv, capsys) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of a CLI's ``main(argv)`` run in this process."""
    try:
        main(argv)
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str, *fragments: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def paths(data, out) -> list[str]:
    return [f"data.dir={json.dumps(str(data))}", f"train.out={json.dumps(str(out))}"]


@pytest.fixture(scope="module")
def registry():
    return load_registry()


@pytest.fixture(scope="module")
def no_val_data(tmp_path_factory):
    """A dataset made by ``gmn-data generate`` without ``--val``: 4 training scenes of 3 views."""
    root = tmp_path_factory.mktemp("noval") / "d"
    data_cli.main(["generate", "--out", str(root), "--scenes", "4", "--views", "3", "--shard-size", "2",
                   "--workers", "1", "--no-progress"])  # fmt: skip
    return root


# ------------------------------------------------------------------------------------------- spec: 14, 15, 16, 20


def test_14_15_validation_without_val_scenes_and_a_cut_batch_are_said(capsys, tmp_path):
    argv = [SPEC, *TINY, *paths(tmp_path / "d", tmp_path / "r"), "data.val_scenes=0", "train.eval_every=5",
            "data.train_scenes=16", "train.batch_scenes=64", "--dry-run"]  # fmt: skip
    code, out, err = cli(run_cli.main, argv, capsys)
    assert code == 0, err
    lines = err.strip().splitlines()
    assert lines == [
        f"{SPEC}: train.eval_every: 5, but data.val_scenes = 0: this run never validates (no val.jsonl); set "
        "data.val_scenes > 0, or train.eval_every = 0 to silence this",
        f"{SPEC}: train.batch_scenes: 64 is more than the 16 training scenes (data.train_scenes): each step uses all "
        "16",
    ]
    code, out, err = cli(run_cli.main, argv[:-5] + ["--dry-run"], capsys)  # the quickstart as it is: no notice
    assert code == 0 and err == "", err


@pytest.mark.parametrize("override, field", [("train.out=", "train.out"), ('data.dir=""', "data.dir"),
                                             ('train.out="  "', "train.out")])  # fmt: skip
def test_16_an_empty_run_or_data_directory_is_refused(override, field, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(run_cli.main, [SPEC, *TINY, override, "train.steps=1", "--no-progress"], capsys)
    assert code == 2
    one_line(err, f"{SPEC}: {field}: must not be empty")
    assert list(tmp_path.iterdir()) == []  # nothing written into the working directory


@pytest.mark.parametrize("override, message", [
    ("model.sigma=1e12", "model.sigma: must be > 0 and <= 100, got 1000000000000.0"),
    ("model.chroma_weight=0", "model.chroma_weight: must be > 0 and <= 10000, got 0.0"),
    ("model.chroma_weight=-4.0", "model.chroma_weight: must be > 0 and <= 10000, got -4.0"),
    ("train.sigma_start=1e12", "train.sigma_start: must be > 0 and <= 100, got 1000000000000.0"),
    ("train.beta_start=1e12", "train.beta_start: must be <= 1000.0, got 1000000000000.0"),
    ("train.beta=1e12", "train.beta: must be <= 1000.0, got 1000000000000.0"),
    ("train.beta_anneal_steps=1000000000000", "train.beta_anneal_steps: must be <= 100000000, got 1000000000000"),
    ("train.steps=1000000000000", "train.steps: must be <= 100000000, got 1000000000000"),
])  # fmt: skip
def test_20_sigma_beta_and_step_counts_are_bounded(override, message):
    with pytest.raises(SpecError) as caught:
        load_spec(SPEC, [override])
    assert str(caught.value) == f"{SPEC}: {message}"
    load_spec(SPEC, ["model.sigma=100", "model.chroma_weight=1e4", "train.beta=1000",
                     "train.beta_anneal_steps=100000000"])  # the bounds


# -------------------------------------------------------------------------------------- training: 17, 22, 23


@pytest.fixture(scope="module")
def no_val_run(no_val_data, tmp_path_factory):
    """Point 22: ``gmn-run`` with ``data.val_scenes = 0`` on a dataset made without ``--val``: trains 2 steps."""
    out = tmp_path_factory.mktemp("noval_run") / "run"
    run_cli.main([SPEC, *TINY, *paths(no_val_data, out), "data.train_scenes=4", "data.test_scenes=0", "data.val_scenes=0",
                  "train.steps=2", "--no-progress"])  # fmt: skip
    return out


def test_22_a_dataset_made_without_val_trains_with_val_scenes_0(no_val_run, no_val_data):
    assert json.loads((no_val_run / "spec.json").read_text())["data"]["val_scenes"] == 0
    assert len((no_val_run / "metrics.jsonl").read_text().splitlines()) == 2
    assert "val" not in json.loads((no_val_data / "config.json").read_text())["splits"]  # the dataset is unchanged


def test_17_a_lower_train_steps_on_resume_is_said(no_val_run, no_val_data, capsys):
    argv = [SPEC, *TINY, *paths(no_val_data, no_val_run), "data.train_scenes=4", "data.test_scenes=0", "data.val_scenes=0", "--no-progress"]
    code, out, err = cli(run_cli.main, [*argv, "train.steps=1"], capsys)
    assert code == 0, err
    assert json.loads(out)["steps"] == 2
    one_line(err, f"{SPEC}: train.steps: 1 is below the step 2 of {no_val_run / 'checkpoint.pt'}: nothing to "
             "train, the run stays at step 2")  # fmt: skip
    code, out, err = cli(run_cli.main, [*argv, "train.steps=2"], capsys)  # the same steps: nothing to say
    assert code == 0 and err == "", err


def test_23_a_blow_up_of_the_kl_names_train_beta_and_the_metrics(no_val_data, tmp_path, capsys, monkeypatch):
    from gmn_plugins.models.gmn import GMN

    forward = GMN.forward
    calls = []

    def kl_blows_up(self, *args, **kwargs):  # step 2's KL overflows, as a too large beta drives it
        result = forward(self, *args, **kwargs)
        calls.append(1)
        if len(calls) == 2:
            result["kl"] = result["kl"] * math.inf
            result["kl_per_scene"] = result["kl_per_scene"] * math.inf
            result["loss"] = result["loss"] + math.inf
        return result

    monkeypatch.setattr(GMN, "forward", kl_blows_up)
    argv = [SPEC, *TINY, *paths(no_val_data, tmp_path / "run"), "data.train_scenes=4", "data.test_scenes=0", "data.val_scenes=0",
            "train.steps=3", "train.beta=50", "train.lr=0.003", "--no-progress"]  # fmt: skip
    code, out, err = cli(run_cli.main, argv, capsys)
    assert code == 2
    line = one_line(err, "train: the loss became inf at step 2 (the checkpoint of step 1 is intact); likely cause: "
                    "train.beta = 50 (beta_start = 0.1) too large, or train.lr = 0.003 too large for it (the KL term "
                    "grew past the likelihood: nll_per_dim ", ", kl_per_scene inf, beta ", "; at step 1: nll_per_dim ")
    assert "model.sigma" not in line


# --------------------------------------------------------------------------------------------- data: 18, 25


def test_18_dry_run_refuses_a_hand_file_that_is_not_mjcf_as_the_run_does(tmp_path, capsys):
    hand = tmp_path / "hand.xml"
    hand.write_text("not an MJCF file\n")
    argv = [SPEC, *TINY, *paths(tmp_path / "d", tmp_path / "r"), f"data.hand={{mjcf = {json.dumps(str(hand))}}}"]
    code, out, err = cli(run_cli.main, [*argv, "--dry-run"], capsys)
    assert code == 2
    line = one_line(err, f"hand.mjcf {hand}: cannot be used as the MESE hand")
    code, out, err = cli(run_cli.main, [*argv, "train.steps=1", "--no-progress"], capsys)
    assert code == 2 and one_line(err) == line  # the real run's line, word for word


def test_25_a_manifest_of_another_dataset_is_named_as_such(no_val_data, tmp_path, capsys):
    import shutil

    other = tmp_path / "other"
    data_cli.main(["generate", "--out", str(other), "--scenes", "4", "--views", "3", "--shard-size", "2",
                   "--workers", "1", "--seed", "1", "--no-progress"])  # fmt: skip
    root = tmp_path / "d"
    shutil.copytree(no_val_data, root)
    shutil.copy(other / "manifest.json", root / "manifest.json")
    capsys.readouterr()
    code, out, err = cli(data_cli.main, ["verify", str(root)], capsys)
    assert code == 2
    one_line(err, f"{root / 'manifest.json'}: belongs to another dataset: seed 1 (config.json: 0); the shards were "
             f"not checked against it: restore this dataset's manifest, or rewrite it from the shards' records: "
             f"gmn-data finalize {root}")  # fmt: skip
    code, out, err = cli(data_cli.main, ["verify", str(no_val_data)], capsys)  # its own manifest: all match
    assert code == 0, err


# ------------------------------------------------------------------------------ plugins: 19, 21, 24, 26, 29, 30

FAMILY_TYPO = '''
from gmn_plugins import hookimpl
from gmn_plugins.core.family import Family
from gmn_plugins.core.modality_spec import ModalityFile

RENDERER = "gmn_plugins.models.renderers:VectorRenderer"


@hookimpl
def register_families(register):
    register(Family("typo-vec", 1, "t31_typo.nets:VecEncodr", RENDERER))  # nets.py defines VecEncoder
    register(Family("heavy-vec", 1, "t31_typo.heavy:VecEncoder", RENDERER))  # imports a missing dependency


@hookimpl
def register_modalities(register):
    register(ModalityFile(name="typo-haptic", sensor="hand.haptic", query="wrist", family="typo-vec"))
    register(ModalityFile(name="heavy-haptic", sensor="hand.haptic", query="wrist", family="heavy-vec"))
'''
BAD_TOML = '''
from pathlib import Path

from gmn_plugins import hookimpl


@hookimpl
def register_modalities(register):
    register(Path(__file__).with_name("pressure.toml"))
'''
PLUGINS_31 = {  # entry point name: {file in the site directory: text}
    "exits": {"t31_exits.py": "import sys\nsys.exit(3)\n"},
    "interrupts": {"t31_interrupts.py": "raise KeyboardInterrupt\n"},
    "hook-exits": {"t31_hook_exits.py": "import sys\nfrom gmn_plugins import hookimpl\n\n\n@hookimpl\n"
                                        "def register_sensors(register):\n    sys.exit(4)\n"},
    "typo": {"t31_typo/__init__.py": FAMILY_TYPO, "t31_typo/nets.py": "class VecEncoder:\n    pass\n",
             "t31_typo/heavy.py": "import gmn_no_such_dependency\n\n\nclass VecEncoder:\n    pass\n"},
    "badtoml": {"t31_badtoml/__init__.py": BAD_TOML,
                "t31_badtoml/pressure.toml": 'name = "haptic-x"\nsensor = "hand.haptic\nquery = "wrist"\n'},
}  # fmt: skip


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = tmp_path_factory.mktemp("site31")
    for entry, files in PLUGINS_31.items():
        for name, text in files.items():
            (site / name).parent.mkdir(parents=True, exist_ok=True)
            (site / name).write_text(text)
        module = next(iter(files)).split("/")[0].removesuffix(".py")
        info = site / f"gmn_{entry.replace('-', '_')}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: gmn-{entry}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(f"[gmn_plugins]\n{entry} = {module}\n")
    return site


@pytest.fixture
def plugged(site, monkeypatch):
    """The fixture plugins installed (every test loads its own registry)."""
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("GMN_LOAD_PLUGINS", raising=False)
    return site


def errors_of(registry, plugin: str) -> list[str]:
    return [e.message for p in registry.plugins if p.name == plugin for e in p.errors]


def test_21_a_plugin_that_exits_or_is_interrupted_is_listed_as_broken(plugged, capsys):
    registry = load_registry()
    assert errors_of(registry, "exits") == ["SystemExit: 3 (t31_exits.py:2)"]
    assert errors_of(registry, "interrupts") == ["KeyboardInterrupt (t31_interrupts.py:1)"]
    assert errors_of(registry, "hook-exits") == ["register_sensors: SystemExit: 4 (t31_hook_exits.py:7)"]
    assert "rgb" in registry.modalities  # the others still load
    code, out, err = cli(plugins_cli.main, ["list"], capsys)
    assert code == 0, err
    assert any(line.startswith("exits ") and line.endswith("broken: SystemExit: 3 (t31_exits.py:2)")
               for line in out.splitlines())  # fmt: skip


def test_19_a_misspelt_name_in_gmn_load_plugins_is_named(plugged, monkeypatch, capsys):
    monkeypatch.setenv("GMN_LOAD_PLUGINS", "badtoml,typpo")
    registry = load_registry()
    assert errors_of(registry, "typpo") == ["GMN_LOAD_PLUGINS names 'typpo', but no installed plugin has that entry "
                                            "point name (did you mean 'typo'?)"]  # fmt: skip
    assert "exits" not in {p.name for p in registry.plugins}  # the restriction itself still holds
    with pytest.raises(SpecError, match="unknown modality 'typo-haptic'.*; plugin typpo .*GMN_LOAD_PLUGINS names"):
        registry.resolve(["typo-haptic"])
    code, out, err = cli(plugins_cli.main, ["list"], capsys)
    assert code == 0 and any(line.startswith("typpo ") and "broken: GMN_LOAD_PLUGINS names 'typpo'" in line
                             for line in out.splitlines())  # fmt: skip


def test_24_an_invalid_modality_file_is_its_own_error_not_a_did_you_mean(plugged):
    registry = load_registry()
    with pytest.raises(SpecError) as caught:
        registry.resolve(["haptic-x"], "spec.toml")
    message = str(caught.value)
    assert message.startswith("spec.toml: modalities[0]: unknown modality 'haptic-x'; plugin badtoml (distribution "
                              "gmn-badtoml 0.1) is installed but broken: ")  # fmt: skip
    assert "pressure.toml: modality 'haptic-x' (gmn-badtoml==0.1): " in message and "invalid TOML" in message
    assert "did you mean" not in message and "\n" not in message


def test_30_a_misspelt_family_class_path_is_one_line_at_list_check_and_dry_run(plugged, capsys, tmp_path):
    code, out, err = cli(plugins_cli.main, ["list"], capsys)
    assert code == 0, err
    typo = [line for line in out.splitlines() if line.startswith("typo ")]
    assert len(typo) == 2 and not any(line.startswith("typo-haptic ") for line in out.splitlines())
    assert any("family 'typo-vec' (gmn-typo==0.1): encoder 't31_typo.nets:VecEncodr': module t31_typo.nets (" in line
               and "defines no 'VecEncodr' (did you mean t31_typo.nets:VecEncoder?)" in line for line in typo)
    assert any("modality 'typo-haptic' (gmn-typo==0.1): family: family 'typo-vec' is broken: encoder" in line
               for line in typo)  # fmt: skip
    code, out, err = cli(plugins_cli.main, ["check", "typo-haptic", "--skip-record"], capsys)
    assert code == 2
    one_line(err, "unknown modality 'typo-haptic'; plugin typo", "defines no 'VecEncodr'")
    argv = [SPEC, *TINY, *paths(tmp_path / "d", tmp_path / "r"), 'modalities=["haptic", "typo-haptic"]', "--dry-run"]
    code, out, err = cli(run_cli.main, argv, capsys)
    assert code == 2
    one_line(err, f"{SPEC}: modalities[1]: unknown modality 'typo-haptic'; plugin typo", "defines no 'VecEncodr'")
    # a class path that names a module whose import fails: registered, then one line where a model is built
    argv[-2] = 'modalities=["haptic", "heavy-haptic"]'
    code, out, err = cli(run_cli.main, argv, capsys)
    assert code == 2
    one_line(err, "family 'heavy-vec': encoder 't31_typo.heavy:VecEncoder' cannot be imported: ModuleNotFoundError: "
             "No module named 'gmn_no_such_dependency' (modalities: heavy-haptic)")  # fmt: skip


def test_26_new_with_a_file_as_its_directory_exits_2(tmp_path, capsys):
    file = tmp_path / "notes.txt"
    file.write_text("mine\n")
    for where in (file, file / "sub"):
        code, out, err = cli(plugins_cli.main, ["new", "gmn-touch", "--dir", str(where)], capsys)
        assert code == 2
        one_line(err, f"gmn-plugins new: --dir {where}: {file} is a file, not a directory")
    assert file.read_text() == "mine\n"


def test_29_a_2d_sensors_physical_range_is_checked_by_shape():
    def record(rig):
        return np.zeros((5, 4), np.float32)

    def sensor(physical_range):
        return Sensor("grid.force", (5, 4), "float32", "N", "wrist", record, "minmax", physical_range=physical_range)

    nested = np.stack([np.zeros((5, 4)), np.arange(1, 21).reshape(5, 4)], axis=-1)  # (5, 4, 2): the sensor's shape
    flat = sensor(nested.reshape(20, 2))
    assert sensor(nested) == flat and flat.physical_range[7] == (0.0, 8.0)
    for bad, got in ((nested.transpose(1, 0, 2), "shape (4, 5, 2)"), (nested[..., None], "shape (5, 4, 2, 1)"),
                     (nested[:, :, :1].repeat(2, -1)[:, :2], "shape (5, 2, 2)"),
                     ([[0, 1]] * 19 + [[0, 1, 2]], "ragged or non-numeric values")):  # fmt: skip
        with pytest.raises(ValueError) as caught:
            sensor(bad)
        assert str(caught.value) == (f"grid.force: physical_range has {got}; shape (5, 4) needs (20, 2) or (5, 4, 2): "
                                     "one (lo, hi) pair per value")  # fmt: skip


# ------------------------------------------------------------------------------------ a model family: 27, 28, 31


class _Vector(Family):
    """The built-in vector family, with one method replaced by each test."""


def vector_like(registry, **methods):
    """The ``haptic`` modality with a family that behaves as ``vector`` but for ``methods``."""
    base = registry.families["vector"]
    cls = type("Custom", (_Vector,), methods)
    family = cls("custom", 1, base.encoder, base.renderer, options=base.options)
    return attrs.evolve(registry.modalities["haptic"], family=family)


@pytest.mark.parametrize("methods, message", [
    ({"nll": lambda self, mean, senses, sigma: (senses - mean).square().sum(-1, keepdim=True)},
     "family nll: expected the elementwise shape (N, *shape) = (5, 132), got (5, 1)"),
    ({"nll": lambda self, mean, senses, sigma: (senses - mean).square().double()},
     "family nll: expected float32, got torch.float64"),
    ({"nll": lambda self, mean, senses, sigma: (senses - mean).square() / 0.0},
     "family nll: not finite"),
    ({"nll": lambda self, mean, senses, sigma: mean.square()},
     "family nll: the same for two different targets (it ignores the senses)"),
    ({"nll": lambda self, mean, senses, sigma: senses.square()},
     "family nll: detached from the renderer's mean"),
    ({"draw": lambda self, sense: np.asarray(sense)[None]},
     "family draw: of a sense: expected a (C, H, W) array with C 1 or 3, got (1, 132)"),
    ({"draw": lambda self, sense: np.asarray(sense)[None, None].repeat(3, 0) * 2},
     "family draw: of a sense: expected finite floats in [0, 1], got float32 in ["),
])  # fmt: skip
def test_27_check_runs_the_familys_nll_and_draw(registry, methods, message):
    with pytest.raises(ConformanceError) as caught:
        check_modality(vector_like(registry, **methods), "tiny")
    assert str(caught.value).startswith(message), str(caught.value)
    done = check_modality(registry.modalities["rgb"], "tiny")  # the built-ins pass, and say what was checked
    assert any(line.startswith("nll: ") for line in done) and any(line.startswith("draw: ") for line in done)


def test_28_a_family_says_how_its_predictions_are_scored(registry, no_val_data):
    from gmn_plugins.data.episodes import SceneSet
    from gmn_plugins.data.format import read_manifest
    from gmn_plugins.evaluation.prediction import prediction_mse

    def sorted_error(self, predicted, truth):  # an unordered set: compare sorted values, not slot i with slot i
        return (np.sort(predicted, axis=-1) - np.sort(truth, axis=-1)) ** 2

    haptic = registry.modalities["haptic"]
    as_set = vector_like(registry, prediction_error=sorted_error)
    from gmn_plugins.models import GMN, PRESETS, ModalityInfo

    stats = read_manifest(no_val_data)["stats"]
    tables = {}
    for name, modality in (("slots", haptic), ("set", as_set)):
        scenes = SceneSet(no_val_data, "train", [registry.modalities["rgb"], modality], stats)
        torch.manual_seed(0)  # the same weights for both: the families differ only in how they score
        model = GMN([ModalityInfo(m.name, m.family, m.shape, m.query_kind) for m in scenes.modalities], PRESETS["tiny"])
        tables[name] = prediction_mse(model, scenes, scenes, context_views=1, num_scenes=2, samples=1)
    assert tables["set"]["rgb"] == tables["slots"]["rgb"]  # the default: element against element, as before
    # sorted values are the closest pairing (rearrangement inequality): the set's measure is never above the slots'
    assert tables["set"]["haptic"]["model"] < tables["slots"]["haptic"]["model"]
    own = tables["set"]["haptic"]["own_mean"]
    assert own != pytest.approx(tables["slots"]["haptic"]["own_mean"])  # the family's own measure was used
    assert own < tables["slots"]["haptic"]["own_mean"]  # a set's sorted values are closer than its slots


def test_31_a_family_says_how_many_context_views_a_generation_figure_gives(registry):
    from types import SimpleNamespace

    from gmn_plugins.evaluation.generation import default_context

    drawn = vector_like(registry, draw=lambda self, sense: np.zeros((1, 4, 4), np.float32))
    every = vector_like(registry, draw=lambda self, sense: np.zeros((1, 4, 4), np.float32),
                        figure_context=lambda self, shape, views: views)  # fmt: skip
    scenes = SimpleNamespace(views=7, modalities=[registry.modalities["rgb"], registry.modalities["haptic"], drawn,
                                                  every])  # fmt: skip
    assert default_context(scenes) == [1, 7, 1, 7]  # drawn: one view, as Fig. 1; unless the family says otherwise


# ------------------------------------------------------------------------------------------- docs and tools: 32


def test_32_info_counts_every_value_of_a_2d_sensor(registry, tmp_path, capsys):
    assert registry.sensors["hand.trajectory"].shape == (25, 22)  # gmn-trajectory: a (T, D) minmax sensor
    root = tmp_path / "d"
    data_cli.main(["generate", "--out", str(root), "--scenes", "2", "--views", "2", "--shard-size", "2",
                   "--workers", "1", "--sensors", "hand.trajectory", "--no-progress"])  # fmt: skip
    capsys.readouterr()
    code, out, err = cli(data_cli.main, ["info", str(root)], capsys)
    assert code == 0, err
    assert "stats hand.trajectory: 550 dims (25x22) over the train split" in out, out
    code, out, err = cli(data_cli.main, ["info", str(root), "--json"], capsys)
    assert json.loads(out)["stats"]["hand.trajectory"]["dims"] == 550


def test_32_new_family_writes_a_family_that_passes_check(tmp_path, monkeypatch, capsys):
    code, out, err = cli(plugins_cli.main, ["new", "gmn-tiles", "--dir", str(tmp_path), "--family"], capsys)
    assert code == 0, err
    root = tmp_path / "gmn-tiles"
    assert {p.name for p in (root / "gmn_tiles").iterdir()} >= {"__init__.py", "nets.py", "tiles-luma.toml"}
    info = root / "gmn_tiles-0.1.0.dist-info"  # installed as pip would: the package and its entry point
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: gmn-tiles\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[gmn_plugins]\ntiles = gmn_tiles\n")
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setenv("GMN_LOAD_PLUGINS", "tiles")
    code, out, err = cli(plugins_cli.main, ["check", "tiles-luma"], capsys)
    assert code == 0, err
    assert "ok  nll: " in out and "ok  draw: a sense and a prediction -> (1, 16, 16)" in out
    assert "ok  sensor camera.tiles-luma: one MESE record, shape (16, 16) float32" in out
    assert out.strip().endswith("tiles-luma: all checks passed")
    registry = load_registry()
    assert registry.modalities["tiles-luma"].family.name == "tiles-grid"
    assert not [p.error for p in registry.plugins if p.error]
