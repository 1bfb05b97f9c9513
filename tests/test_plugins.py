"""Entry-point plugins for real: distributions in a temporary site directory, discovered through importlib.metadata."""

import json
from pathlib import Path

import pytest

from conftest import run_cli

FIXTURES = Path(__file__).parent / "fixtures"


def install(site: Path, dist: str, entry_name: str, module: str, source: str) -> None:
    """Make ``dist`` an installed distribution in ``site``: its module plus a dist-info with a gmn_plugins entry point."""
    (site / f"{module}.py").write_text(source)
    info = site / f"{dist.replace('-', '_')}-0.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text(f"[gmn_plugins]\n{entry_name} = {module}\n")


@pytest.fixture
def site(tmp_path):
    install(tmp_path, "gmn-broken-import", "broken-import", "gmn_broken_import", "raise ImportError('no such backend')\n")
    install(tmp_path, "gmn-bad-family", "bad-family", "gmn_bad_family", (FIXTURES / "bad_family.py").read_text())
    install(tmp_path, "gmn-duplicate", "duplicate", "gmn_duplicate", (
        "from gmn_plugins import hookimpl\nfrom gmn_plugins.core.modality_spec import ModalityFile\n"
        "@hookimpl\ndef register_modalities(register):\n"
        "    register(ModalityFile(name='rgb', sensor='camera.rgb', query='camera', family='image'))\n"))  # fmt: skip
    return tmp_path


def listing(site, **env):
    result = run_cli("plugins", "list", "--json", env={"PYTHONPATH": str(site), **env})
    assert result.returncode == 0, result.stderr
    return {row["name"]: row for row in json.loads(result.stdout)}


def test_a_broken_plugin_is_listed_as_broken_and_the_rest_works(site):
    rows = listing(site)
    assert rows["broken-import"]["status"] == "broken: ImportError: no such backend (gmn_broken_import.py:1)"
    assert rows["broken-import"]["distribution"] == "gmn-broken-import==0.3"
    assert rows["rgb"]["status"] == "ok" and rows["rgb"]["distribution"].startswith("gmn-plugins==")
    assert rows["bad-cropped"]["source"] == "entry point" and rows["bad-cropped"]["distribution"] == "gmn-bad-family==0.3"
    # the duplicate name is refused, naming both distributions; the built-in rgb stays
    assert rows["duplicate"]["status"] == (
        "broken: gmn_duplicate.py:5: modality 'rgb' (gmn-duplicate==0.3): modality 'rgb' is registered by both "
        "gmn-plugins (gmn_modalities) and gmn-duplicate (duplicate)"
    )


def test_allow_list_loads_only_the_named_entry_points(site):
    assert "bad-cropped" not in listing(site, GMN_LOAD_PLUGINS="")
    assert "broken-import" not in listing(site, GMN_LOAD_PLUGINS="")
    rows = listing(site, GMN_LOAD_PLUGINS="bad-family")
    assert "bad-cropped" in rows and "broken-import" not in rows


def test_check_passes_for_builtins_and_names_the_failing_point(site):
    ok = run_cli("plugins", "check", "rgb-ul")
    assert ok.returncode == 0 and "all checks passed" in ok.stdout, ok.stderr
    env = {"PYTHONPATH": str(site)}
    cropped = run_cli("plugins", "check", "bad-cropped", env=env)
    assert cropped.returncode == 1
    assert "renderer output: expected shape (5, 3, 64, 64), got (5, 3, 64, 63)" in cropped.stderr
    detached = run_cli("plugins", "check", "bad-detached", env=env)
    assert detached.returncode == 1 and "encoder gradient: no gradient reaches conv1.weight" in detached.stderr


def test_family_expansion_and_exact_slices():
    from gmn_plugins.core.plugins import load_registry

    registry = load_registry()
    names = set(registry.modalities)
    assert {"rgb-ul", "rgb-ur", "rgb-ll", "rgb-lr"} <= names
    assert len([n for n in names if n.startswith("patch-")]) == 16
    assert len([n for n in names if "-patch-" in n]) == 48
    assert registry.modalities["red-ul"].shape == (1, 24, 24) and registry.modalities["blue-right"].shape == (1, 48, 24)
    assert registry.modalities["rgb-lr"].spec.slice.rows == [32, 64]
    sizes = {n: registry.modalities[n].shape[0] for n in ("haptics1", "haptics2", "hand-thumb", "hand-touch")}
    assert sizes == {"haptics1": 61, "haptics2": 71, "hand-thumb": 26, "hand-touch": 19}
    # the authors' exact haptics1 order: thumb, index, middle (gmn_model_reference.md §1.1)
    assert registry.modalities["haptics1"].spec.slice.vector_indices()[:8] == [3, 4, 5, 6, 25, 26, 27, 28]
    groups = [set(registry.modalities[f"hand-{p}"].spec.slice.vector_indices())
              for p in ("wrist", "thumb", "index", "middle", "ring", "pinky", "touch")]  # fmt: skip
    assert set().union(*groups) == set(range(132)) and sum(map(len, groups)) == 132


def test_a_bad_family_file_is_one_line(tmp_path):
    from gmn_plugins.core.families import IMAGE
    from gmn_plugins.core.modality_spec import expand, read_modality_file
    from gmn_plugins.core.spec import SpecError

    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x-{i}"\nsensor = "camera.rgb"\nquery = "camera"\nfamily = "image"\n'
                   'axes = [{ key = "i", split = "rows", parts = 5 }]\n')  # fmt: skip
    with pytest.raises(SpecError, match=r"bad.toml: axes.i: cannot split rows of size 64 into 5 parts"):
        expand(read_modality_file(bad), (3, 64, 64), str(bad), IMAGE)


def test_a_split_follows_the_family_split_axes(tmp_path):
    """Which axes a [[axes]] split may cut is the family's (Family.split_axes), never read off the sensor's rank."""
    from gmn_plugins.core.families import VECTOR
    from gmn_plugins.core.family import Family
    from gmn_plugins.core.modality_spec import expand, read_modality_file
    from gmn_plugins.core.spec import SpecError

    class Planes(Family):  # a plugin's (H, W) family that splits rows and cols
        def slice(self, cut, sense):
            rows, cols = cut.rows or [0, sense.shape[-2]], cut.cols or [0, sense.shape[-1]]
            return sense[..., rows[0]:rows[1], cols[0]:cols[1]]

        def split_axes(self):
            return ("rows", "cols")

    planes = Planes("planes", 2, "m:E", "m:R")
    file = tmp_path / "halves.toml"
    file.write_text('name = "half-{i}"\nsensor = "s"\nquery = "camera"\nfamily = "planes"\n'
                    'axes = [{ key = "i", split = "cols", parts = 2, names = ["l", "r"] }]\n')  # fmt: skip
    specs = expand(read_modality_file(file), (8, 6), str(file), planes)
    assert [(m.name, tuple(m.shape), m.slice.cols) for m in specs] == [("half-l", (8, 3), [0, 3]), ("half-r", (8, 3), [3, 6])]
    with pytest.raises(SpecError, match=r"halves.toml: axes.i: cannot split cols of shape \(132,\): family 'vector' has "
                                        r"no split axes \(use values\)$"):  # fmt: skip
        expand(read_modality_file(file), (132,), str(file), VECTOR)
