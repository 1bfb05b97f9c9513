"""The paper's experiments on a real (tiny) trained run: episode assembly across scenes, the Eq. 6 orientation, the
density grid and the classification score matrix, and ``gmn-eval`` end to end (files, one-line errors)."""

import json

import numpy as np
import pytest
import torch

from conftest import run_cli
from gmn_plugins.training.checkpoint import payload_sha256
from gmn_plugins.evaluation.classification import accuracy, classify, score_matrix
from gmn_plugins.evaluation.density import TARGET_VIEWS, density_grid, gray
from gmn_plugins.evaluation.generation import true_views
from gmn_plugins.mese.queries import grid_queries
from gmn_plugins.evaluation.runs import load_run
from gmn_plugins.core.plugins import load_registry


@pytest.fixture(scope="module")
def run(tiny_run_dir):
    return load_run(tiny_run_dir, load_registry())


def test_assemble_takes_context_and_targets_from_the_named_scenes(run):
    scenes = run.scenes("train")
    rgb, haptic = scenes.modalities
    plan = [[((3, np.array([0, 1])), (5, np.array([6, 7]))), ((2, np.array([4])), (5, np.array([], int)))],
            [((1, np.array([], int)), (0, np.array([2]))), ((1, np.array([0])), (0, np.array([3, 4])))]]  # fmt: skip
    context, target = scenes.assemble(plan)
    np.testing.assert_array_equal(context[0].senses.numpy(), scenes.senses(rgb, np.array([3, 3]), np.array([0, 1])))
    np.testing.assert_array_equal(target[0].senses.numpy(), scenes.senses(rgb, np.array([5, 5, 0]), np.array([6, 7, 2])))
    np.testing.assert_array_equal(context[1].queries.numpy(), scenes.queries["wrist"][[2, 1], [4, 0]])
    assert context[0].scene.tolist() == [0, 0] and target[0].scene.tolist() == [0, 0, 1]
    assert context[1].scene.tolist() == [0, 1] and target[1].scene.tolist() == [1, 1]


def test_eq6_orientation_differs_from_the_authors_transpose():
    scores = np.array([[5.0, 9.0, 9.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])  # L[k, i]: context k, observations i
    assert accuracy(scores, "paper") == pytest.approx(1 / 3)  # column argmax: only observation set 0 -> context 0
    assert accuracy(scores, "code") == pytest.approx(2 / 3)  # row argmax: contexts 1 and 2 find their scene
    assert accuracy(scores, "paper", top=2) == 1.0
    with pytest.raises(ValueError, match="orientation"):
        accuracy(scores, "sideways")


def test_own_context_scores_higher_than_other_scenes_context(run):
    """After 400 steps of the tiny preset at sigma 0.1 the model uses its context: in L[k, i] the matching pairs
    (k = i) score higher on average than the mismatched ones. Measured margins: 0.047, 0.010 and 0.007 nats/dim for
    train.seed 0, 1, 2 (this fixture with ``train.seed=N`` added, scored as below); 250 steps gave 0.014,
    -0.0005 and 0.0025, and the small preset after 160 steps at sigma 0.3 only 0.001-0.0017, too close to noise.
    Catches any mix-up of context scene and observation scene."""
    scenes = run.scenes("train")
    torch.manual_seed(0)
    scores = score_matrix(run.model, scenes, np.arange(8), [0, 1], c=3, samples=4)
    off = scores[~np.eye(8, dtype=bool)]
    assert np.diag(scores).mean() > off.mean(), scores
    records = classify(run.model, scenes, k=4, groups=2, contexts=[0, 3], samples=2, orientation="both")
    assert {(r["mask"], r["c"], r["orientation"]) for r in records} == {
        (m, c, o) for m in ("rgb", "haptic", "rgb+haptic") for c in (0, 3) for o in ("paper", "code")}
    assert all(0.0 <= r["top1"] <= r["top5"] == 1.0 for r in records)  # top-5 of 4 candidates always hits


def test_density_grid_is_deterministic_and_gray_scores_one_channel(run):
    scenes = run.scenes("val")
    a = density_grid(run.model, scenes, target=0, source=1, counts=(0, 2), num_scenes=3, samples=2, seed=1)
    b = density_grid(run.model, scenes, target=0, source=1, counts=(0, 2), num_scenes=3, samples=2, seed=1)
    assert a.shape == (2, 2) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    g = density_grid(run.model, scenes, target=0, source=1, counts=(0, 2), num_scenes=3, samples=2, seed=1,
                     gray_target=True)  # fmt: skip
    assert not np.allclose(a, g)
    assert gray(torch.tensor([[[[0.2]], [[0.7]], [[0.1]]]])).flatten().tolist() == pytest.approx([0.7])
    with pytest.raises(ValueError, match="context counts must be <="):
        density_grid(run.model, scenes, 0, 1, counts=(0, scenes.views - TARGET_VIEWS + 1))
    with pytest.raises(ValueError, match="not a 3-channel image"):
        density_grid(run.model, scenes, 1, 0, counts=(0, 1), gray_target=True)


def test_true_views_rerender_the_dataset_views_from_the_stored_object(run):
    scenes = run.scenes("val")
    rgb = scenes.modalities[0]
    queries = scenes.queries["camera"][1, :3]
    again = true_views(scenes, 1, 0, queries)
    stored = scenes.senses(rgb, np.array([1, 1, 1]), np.arange(3))
    assert again.shape == stored.shape == (3, 3, 64, 64) and stored.max() > 0.2
    assert np.abs(again - stored).mean() < 0.5 / 255  # float32 queries vs the generator's float64: a few pixels
    assert grid_queries().shape == (16, 5)
    np.testing.assert_allclose(np.linalg.norm(grid_queries()[:, :3], axis=1), 1.0, atol=1e-6)


def test_gmn_eval_writes_tables_and_plots_and_refuses_bad_input_in_one_line(run, tmp_path):
    result = run_cli("evaluate", "density", str(run.dir), "--scenes", "2", "--samples", "2", "--counts", "0,1",
                     "--gray", "--no-progress")  # fmt: skip
    assert result.returncode == 0, result.stderr
    table = json.loads((run.dir / "eval" / "density.json").read_text())
    pairs = [(r["source"], r["target"], r["gray"]) for r in table["records"]]
    assert pairs == [("haptic", "rgb", False), ("haptic", "rgb", True), ("rgb", "haptic", False)]
    assert all(np.array(r["grid"]).shape == (2, 2) for r in table["records"])
    assert (run.dir / "eval" / "density.png").stat().st_size > 5000

    result = run_cli("evaluate", "generate", str(run.dir), "--scene", "1", "--samples", "2", "--context",
                     "rgb=1,haptic=3", "--no-progress")  # fmt: skip
    assert result.returncode == 0, result.stderr
    generated = json.loads((run.dir / "eval" / "generation-val1.json").read_text())
    assert generated["context"] == {"rgb": 1, "haptic": 3} and len(generated["mse"]["rgb"]["samples"]) == 2
    assert (run.dir / "eval" / "generation-val1.png").stat().st_size > 5000

    result = run_cli("evaluate", "missing", str(run.dir), "--scenes", "4", "--sizes", "1,1", "--no-progress")
    assert result.returncode == 0, result.stderr
    missing = json.loads((run.dir / "eval" / "missing.json").read_text())
    assert missing["sizes"] == [1, 1] and missing["scenes"] == 4 and missing["mode"] == "paper"
    assert set(missing["val_full_by_size"]) <= {"1", "2"} and np.isfinite(missing["val_missing"])
    assert (run.dir / "eval" / "missing.png").stat().st_size > 5000

    result = run_cli("evaluate", "classify", str(run.dir), "--blocks", "4", "--objects", "4", "--k", "2",
                     "--contexts", "0,2", "--samples", "2", "--no-progress")  # fmt: skip
    assert result.returncode == 0, result.stderr
    results = json.loads((run.dir / "eval" / "classification.json").read_text())["results"]["4 blocks"]
    assert len(results) == 3 * 2 and all(r["orientation"] == "paper" and r["groups"] == 2 for r in results)
    assert (run.dir / "eval" / "classification.png").stat().st_size > 5000
    heldout = json.loads((run.dir.parent / "data-heldout4x4" / "manifest.json").read_text())
    assert heldout["blocks"] == 4 and list(heldout["splits"]) == ["test"]

    # a run whose dataset is not there, with a checkpoint from before checkpoints carried their data's statistics
    # (tests/test_portable_checkpoint.py: today's are evaluated anywhere): one line, and nothing is generated
    moved = tmp_path / "moved"
    moved.mkdir()
    ckpt = torch.load(run.dir / "checkpoint.pt", weights_only=True)
    ckpt["spec"]["data"]["dir"] = str(tmp_path / "elsewhere")
    ckpt["data"] = {key: ckpt["data"][key] for key in ("manifest_sha256", "config")}
    ckpt["sha256"] = payload_sha256(ckpt)  # a checkpoint written so, not a corrupted one
    torch.save(ckpt, moved / "checkpoint.pt")
    for args, fragment in (
        (["density", str(moved)], "elsewhere: no finished dataset there"),
        (["density", str(tmp_path / "nothing")], "checkpoint.pt: no such file"),
        (["density", str(run.dir), "--targets", "depthx", "--counts", "0,1"], "--targets: depthx not in the run's modalities"),
        (["density", str(run.dir), "--counts", "0,7"], "--counts: at most 3 context views"),
        (["classify", str(run.dir), "--k", "9", "--objects", "4", "--contexts", "0"], "--k: need 2 <= k <= --objects (4), got 9"),
        (["generate", str(run.dir), "--context", "rgb=9"], "--context: expected NAME=K items"),
        (["generate", str(run.dir), "--scene", "4"], "--scene: val split has scenes 0..3, got 4"),
        (["missing", str(run.dir), "--sizes", "1,3"], "--sizes: expected A,B with 1 <= A <= B <= 2, got [1, 3]"),
    ):
        bad = run_cli("evaluate", *args, "--no-progress")
        assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
        assert fragment in bad.stderr, bad.stderr
    assert not (tmp_path / "elsewhere").exists() and not (moved / "data").exists()


def test_reassemble_puts_quadrants_and_channels_back_where_they_were_cut():
    from gmn_plugins.evaluation.generation import reassemble

    registry = load_registry()
    quads = registry.resolve(["rgb-ul", "rgb-lr", "haptic"])
    whole = np.random.default_rng(0).random((2, 16, 3, 64, 64)).astype(np.float32)
    grids = {m.name: m.slice(whole) for m in quads[:2]}
    out = reassemble(grids, quads)["camera.rgb (reassembled)"]
    np.testing.assert_array_equal(out[..., :32, :32], whole[..., :32, :32])  # upper left
    np.testing.assert_array_equal(out[..., 32:, 32:], whole[..., 32:, 32:])  # lower right
    assert not out[..., :32, 32:].any() and not out[..., 32:, :32].any()  # the quadrants nobody generated
    channels = registry.resolve(["red-left", "green-left", "blue-left"])
    parts = {m.name: m.slice(whole[..., :48, :48]) for m in channels}  # camera.rgb48 senses
    left = reassemble(parts, channels)["camera.rgb48 (reassembled)"]
    np.testing.assert_array_equal(left[..., :, :24], whole[..., :48, :24])
    assert reassemble({"rgb-ul": grids["rgb-ul"]}, quads) == {}  # one part alone is shown as it is


def test_prediction_mse_against_the_scene_mean_and_the_dataset_mean(run):
    from gmn_plugins.evaluation.prediction import prediction_mse

    table = prediction_mse(run.model, run.scenes("val"), run.scenes("train"), context_views=3, num_scenes=4,
                           samples=2)  # fmt: skip
    assert set(table) == {"rgb", "haptic"}
    for row in table.values():
        assert set(row) == {"model", "own_mean", "dataset_mean", "gain", "posterior"}
        assert all(np.isfinite(v) and v >= 0 for k, v in row.items() if k != "gain")
        assert row["gain"] == pytest.approx(1 - row["model"] / row["own_mean"])
    # the posterior saw the targets: its renders are closer to them than the prior's (trained, the fixture's model
    # encodes its targets in z)
    assert table["rgb"]["posterior"] < table["rgb"]["model"]
    # the scene's own views know its colours and place: a better guess of an unseen view than the dataset's mean
    assert table["rgb"]["own_mean"] < table["rgb"]["dataset_mean"]
    again = prediction_mse(run.model, run.scenes("val"), run.scenes("train"), context_views=3, num_scenes=4, samples=2)
    assert again == table  # seeded
    # at temperature 0 every sample is the prior's mean render: 1 sample predicts as 2, whatever the seed
    cold = [prediction_mse(run.model, run.scenes("val"), run.scenes("train"), context_views=3, num_scenes=4,
                           samples=n, seed=seed, temperature=0.0)["rgb"]["model"] for n, seed in ((1, 0), (2, 5))]
    assert cold[0] == pytest.approx(cold[1], rel=1e-6) and cold[0] != table["rgb"]["model"]
    with pytest.raises(ValueError, match="context_views must be in"):
        prediction_mse(run.model, run.scenes("val"), run.scenes("train"), context_views=8)


def test_sample_grid_shows_truth_prior_and_posterior_rows(run, tmp_path):
    """samples.png: per scene and drawn modality, the true target views, the prior's renders (model) and the
    prior's means (model t=0) and the posterior's (which saw those views): 4 rows of tiles per scene; the posterior
    row is the closer to the truth."""
    from PIL import Image

    from gmn_plugins.training.figures import image_tile, sample_grid

    scenes = run.scenes("val")
    path = sample_grid(run.model, scenes, tmp_path / "samples.png", num_scenes=2)
    tile = image_tile(scenes.modalities[0].family.draw(scenes.senses(scenes.modalities[0], np.array([0]),
                                                                     np.array([0]))[0]))  # fmt: skip
    image = np.asarray(Image.open(path).convert("L"), float)
    rows = (image.shape[0] - 18) // (tile.size[1] + 2)
    assert rows == 2 * 4  # rgb only: the haptic family draws nothing
    tops = [18 + k * (tile.size[1] + 2) for k in range(rows)]
    band = [image[t : t + tile.size[1], 80:] for t in tops]
    # over both scenes (one scene alone is too close to call at this training: 5.63 vs 5.47 grey levels in one of
    # them after issue 27's initialisation)
    errors = np.array([[np.abs(rows - truth).mean() for rows in (prior, posterior)]
                       for truth, prior, _, posterior in (band[0:4], band[4:8])])  # fmt: skip
    prior_error, posterior_error = errors.mean(0)
    assert posterior_error < prior_error, errors
    assert not np.array_equal(band[1], band[2])  # a sample is not the prior's means
