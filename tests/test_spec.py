"""Specs: strict structuring, overrides, and one-line errors with exit code 2 from the CLI."""

import json

import pytest
import torch

from conftest import REPO, run_cli
from gmn_plugins.core import spec as spec_module
from gmn_plugins.cli import run
from gmn_plugins.core.spec import SpecError, load_spec


def test_quickstart_spec_loads(quickstart_spec):
    spec = load_spec(quickstart_spec)
    assert spec.modalities == ["rgb", "haptic"]
    assert spec.model.inference == "apoe" and spec.model.preset == "tiny" and spec.train.clip_mode == "norm"


def test_overrides_are_toml_values_and_bare_words(quickstart_spec):
    spec = load_spec(quickstart_spec, ["model.inference=baseline", "train.lr=0.01", "train.steps=7"])
    assert spec.model.inference == "baseline" and spec.train.lr == 0.01 and spec.train.steps == 7


@pytest.mark.parametrize(
    "override, expected",
    [
        ('train.steps="4"', "train.steps: expected int, got str"),
        ("train.clip_mode=false", "train.clip_mode"),
        ("model.inference=poex", "model.inference: 'poex' is not one of"),
        ("train.batch_scene=3", "train.batch_scene: unknown field (did you mean 'batch_scenes'?)"),
        ("train.steps=0", "train.steps: must be >= 1"),
    ],
)
def test_bad_values_are_refused_with_the_field(quickstart_spec, override, expected):
    with pytest.raises(SpecError) as err:
        load_spec(quickstart_spec, [override])
    assert expected in str(err.value)
    assert str(err.value).startswith(str(quickstart_spec))


def test_model_decoder_width_widens_the_image_decoder_only(quickstart_spec):
    """model.decoder_width (issue 28) replaces the preset's image decoder width W (layers W, 2W, C); unset, the
    preset's; nothing else in the model changes."""
    from gmn_plugins.core.plugins import load_registry
    from gmn_plugins.training.experiment import build_model

    def decoder_and_rest(*overrides):
        spec = load_spec(quickstart_spec, ['model.preset="tiny"', *overrides])
        model = build_model(spec, load_registry().resolve(spec.modalities, "quickstart.toml"), device="meta")
        i = spec.modalities.index("rgb")
        widths = [m.out_channels for m in model.renderers[i].decoder if hasattr(m, "out_channels")]
        rest = {k: v.shape for k, v in model.state_dict().items() if not k.startswith(f"renderers.{i}.decoder.")}
        return widths, rest

    (tiny, rest), (wide, wide_rest) = decoder_and_rest(), decoder_and_rest("model.decoder_width=32")
    assert tiny == [8, 16, 3] and wide == [32, 64, 3] and rest == wide_rest


def test_typo_in_a_field_name_exits_2_with_one_line(tmp_path, quickstart_spec):
    bad = tmp_path / "typo.toml"
    bad.write_text(quickstart_spec.read_text().replace("max_targets", "max_tragets"))
    result = run_cli("run", str(bad))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [f"{bad}: train.max_tragets: unknown field (did you mean 'max_targets'?)"]
    assert "Traceback" not in result.stderr + result.stdout


def test_unknown_modality_lists_installed_and_closest(quickstart_spec):
    result = run_cli("run", str(quickstart_spec), 'modalities=["rgb", "haptc"]', "--dry-run")
    assert result.returncode == 2
    assert "modalities[1]: unknown modality 'haptc' (did you mean 'haptic'?)" in result.stderr
    installed = result.stderr.split("installed: ")[1].strip().split(", ")
    assert {"rgb", "haptic", "rgb-ul", "haptics1"} <= set(installed) and installed == sorted(installed)


def test_malformed_toml_names_the_file(tmp_path):
    bad = tmp_path / "broken.toml"
    bad.write_text("name = \n")
    result = run_cli("run", str(bad))
    assert result.returncode == 2 and result.stderr.startswith(f"{bad}: invalid TOML")


# ----------------------------------------------------------------------------------------------------------------
# issue 10: everything below was accepted by `--dry-run` (or ended in a traceback) and failed only later

BLOCKS_WHY = "(the class enumeration grows ~4.7x per block; paper: 4-6)"


@pytest.mark.parametrize(
    "override, expected",
    [
        # 1. seed in [0, 2**32)
        ("seed=-1", "seed: must be in [0, 2**32), got -1"),
        ("seed=18446744073709551616", "seed: must be in [0, 2**32), got 18446744073709551616"),
        ("seed=4294967296", "seed: must be in [0, 2**32), got 4294967296"),
        # 2. sizes have upper bounds
        ("data.blocks=30", f"data.blocks: must be <= 8 {BLOCKS_WHY}, got 30"),
        ("data.blocks=1000000000000", f"data.blocks: must be <= 8 {BLOCKS_WHY}, got 1000000000000"),
        ("data.views=1000000000000", "data.views: must be <= 1024, got 1000000000000"),
        ("data.shard_size=1000000", "data.shard_size: must be <= 10000, got 1000000"),
        ("data.train_scenes=1000000000000", "data.train_scenes: must be <= 10000000, got 1000000000000"),
        ("data.val_scenes=100000000", "data.val_scenes: must be <= 10000000, got 100000000"),
        ("data.workers=100000", "data.workers: must be <= 1024, got 100000"),
        ("train.batch_scenes=100000", "train.batch_scenes: must be <= 1024, got 100000"),
        ("train.max_targets=100000", "train.max_targets: must be <= 1024, got 100000"),
        ("train.eval_scenes=100000000", "train.eval_scenes: must be <= 10000000, got 100000000"),
        ("train.threads=-1", "train.threads: must be >= 0, got -1"),
        ("train.kl_balance=1.5", "train.kl_balance: must be <= 1.0, got 1.5"),
        ("train.prior_nll_weight=-1", "train.prior_nll_weight: must be >= 0.0, got -1.0"),
        ("train.prior_nll_start=-1", "train.prior_nll_start: must be >= 0, got -1"),
        ("model.decoder_width=0", "model.decoder_width: must be >= 1, got 0"),
        ("model.decoder_width=4096", "model.decoder_width: must be <= 1024, got 4096"),
        # 3. lr in (0, 1]; every float finite
        ("train.lr=1e12", "train.lr: must be > 0 and <= 1.0, got 1000000000000.0"),
        ("train.lr=0", "train.lr: must be > 0 and <= 1.0, got 0.0"),
        ("train.lr=nan", "train.lr: expected a finite number, got nan"),
        ("model.sigma=inf", "model.sigma: expected a finite number, got inf"),
        ("train.clip=inf", "train.clip: expected a finite number, got inf"),
        ("train.beta=-inf", "train.beta: expected a finite number, got -inf"),
        ("train.beta_start=nan", "train.beta_start: expected a finite number, got nan"),
        (f"train.beta={10**400}", f"train.beta: expected a finite number, got {10**400!r:.77}..."),
        # 5. a list field given a non-list; a table given a non-table
        ("modalities=rgb", "modalities: expected a list of modality names, got str 'rgb'"),
        ('modalities={rgb = 1}', "modalities: expected a list of modality names, got dict {'rgb': 1}"),
        ("train.missing_sizes=3", "train.missing_sizes: expected a list of int, got int 3"),
        ('train.missing_sizes="1,2"', "train.missing_sizes: expected a list of int, got str '1,2'"),
        ("data=3", "data: expected a table, got int 3"),
        ("model=[1]", "model: expected a table, got list [1]"),
        ("model.inference=[1]", "model.inference: [1] is not one of ['apoe', 'poe', 'baseline']"),
        # 7. bools are not ints
        ("train.steps=true", "train.steps: expected int, got bool True"),
        ("data.blocks=false", "data.blocks: expected int, got bool False"),
        ("train.missing_sizes=[true, 2]", "train.missing_sizes[0]: expected int, got bool True"),
    ],
)
def test_absurd_values_are_refused_at_load_time_with_one_line(quickstart_spec, override, expected):
    with pytest.raises(SpecError) as err:
        load_spec(quickstart_spec, [override])
    assert str(err.value) == f"{quickstart_spec}: {expected}"


@pytest.mark.parametrize(
    "overrides",
    [
        ["data.train_scenes=1000000", "data.val_scenes=20000", "data.views=15", "train.batch_scenes=12",
         "train.max_targets=15", "data.shard_size=256"],  # the paper's sizes
        ["data.blocks=4"], ["data.blocks=6"], ["data.blocks=8"], ["seed=4294967295"], ["train.lr=1.0"],
        ["train.lr=1"], ["train.missing_sizes=[1, 2]"],
    ],
)
def test_paper_sized_values_stay_accepted(quickstart_spec, overrides):
    load_spec(quickstart_spec, overrides)


def test_every_shipped_spec_loads():
    for path in sorted((REPO / "specs").glob("*.toml")):
        load_spec(path)


def test_a_misspelt_required_field_is_one_line(tmp_path):
    bad = tmp_path / "spec.toml"
    bad.write_text('nam = "x"\nmodalities = ["rgb"]\n')
    with pytest.raises(SpecError) as err:
        load_spec(bad)
    assert str(err.value) == f"{bad}: nam: unknown field (did you mean 'name'?)"


@pytest.mark.parametrize("key, shown", [("a|b", '"a|b"'), ("a\nb", '"a\\nb"'), ("é", '"\\u00e9"')])
def test_an_odd_unknown_key_is_quoted_on_its_one_line(tmp_path, key, shown):
    bad = tmp_path / "spec.toml"
    bad.write_text(f'name = "x"\nmodalities = ["rgb"]\n[train]\n{json.dumps(key)} = 1\n')
    with pytest.raises(SpecError) as err:
        load_spec(bad)
    assert str(err.value) == f"{bad}: train.{shown}: unknown field"


def _dry_run(capsys, *argv: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_:
        run.main([*argv, "--dry-run"])
    return exit_.value.code, capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.device_count() > 7, reason="this machine has a cuda:7")
def test_dry_run_checks_the_device(capsys, quickstart_spec):  # 4.
    code, err = _dry_run(capsys, str(quickstart_spec), "train.device=cuda:7")
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith(f"{quickstart_spec}: train.device: 'cuda:7' requested, but ")


def test_dry_run_prints_the_device(capsys, quickstart_spec):
    run.main([str(quickstart_spec), "train.device=cpu", "--dry-run"])
    assert "device: cpu" in capsys.readouterr().out.splitlines()[0]


def _unreadable(path, *_):  # root reads any file, so a denied open is simulated
    raise PermissionError(13, "Permission denied", str(path))


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda p: p.mkdir(), "is a directory"),
        (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe garbage"), "not a TOML file (binary)"),
        (lambda p: p.write_bytes(b'name = "x"\x00\n'), "not a TOML file (binary)"),
        (lambda p: p.write_text(f"name = {'9' * 5000}\n"), "invalid TOML: Exceeds the limit (4300 digits)"),
        (lambda p: p.write_text("name = \n"), "invalid TOML: Invalid value (at line 1, column 8)"),
    ],
)
def test_an_unreadable_spec_file_is_one_line(capsys, tmp_path, make, expected):  # 6.
    path = tmp_path / "spec.toml"
    make(path)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert str(err.value).startswith(f"{path}: {expected}") and "\n" not in str(err.value)
    code, err = _dry_run(capsys, str(path))
    assert code == 2 and err.startswith(f"{path}: {expected}") and len(err.splitlines()) == 1


def test_a_permission_denied_spec_is_one_line(monkeypatch, tmp_path):
    path = tmp_path / "spec.toml"
    path.write_text('name = "x"\n')
    monkeypatch.setattr(spec_module, "open", _unreadable, raising=False)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert str(err.value) == f"{path}: permission denied"
