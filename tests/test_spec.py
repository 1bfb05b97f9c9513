"""Specs: strict structuring, overrides, and one-line errors with exit code 2 from the CLI."""

import pytest

from conftest import run_cli
from gmn_plugins.spec import SpecError, load_spec


def test_quickstart_spec_loads(quickstart_spec):
    spec = load_spec(quickstart_spec)
    assert spec.modalities == ["rgb", "haptic"]
    assert spec.model.inference == "apoe" and spec.model.preset == "small"


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
