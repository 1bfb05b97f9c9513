"""The public Python API (gmn_plugins.api) on a real (tiny) trained run: the docs example, gmn-eval's numbers against
the model's own calls as they were made before the API, MESE scenes made with the run's settings, units, seeds,
classification (Eq. 6) and the one-line errors."""

import ast
import json
import math
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import REPO
from gmn_plugins import camera_orbit, open_run
from gmn_plugins.training.checkpoint import CheckpointError, payload_sha256
from gmn_plugins.evaluation.classification import accuracy, default_masks, hits, score_matrix
from gmn_plugins.evaluation.density import TARGET_VIEWS, gray
from gmn_plugins.evaluation.generation import generated_modalities, true_views
from gmn_plugins.evaluation.runs import load_run
from gmn_plugins.mese.queries import grid_queries
from gmn_plugins.models.gmn import _elements
from gmn_plugins.core.plugins import load_registry
from gmn_plugins.core.spec import SpecError
from gmn_plugins.runtime.threads import set_threads


@pytest.fixture(scope="module")
def copied(tiny_run_dir, tmp_path_factory):
    """An empty directory holding only the tiny run's checkpoint, as ``runs/quickstart/checkpoint.pt``."""
    where = tmp_path_factory.mktemp("copied")
    (where / "runs" / "quickstart").mkdir(parents=True)
    shutil.copy(tiny_run_dir / "checkpoint.pt", where / "runs" / "quickstart" / "checkpoint.pt")
    return where


@pytest.fixture(scope="module")
def run(tiny_run_dir):
    return open_run(tiny_run_dir)


@pytest.fixture(scope="module")
def data(tiny_run_dir):
    return load_run(tiny_run_dir, load_registry())


def test_the_docs_example_renders_a_new_scene_and_plots_it(copied, monkeypatch):
    """docs/python-api.md's first example, as written, on the tiny run's checkpoint copied alone: <= 10 statements,
    a figure of 4 rows x 8 columns, and no data made anywhere."""
    from PIL import Image

    code = re.search(r"```python\n(.*?)```", (REPO / "docs" / "python-api.md").read_text(), re.S).group(1)
    tree = ast.parse(code)
    assert sum(isinstance(node, ast.stmt) for node in ast.walk(tree)) <= 10
    monkeypatch.chdir(copied)
    namespace = {}
    exec(compile(tree, "docs/python-api.md", "exec"), namespace)
    assert namespace["renders"].shape == (2, 8, 3, 64, 64) and namespace["renders"].dtype == np.uint8
    truth = namespace["rows"]["truth"]
    assert truth.shape == (8, 3, 64, 64) and truth.dtype == np.uint8 and truth.max() > 100
    assert all(np.abs(truth[i].astype(int) - truth[i + 1]).mean() > 1 for i in range(7))  # 8 different views
    assert Image.open(copied / "python-api.png").size == (8 * 130, 4 * 130)  # 1.3 inch per image at 100 dpi
    assert sorted(p.name for p in copied.rglob("*")) == ["checkpoint.pt", "python-api.png", "quickstart", "runs"]


# ------------------------------------------------------------------ gmn-eval's numbers, before and after the API
# The model calls of gmn-eval's experiments as they were before the API (commit fe8f234: Points assembled by the
# SceneSet, GMN methods called directly), kept here as the reference the CLIs' JSON must equal bit for bit.


def _before_generate(model, scenes, scene, context, samples, seed):
    ctx, _ = scenes.assemble([[((scene, np.arange(k)), (scene, np.arange(0))) for k in context]])
    shown = generated_modalities(scenes.modalities)
    q = [torch.from_numpy(grid_queries()) if i in shown else None for i in range(len(context))]
    s = [torch.zeros(16, dtype=torch.int64) if i in shown else None for i in range(len(context))]
    grids = {scenes.modalities[i].name: [true_views(scenes, scene, i, grid_queries())] for i in shown}
    torch.manual_seed(seed)
    for _ in range(samples):
        rendered = model.generate(ctx, q, s, 1)
        for i in shown:
            grids[scenes.modalities[i].name].append(rendered[i].cpu().numpy())
    return {name: {"samples": [float(((g[r] - g[0]) ** 2).mean()) for r in range(1, len(g))],
                   "mean_of_samples": float(((np.mean(g[1:], 0) - g[0]) ** 2).mean())}
            for name, g in ((n, np.stack(rows)) for n, rows in grids.items())}  # fmt: skip


def _before_predict(model, scenes, reference, context_views, shown, num_scenes, samples, seed):
    views, targets = scenes.views, np.arange(context_views, scenes.views)
    torch.manual_seed(seed)
    sums = {m.name: np.zeros(4) for m in scenes.modalities}
    counts = {m.name: 0 for m in scenes.modalities}
    ref_ids = np.arange(min(64, reference.num_scenes))
    means = {m.name: reference.senses(m, np.repeat(ref_ids, reference.views),
                                      np.tile(np.arange(reference.views), len(ref_ids))).mean(0)
             for m in scenes.modalities}  # fmt: skip
    for scene in range(min(num_scenes, scenes.num_scenes)):
        plan = [[((scene, np.arange(context_views if i in shown else 0)), (scene, targets))
                 for i in range(len(scenes.modalities))]]  # fmt: skip
        context, target = scenes.assemble(plan)
        renders = [model.generate(context, [p.queries for p in target], [p.scene for p in target], 1)
                   for _ in range(samples)]  # fmt: skip
        reconstructions = [model.reconstruct(context, target, 1) for _ in range(samples)]
        for i, m in enumerate(scenes.modalities):
            truth = target[i].senses.numpy()
            predicted = np.mean([r[i].cpu().numpy() for r in renders], axis=0)
            reconstructed = np.mean([r[i].cpu().numpy() for r in reconstructions], axis=0)
            own = scenes.senses(m, np.full(views, scene), np.arange(views)).mean(0)
            sums[m.name] += [((predicted - truth) ** 2).sum(), ((own - truth) ** 2).sum(),
                             ((means[m.name] - truth) ** 2).sum(), ((reconstructed - truth) ** 2).sum()]
            counts[m.name] += truth.size
    return {name: {"model": a / counts[name], "own_mean": b / counts[name], "dataset_mean": c / counts[name],
                   "gain": 1.0 - a / b, "posterior": d / counts[name]} for name, (a, b, c, d) in sums.items()}  # fmt: skip


def _before_density(model, scenes, target, source, counts, num_scenes, samples, seed, use_gray, batch=12):
    transforms = [gray if (use_gray and i == target) else None for i in range(len(scenes.modalities))]
    ids, last = np.arange(min(num_scenes, scenes.num_scenes)), np.arange(scenes.views - TARGET_VIEWS, scenes.views)
    grid = np.zeros((len(counts), len(counts), len(ids)))
    for a, k_source in enumerate(counts):
        for b, k_target in enumerate(counts):
            torch.manual_seed(seed)
            for start in range(0, len(ids), batch):
                chunk = ids[start : start + batch]
                plan = [[((s, np.arange(k_target if i == target else (k_source if i == source else 0))),
                          (s, last if i == target else last[:0])) for i in range(len(scenes.modalities))]
                        for s in chunk]  # fmt: skip
                context, targets = scenes.assemble(plan)
                grid[a, b, start : start + len(chunk)] = (
                    model.log_likelihood(context, targets, len(chunk), samples, transforms).cpu().numpy())
    return grid.mean(-1).round(6).tolist()


def _before_score_matrix(model, scenes, group, mask, c, samples, batch=25):
    from gmn_plugins.evaluation.classification import _observations, _transposed_channels_last

    last = np.arange(scenes.views - TARGET_VIEWS, scenes.views)
    size = len(group)
    plan = [[((s, np.arange(c if m in mask else 0)), (s, last)) for m in range(len(scenes.modalities))] for s in group]
    context, targets = scenes.assemble(plan)
    pairs = torch.cartesian_prod(torch.arange(size), torch.arange(size))
    scores = torch.zeros(len(pairs))
    with torch.no_grad(), _transposed_channels_last(model, True):
        r, t, in_context, in_target = model._represent(context, targets, size)
        elements = _elements(targets, size)
        rows = [[torch.nonzero(p.scene == i).flatten() for i in range(size)] for p in targets]
        for start in range(0, len(pairs), batch):
            k, i = pairs[start : start + batch].T
            chunk = [_observations(p, rows_m, i.tolist()) for p, rows_m in zip(targets, rows)]
            weights = []
            for _ in range(samples):
                latents = model._posterior(r[:, k], t[:, i], in_context[:, k], in_target[:, i])
                z = model.render_input(latents.z, r[:, k])  # z itself unless renderer_context (issue 28, later)
                weights.append(latents.log_ratio - model._nll(z, chunk, len(k)))
            scores[start : start + len(k)] = (torch.logsumexp(torch.stack(weights), 0) - math.log(samples)) / elements[i]
    return scores.double().numpy().reshape(size, size)


def test_gmn_eval_json_equals_the_model_calls_made_before_the_api(data, capsys):
    """generate, predict, density and classify, run as the CLI (one thread), against the reference above: the same
    numbers to the last bit (recorded also before the change: docs in the commit message)."""
    from gmn_plugins.cli.evaluate import main

    def cli(*args):
        main([*args, str(data.dir), "--threads", "1", "--no-progress"])
        return json.loads(capsys.readouterr().out)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # what --threads 1 gives the CLI's paced loops; its other calls run with torch's count
    try:
        model, val = data.model, data.scenes("val")
        got = cli("generate", "--scene", "1", "--samples", "2", "--context", "rgb=1,haptic=3", "--seed", "4")
        torch.set_num_threads(1)
        assert got["mse"] == _before_generate(model, val, 1, [1, 3], 2, 4)

        got = cli("predict", "--scenes", "3", "--context", "3", "--samples", "2", "--sources", "haptic")
        torch.set_num_threads(1)
        assert got["mse"] == _before_predict(model, val, data.scenes("train"), 3, {1}, 3, 2, 0)
        got = cli("predict", "--scenes", "3", "--context", "3", "--samples", "2", "--split", "train")  # issue 28
        torch.set_num_threads(1)
        train = data.scenes("train")
        assert got["split"] == "train" and got["mse"] == _before_predict(model, train, train, 3, {0, 1}, 3, 2, 0)

        got = cli("density", "--scenes", "3", "--samples", "2", "--counts", "0,1", "--gray", "--seed", "2")
        torch.set_num_threads(1)
        names = [m.name for m in data.modalities]
        for record in got["records"]:
            expected = _before_density(model, val, names.index(record["target"]), names.index(record["source"]),
                                       [0, 1], 3, 2, 2, record["gray"])  # fmt: skip
            assert record["grid"] == expected, record

        got = cli("classify", "--blocks", "4", "--objects", "4", "--k", "2", "--contexts", "0,2", "--samples", "2")
        torch.set_num_threads(1)
        heldout = data.heldout_scenes(4, 4)
        expected = []
        for mask in default_masks(names):
            for c in (0, 2):
                torch.manual_seed(0)
                matrices = [_before_score_matrix(model, heldout, np.arange(g * 2, g * 2 + 2), mask, c, 2)
                            for g in range(2)]  # fmt: skip
                expected.append({"mask": "+".join(names[i] for i in mask), "c": c, "orientation": "paper",
                                 "top1": float(np.mean([accuracy(m, "paper", 1) for m in matrices])),
                                 "top5": float(np.mean([accuracy(m, "paper", 2) for m in matrices])),
                                 "correct": [int(h) for m in matrices for h in hits(m, "paper", 1)],
                                 "groups": 2, "k": 2})  # fmt: skip
        assert got["results"]["4 blocks"] == expected
    finally:
        set_threads(None)
        torch.set_num_threads(threads)


# ------------------------------------------------------------------------------------------ the API's behaviour


def test_a_mese_scene_of_the_runs_dataset_is_made_again_with_the_runs_settings(run, data):
    """``mese_scene(split, index)`` with the run's rig, hand and physics records exactly what the dataset holds for
    that scene (first views: each kind's stream is a sequence); a new seed gives another object."""
    val = data.scenes("val")
    world = run.mese_scene(split="val", index=1)
    np.testing.assert_array_equal(world.walk, val.objects["walk"][1])
    np.testing.assert_array_equal(world.colours, val.objects["colours"][1])
    seen = world.observations({"rgb": 3, "haptic": 2})
    for name, k in (("rgb", 3), ("haptic", 2)):
        values, queries = seen[name]
        stored = val.observations(1, [np.arange(k), np.arange(k)])[name]
        np.testing.assert_array_equal(values, stored[0])
        np.testing.assert_array_equal(queries, stored[1])
    assert seen["rgb"][0].dtype == np.uint8 and seen["haptic"][0].dtype == np.float32
    np.testing.assert_array_equal(world.observations({"rgb": 1})["rgb"][0], seen["rgb"][0][:1])  # prefix
    # a posed camera sees what the dataset recorded at its viewpoint (float32 queries: a few pixels differ)
    again = world.record("rgb", seen["rgb"][1])
    assert np.abs(again.astype(float) - seen["rgb"][0]).mean() < 0.5
    other = run.mese_scene(seed=11)
    assert other.walk.shape == (4,) and not np.array_equal(other.colours, world.colours)


def test_observe_render_and_score_in_sensor_units(run, data):
    val = data.scenes("val")
    seen = val.observations(2, [np.arange(3), np.arange(8)])
    scene = run.observe(seen)
    queries = camera_orbit(4, pitch=0.3)
    state = torch.get_rng_state()
    images = scene.render("rgb", queries, samples=2, seed=5)
    assert images.shape == (2, 4, 3, 64, 64) and images.dtype == np.uint8
    assert torch.equal(torch.get_rng_state(), state)  # a seeded call leaves torch's generator alone
    np.testing.assert_array_equal(images, scene.render("rgb", queries, samples=2, seed=5))
    assert not np.array_equal(images[0], images[1])  # a new z per sample
    # temperature 0 renders the prior's means: the same for every sample and seed
    cold = scene.render("rgb", queries, samples=2, seed=5, scale="model", temperature=0.0)
    np.testing.assert_array_equal(cold[0], cold[1])
    np.testing.assert_array_equal(cold[0], scene.render("rgb", queries, seed=9, scale="model", temperature=0)[0])
    assert not np.array_equal(cold[0], scene.render("rgb", queries, seed=9, scale="model")[0])
    means = scene.render("rgb", queries, samples=2, seed=5, scale="model")
    assert means.dtype == np.float32
    np.testing.assert_array_equal(np.clip(np.rint(means * 255), 0, 255).astype(np.uint8), images)
    # the same renders as the model's own call on the SceneSet's points
    context, _ = val.assemble([[((2, np.arange(3)), (2, np.arange(0))), ((2, np.arange(8)), (2, np.arange(0)))]])
    torch.manual_seed(5)
    direct = data.model.generate(context, [torch.from_numpy(queries), None], [torch.zeros(4, dtype=torch.int64), None], 1)
    np.testing.assert_array_equal(direct[0].numpy(), means[0])
    # haptic renders come back in the sensor's physical units, and normalise back to the model's scale
    wrist = seen["haptic"][1][:3]
    felt = scene.render("haptic", wrist, seed=1)
    assert felt.shape == (1, 3, 132) and felt.dtype == np.float32
    np.testing.assert_allclose(run.normalize("haptic", felt[0]),
                               scene.render("haptic", wrist, seed=1, scale="model")[0], atol=1e-3)  # fmt: skip
    # float images in [0, 1] are the same observation as uint8 0-255
    uint8 = scene.log_likelihood("rgb", val.raw["camera.rgb"][2, 5:], val.queries["camera"][2, 5:], seed=0)
    floats = scene.log_likelihood("rgb", val.raw["camera.rgb"][2, 5:] / 255.0, val.queries["camera"][2, 5:], seed=0)
    assert np.isfinite(uint8) and uint8 == pytest.approx(floats, abs=1e-4)
    # the scene's own unseen views are far likelier than noise at the same viewpoints (sigma 0.1: a per-element
    # error of 0.3 costs 4.5 nats), and at most the bound -log(0.1) - log(2 pi) / 2 = 1.38 nats per dimension
    mine = scene.log_likelihood("rgb", val.raw["camera.rgb"][2, 3:], val.queries["camera"][2, 3:], samples=4, seed=0)
    noise = np.random.default_rng(0).integers(0, 256, (5, 3, 64, 64), dtype=np.uint8)
    assert scene.log_likelihood("rgb", noise, val.queries["camera"][2, 3:], samples=4, seed=0) < mine - 3 < 1.38 - 3
    # a batch of scenes scores each scene as alone
    batch = run.observe([seen, val.observations(0, [np.arange(3), np.arange(8)])])
    targets = [{"rgb": (val.raw["camera.rgb"][s, 5:], val.queries["camera"][s, 5:])} for s in (2, 0)]
    assert batch.log_likelihood(targets, samples=3, seed=0).shape == (2,)


def test_classify_scores_contexts_against_observations_as_score_matrix(run, data):
    """Eq. 6 through the API equals score_matrix (which calls it) on the same seed; K contexts x J observation
    sets of any sizes; the predicted scene is the column argmax."""
    train = data.scenes("train")
    last = np.arange(train.views - TARGET_VIEWS, train.views)
    contexts = [train.observations(s, [np.arange(3), np.arange(3)]) for s in range(4)]
    observed = [train.observations(s, [last, last]) for s in range(4)]
    torch.manual_seed(0)
    expected = score_matrix(data.model, train, np.arange(4), [0, 1], 3, samples=3)
    result = run.classify(contexts, observed, samples=3, seed=0)
    np.testing.assert_array_equal(result.scores, expected)
    np.testing.assert_array_equal(result.predicted, expected.argmax(0))
    one = run.classify(contexts, observed[2:3], samples=3, seed=0)
    assert one.scores.shape == (4, 1) and one.predicted.shape == (1,)
    with pytest.raises(ValueError, match=r"observations\[0\]: an observation set needs"):
        run.classify(contexts, [{}], samples=1)


def test_mistakes_are_one_value_error_naming_the_argument_and_the_shape(run, data):
    val = data.scenes("val")
    images, views = val.raw["camera.rgb"][0, :2], val.queries["camera"][0, :2]
    cases = [
        ({"depthx": (images, views)}, r"observations: unknown modality 'depthx'; the run's modalities: \['rgb', 'haptic'\]"),
        ({"rgb": (images.transpose(0, 2, 3, 1), views)},
         r"observations\['rgb'\] values: expected shape \(N, 3, 64, 64\) \(camera.rgb values, uint8 0-255 or float"),
        ({"rgb": (images * 1.0, views)}, r"observations\['rgb'\] values: float values of shape \(N, 3, 64, 64\) must "
                                         r"lie in \[0, 1\]"),
        ({"rgb": (images, views[:, :3])}, r"observations\['rgb'\] queries: expected shape \(2, 5\), camera queries"),
        ({"rgb": (images, views[:1])}, r"observations\['rgb'\] queries: expected shape \(2, 5\)"),
        ({"haptic": (np.full((2, 132), np.nan), views)}, r"observations\['haptic'\] values: expected finite values"),
        ({"rgb": images}, r"observations\['rgb'\]: expected a pair \(values \(N, 3, 64, 64\), queries \(N, 5\)\)"),
    ]
    for observations, message in cases:
        with pytest.raises(ValueError, match=message):
            run.observe(observations)
    scene = run.observe({"rgb": (torch.tensor(images), torch.tensor(views))})  # tensors are fine
    with pytest.raises(ValueError, match=r"queries\['rgb'\]: expected shape \(N, 5\)"):
        scene.render("rgb", np.zeros((4, 7)))
    with pytest.raises(ValueError, match="modality: unknown modality 'RGB'"):
        scene.render("RGB", camera_orbit(2))
    with pytest.raises(ValueError, match=r"modality: 'haptic' has query kind 'wrist', whose rig cannot be posed"):
        run.mese_scene(seed=1).record("haptic", views)
    with pytest.raises(ValueError, match="samples: expected an int >= 1"):
        scene.render("rgb", camera_orbit(2), samples=0)
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        scene.render("rgb", camera_orbit(2), temperature=-1.0)


def test_a_checkpoint_copied_alone_opens_without_data_and_foreign_plugins_are_refused(copied, data, tmp_path):
    alone = open_run(copied / "runs" / "quickstart" / "checkpoint.pt")
    assert alone.names == ["rgb", "haptic"] and alone.step == data.step
    assert alone.stats == data.manifest["stats"]  # the training statistics travel in the checkpoint
    assert [p.name for p in (copied / "runs" / "quickstart").iterdir()] == ["checkpoint.pt"]
    ckpt = torch.load(copied / "runs" / "quickstart" / "checkpoint.pt", weights_only=True)
    ckpt["spec"]["modalities"] = ["rgb", "sonar"]
    ckpt["modalities"][1]["name"] = "sonar"
    ckpt["sha256"] = payload_sha256(ckpt)
    torch.save(ckpt, tmp_path / "checkpoint.pt")
    with pytest.raises(SpecError, match="modalities\\[1\\]: unknown modality 'sonar'"):
        open_run(tmp_path)
    ckpt = torch.load(copied / "runs" / "quickstart" / "checkpoint.pt", weights_only=True)
    ckpt["modalities"][1]["distribution"] = "gmn-haptics-elsewhere"
    ckpt["sha256"] = payload_sha256(ckpt)
    torch.save(ckpt, tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="modality haptic: distribution differs"):
        open_run(tmp_path)
    with pytest.raises(CheckpointError, match="no such file"):
        open_run(tmp_path / "nothing")


def test_import_stays_light_and_help_shows_the_public_surface():
    code = ("import sys, gmn_plugins; heavy = lambda: [m for m in ('torch', 'mujoco') if m in sys.modules]; "
            "print(heavy()); help(gmn_plugins); print(sorted(gmn_plugins.__all__)); gmn_plugins.open_run; "
            "print(heavy())")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PAGER": "cat",
                         "PATH": "/usr/bin:/bin", "MUJOCO_GL": "egl"}, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "[]" and "torch" in lines[-1]
    for name in ("open_run", "Run.observe", "Run.classify", "Run.mese_scene", "Scene.render", "Scene.log_likelihood",
                 "MeseScene.observations", "MeseScene.record", "camera_orbit", "plot_views"):
        assert re.search(rf"^\s+{re.escape(name)}\(.*\)\s+\S", out.stdout, re.M), name  # listed with a summary
    assert "class Run(" in out.stdout and "class Scene(" in out.stdout and "class MeseScene(" in out.stdout
    assert re.search(r"^FUNCTIONS$(.|\n)*^    camera_orbit\(views(.|\n)*^    open_run\(path", out.stdout, re.M)
