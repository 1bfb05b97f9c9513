"""Model families and query kinds as plugins: a family that gmn_plugins does not know (tests/fixtures/gmn_grid_family:
2-d senses (H, W), a Laplace likelihood, its own drawing), a query kind it does not know (``orbit``: one azimuth,
its own encoding, sampler and figure queries) and their sensors train, are evaluated and drawn, installed as a
real distribution."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO, run_cli

FIXTURES = REPO / "tests" / "fixtures"


@pytest.fixture
def site(tmp_path):
    """A site directory holding the fixture package and a dist-info with its ``gmn_plugins`` entry point."""
    site = tmp_path / "site"
    shutil.copytree(FIXTURES / "gmn_grid_family", site / "gmn_grid_family")
    info = site / "gmn_grid_family-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: gmn-grid-family\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[gmn_plugins]\ngrid = gmn_grid_family\n")
    return site


def test_the_family_is_found_and_torch_stays_unimported(site):
    code = ("import sys; from gmn_plugins.core.plugins import load_registry; r = load_registry(); "
            "m = r.modalities['luma']; o = r.modalities['orbit_luma']; k = r.query_kinds['orbit']; "
            "print(m.family.name, m.shape, m.distribution, o.family.name, k.dim, k.encoded_dim, o.query_kind.name, "
            "'torch' in sys.modules)")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": str(site), "PATH": ""},
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["grid", "(16,", "16)", "gmn-grid-family", "grid", "1", "2", "orbit", "False"]


def test_a_plugin_family_trains_evaluates_and_draws(site, tmp_path):
    env = {"PYTHONPATH": str(site)}
    data, out = tmp_path / "data", tmp_path / "run"
    overrides = ['modalities=["luma", "orbit_luma", "haptic"]', f"data.dir={json.dumps(str(data))}", "data.train_scenes=6", "data.test_scenes=0",
                 "data.val_scenes=4", "data.views=7", "data.shard_size=4", "data.workers=1", "train.batch_scenes=3",
                 "train.max_targets=2", "train.steps=4", "train.eval_every=2", "train.eval_scenes=4",
                 "train.log_every=1", "train.checkpoint_every=2", 'model.preset="tiny"', f"train.out={json.dumps(str(out))}"]  # fmt: skip
    done = run_cli("run", str(REPO / "specs" / "quickstart.toml"), *overrides, "--no-progress", env=env)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in (out / "val.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4] and all(np.isfinite(r["val_missing"]) for r in rows)
    from gmn_plugins.data.format import load_split

    scenes = load_split(data, "train")  # the plugin's kind is stored like a built-in: query.orbit (scenes, views, 1)
    assert scenes["query.orbit"].shape == (6, 7, 1) and scenes["orbit.luma"].shape == (6, 7, 16, 16)
    assert 0 <= scenes["query.orbit"].min() and scenes["query.orbit"].max() < 2 * np.pi
    # the sample grid draws the family's senses (truth and model rows of luma), through Family.draw
    samples = Image.open(out / "samples.png")
    assert samples.height > 4 * 32

    done = run_cli("evaluate", "density", str(out), "--scenes", "2", "--samples", "2", "--counts", "0,1",
                   "--targets", "luma,orbit_luma", "--no-progress", env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    table = json.loads((out / "eval" / "density.json").read_text())
    for target in ("luma", "orbit_luma"):
        grids = [r["grid"] for r in table["records"] if r["target"] == target]
        assert grids and all(np.isfinite(np.asarray(g, float)).all() for g in grids)

    done = run_cli("evaluate", "generate", str(out), "--samples", "2", "--no-progress", env=env)
    assert done.returncode == 0, done.stderr
    result = json.loads((out / "eval" / "generation-val0.json").read_text())
    assert set(result["mse"]) == {"luma", "orbit_luma"}  # each at its own kind's figure queries (4x4 / 8 azimuths)
    assert Image.open(result["png"]).width > 16 * 32


def test_the_family_likelihood_is_used():
    """The engine scores a modality by its family's ``nll``: the fixture's Laplace, not the default Gaussian."""
    sys.path.insert(0, str(FIXTURES))
    try:
        from gmn_grid_family import GRID
    finally:
        sys.path.remove(str(FIXTURES))
    from gmn_plugins.models.encoders import encode_query
    from gmn_plugins.models.gmn import GMN, ModalityInfo
    from gmn_plugins.models.presets import Preset
    from gmn_plugins.core.points import Points

    torch.manual_seed(0)
    tiny = Preset(r_channels=8, hidden=8, z_channels=2, steps=2, kernel=3, decoder_width=4, vector_hidden=16)
    model = GMN([ModalityInfo("luma", GRID, (8, 8))], tiny, sigma=0.5)
    assert model.grid == (2, 2)
    senses = torch.rand(3, 8, 8)
    points = Points(senses, torch.randn(3, 5), torch.tensor([0, 1, 1]))
    empty = Points(senses[:0], torch.zeros(0, 5), torch.zeros(0, dtype=torch.int64))
    torch.manual_seed(1)
    out = model([empty], [points], 2)
    torch.manual_seed(1)
    latents = model.inference.posterior(*model._represent([empty], [points], 2))
    mean = model.renderers[0](latents.z, encode_query(points.queries), points.scene)
    laplace = ((senses - mean).abs() / 0.5 + np.log(2 * 0.5)).sum()
    assert torch.allclose(out["nll"], laplace, rtol=1e-5)
