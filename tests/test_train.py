"""Training on real MESE data at tiny sizes: the loss falls, context matters, and a killed run resumes exactly."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from conftest import REPO
from gmn_plugins.data.episodes import SceneSet
from gmn_plugins.core.plugins import load_registry
from gmn_plugins.core.spec import load_spec
from gmn_plugins.training.trainer import train

TINY = ["data.train_scenes=8", "data.test_scenes=0", "data.val_scenes=2", "data.views=6", "data.shard_size=4", "data.workers=1",
        "train.batch_scenes=4", "train.max_targets=4", "train.beta_anneal_steps=10", "train.lr=0.001",
        "model.sigma=0.3", 'model.preset="tiny"']  # fmt: skip


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data") / "tiny"


def tiny_spec(data_dir, out, steps, *more):
    spec_file = REPO / "specs" / "quickstart.toml"
    return load_spec(spec_file, [*TINY, f"data.dir={json.dumps(str(data_dir))}", f"train.out={json.dumps(str(out))}",
                                 f"train.steps={steps}", *more])  # fmt: skip


def context_points(scenes, ids, sources, k):
    """Context of ``k`` views per modality taken from scenes ``sources``, placed in batch slots 0..len(ids)-1."""
    views = np.tile(np.arange(k), len(ids))
    slots = np.repeat(np.arange(len(ids)), k)
    return [scenes.points(m, np.asarray(sources)[slots], views, slots) for m in scenes.modalities]


def test_training_lowers_the_loss_and_writes_a_loadable_checkpoint(data_dir, tmp_path):
    """80 tiny steps lower the training loss; the checkpoint loads into a freshly built model. That the trained model
    uses its context (own context scores higher than another scene's) is tested on a longer run in
    test_evaluation.py: after 80 steps the margin here was ~0.001 nats/dim and flipped with the process's history
    (thread count, earlier tests), so it tested nothing reliably."""
    registry = load_registry()
    spec = tiny_spec(data_dir, tmp_path / "run", 80)
    summary = train(spec, "tiny", registry, progress=False)
    assert summary["steps"] == 80
    assert summary["neg_elbo_per_dim_end"] < summary["neg_elbo_per_dim_start"] - 0.01, summary
    assert (tmp_path / "run" / "samples.png").stat().st_size > 1000
    assert (tmp_path / "run" / "loss.png").exists()

    from gmn_plugins.training.checkpoint import load_checkpoint
    from gmn_plugins.training.experiment import build_model

    modalities = registry.resolve(spec.modalities)
    model = build_model(spec, modalities)
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert [m["name"] for m in ckpt["modalities"]] == ["rgb", "haptic"] and ckpt["step"] == 80
    model.load_state_dict(ckpt["model"])
    model.eval()
    manifest = json.loads((data_dir / "manifest.json").read_text())
    scenes = SceneSet(data_dir, "train", modalities, manifest["stats"])
    ids = np.arange(scenes.num_scenes)
    _, target = scenes.episodes(ids, np.random.default_rng(0), max_targets=3, context_sizes=[3, 3])
    torch.manual_seed(0)
    with torch.no_grad():
        own = model.log_likelihood(context_points(scenes, ids, ids, 3), target, len(ids), samples=8)
    assert torch.isfinite(own).all() and own.shape == (len(ids),)


def test_killed_run_resumes_to_the_same_result(data_dir, tmp_path):
    base = [f"data.dir={json.dumps(str(data_dir))}", *TINY, "train.steps=12", "train.checkpoint_every=2",
            "train.eval_every=3", "train.eval_scenes=2"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def command(out):
        return [sys.executable, "-m", "gmn_plugins.cli.run", str(REPO / "specs" / "quickstart.toml"), *base,
                f"train.out={json.dumps(str(out))}", "train.threads=1", "--no-progress"]  # fmt: skip

    straight = subprocess.run(command(tmp_path / "a"), env=env, capture_output=True, text=True, timeout=600)
    assert straight.returncode == 0, straight.stderr
    # the same run, killed with SIGKILL once it has written a checkpoint past step 4, then re-run
    proc = subprocess.Popen(command(tmp_path / "b"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = tmp_path / "b" / "metrics.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if metrics.exists() and any(json.loads(l)["step"] >= 5 for l in metrics.read_text().splitlines() if l):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed = subprocess.run(command(tmp_path / "b"), env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    a, b = json.loads(straight.stdout), json.loads(resumed.stdout)
    assert b["steps"] == a["steps"] == 12 and 0 < b["resumed_from"] < 12
    assert b["final_loss"] == a["final_loss"]
    rows_a = [json.loads(l) for l in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    rows_b = [json.loads(l) for l in metrics.read_text().splitlines()]
    assert rows_a == rows_b  # no step lost or logged twice
    val_a, val_b = ((tmp_path / run / "val.jsonl").read_text() for run in ("a", "b"))
    assert [json.loads(l)["step"] for l in val_a.splitlines()] == [3, 6, 9, 12]  # validations, none twice
    assert val_a == val_b and a["val_full"] == json.loads(val_a.splitlines()[-1])["val_full"]


def test_add_opposite_appends_the_swapped_episodes():
    from gmn_plugins.data.episodes import add_opposite
    from gmn_plugins.models.gmn import Points

    def points(n, scene):
        return Points(torch.rand(n, 4), torch.rand(n, 5), torch.tensor(scene, dtype=torch.int64))

    context, target = [points(3, [0, 1, 1])], [points(2, [1, 0])]
    c2, t2 = add_opposite(context, target, 2)
    # context: the original context (scenes 0, 1), then the targets as contexts of scenes 2, 3; targets the other way
    assert c2[0].scene.tolist() == [0, 1, 1, 3, 2] and t2[0].scene.tolist() == [2, 3, 3, 1, 0]
    assert torch.equal(c2[0].senses[3:], target[0].senses) and torch.equal(c2[0].senses[:3], context[0].senses)
    assert t2[0].senses is c2[0].senses, "one copy of the points serves both sides"


def test_add_opposite_gives_the_loss_of_explicitly_swapped_episodes():
    """Sharing the points between both sides changes only their order within a scene, which the model ignores: the
    loss equals that of the episodes appended in the swapped order (the authors' form) to float rounding."""
    from gmn_plugins.data.episodes import add_opposite
    from gmn_plugins.core.families import IMAGE, VECTOR
    from gmn_plugins.models.gmn import GMN, ModalityInfo, Points
    from gmn_plugins.models.presets import Preset

    def join(a, b, shift):
        return Points(torch.cat([a.senses, b.senses]), torch.cat([a.queries, b.queries]),
                      torch.cat([a.scene, b.scene + shift]))  # fmt: skip

    torch.manual_seed(0)
    tiny = Preset(r_channels=8, hidden=8, z_channels=2, steps=2, kernel=3, decoder_width=4, vector_hidden=16)
    model = GMN([ModalityInfo("rgb", IMAGE, (3, 8, 8)), ModalityInfo("touch", VECTOR, (6,))], tiny, sigma=0.5)
    g = torch.Generator().manual_seed(3)

    def points(n, shape, scenes):
        return Points(torch.rand(n, *shape, generator=g), torch.randn(n, 5, generator=g),
                      torch.randint(0, scenes, (n,), generator=g))  # fmt: skip

    context = [points(5, (3, 8, 8), 3), points(4, (6,), 3)]
    target = [points(6, (3, 8, 8), 3), points(3, (6,), 3)]
    shared = add_opposite(context, target, 3)
    explicit = ([join(c, t, 3) for c, t in zip(context, target)], [join(t, c, 3) for c, t in zip(context, target)])
    losses = []
    for c, t in (shared, explicit):
        torch.manual_seed(1)
        losses.append(model(c, t, 6)["loss"])
    assert torch.allclose(losses[0], losses[1], rtol=1e-5, atol=1e-5)


def test_loss_reduction_sum_is_the_batch_times_the_mean_before_clipping():
    """train.loss_reduction (issue 27): "sum" (the authors' code) gives B times the gradient of "mean"; with N
    data-parallel ranks each rank's share is weighted so that DDP's average gives the global mean or sum."""
    from gmn_plugins.core.families import IMAGE, VECTOR
    from gmn_plugins.models.gmn import GMN, ModalityInfo, Points
    from gmn_plugins.models.presets import Preset
    from gmn_plugins.training.trainer import training_loss

    torch.manual_seed(0)
    tiny = Preset(r_channels=8, hidden=8, z_channels=2, steps=2, kernel=3, decoder_width=4, vector_hidden=16)
    model = GMN([ModalityInfo("rgb", IMAGE, (3, 8, 8)), ModalityInfo("touch", VECTOR, (6,))], tiny, sigma=0.5)
    g = torch.Generator().manual_seed(3)

    def points(n, shape):
        return Points(torch.rand(n, *shape, generator=g), torch.randn(n, 5, generator=g),
                      torch.arange(n) % 5)  # fmt: skip

    context, target = [points(5, (3, 8, 8)), points(5, (6,))], [points(10, (3, 8, 8)), points(5, (6,))]
    grads = {}
    for reduction in ("mean", "sum"):
        model.zero_grad()
        torch.manual_seed(1)
        training_loss(model(context, target, 5)["loss"], reduction, 5, 5, 1).backward()
        grads[reduction] = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    assert len(grads["sum"]) > 10
    for mean, total in zip(grads["mean"], grads["sum"]):
        torch.testing.assert_close(total, 5 * mean, rtol=1e-5, atol=1e-7)
    loss = torch.tensor(2.0)  # rank r's mean over its 3 of 8 episodes, 2 ranks: DDP halves the sum of both
    assert training_loss(loss, "mean", 3, 8, 2).item() == pytest.approx(2.0 * 3 * 2 / 8)
    assert training_loss(loss, "sum", 3, 8, 2).item() == pytest.approx(2.0 * 3 * 2)  # 2 x its episodes' sum
    with pytest.raises(ValueError, match="loss_reduction"):
        training_loss(loss, "max", 3, 8, 1)


def test_single_modality_and_m32_specs_train(data_dir, tmp_path):
    registry = load_registry()
    single = tiny_spec(tmp_path / "haptic-data", tmp_path / "single", 2, 'modalities=["haptic"]')
    assert train(single, "single", registry, progress=False)["steps"] == 2

    m32 = load_spec(REPO / "specs" / "m32.toml")
    spec = tiny_spec(data_dir, tmp_path / "m32", 2, f"modalities={json.dumps(m32.modalities)}")
    assert train(spec, "m32", registry, progress=False)["steps"] == 2
    from gmn_plugins.training.experiment import build_model

    model = build_model(spec, registry.resolve(spec.modalities))
    assert model.inference.num_modalities == 32
    q_input = model.inference.draw.cells[0].q_lstm.conv_x.in_channels
    assert q_input == 2 * model.preset.r_channels + 32  # [t_m, r_m, one-hot(m)] with a 32-wide one-hot
    counts = {}
    for inference in ("apoe", "baseline"):
        v4 = load_spec(REPO / "specs" / "m32.toml", [f"model.inference={inference}"])
        counts[inference] = sum(p.numel() for p in build_model(v4, registry.resolve(v4.modalities), "meta").parameters())
    assert counts["apoe"] - counts["baseline"] == 2 * 32 * 256 * 25


def test_a_checkpoint_of_another_model_is_refused(data_dir, tmp_path):
    base = [str(REPO / "specs" / "quickstart.toml"), *TINY, f"data.dir={json.dumps(str(data_dir))}",
            f"train.out={json.dumps(str(tmp_path / 'run'))}", "train.steps=1", "--no-progress"]  # fmt: skip
    first = subprocess.run([sys.executable, "-m", "gmn_plugins.cli.run", *base], capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    again = subprocess.run([sys.executable, "-m", "gmn_plugins.cli.run", *base, "model.inference=baseline"],
                           capture_output=True, text=True)  # fmt: skip
    assert again.returncode == 2
    assert again.stderr.strip().splitlines() == [f"{tmp_path / 'run' / 'checkpoint.pt'}: model.inference: checkpoint "
                                                 "has 'apoe', spec has 'baseline'; a resumed run must keep it (or set "
                                                 "another train.out)"]  # fmt: skip
    other = subprocess.run([sys.executable, "-m", "gmn_plugins.cli.run", *base, 'modalities=["haptic", "rgb"]'],
                           capture_output=True, text=True)  # fmt: skip
    assert other.returncode == 2 and "modalities: checkpoint has ['rgb', 'haptic'], spec has ['haptic', 'rgb']" in other.stderr


def test_device_is_checked_in_one_line_and_auto_falls_back_to_cpu(tmp_path):
    from gmn_plugins.core.spec import SpecError
    from gmn_plugins.training.experiment import resolve_device

    spec_file = REPO / "specs" / "quickstart.toml"
    with pytest.raises(SpecError, match=r"train.device: expected auto, cpu, cuda, cuda:N or mps, got 'gpu'"):
        load_spec(spec_file, ["train.device=gpu"])
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device(load_spec(spec_file)).type == expected  # the default is "auto"
    assert resolve_device(load_spec(spec_file, ["train.device=cpu"])) == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(SpecError, match=r"quickstart.toml: train.device: 'cuda:1' requested, but torch.cuda"):
            resolve_device(load_spec(spec_file, ["train.device=cuda:1"]), str(spec_file))


def test_tensorboard_gets_the_scalars_validation_and_samples(data_dir, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    spec = tiny_spec(data_dir, tmp_path / "run", 6, "train.tensorboard=true", "train.eval_every=3",
                     "train.eval_scenes=2")  # fmt: skip
    train(spec, "tiny", load_registry(), progress=False)
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    rows = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3, 4, 5, 6]
    assert [e.value for e in events.Scalars("train/loss")] == pytest.approx([r["loss"] for r in rows])
    assert [e.step for e in events.Scalars("val/val_full")] == [3, 6]
    assert [e.step for e in events.Images("samples")] == [6]


def test_tensorboard_missing_is_one_line(data_dir, tmp_path, monkeypatch):
    from gmn_plugins.core.spec import SpecError

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if the package were not installed
    spec = tiny_spec(data_dir, tmp_path / "run", 2, "train.tensorboard=true")
    with pytest.raises(SpecError, match=r"^tiny: train.tensorboard: needs the tensorboard package"):
        train(spec, "tiny", load_registry(), progress=False)


def test_train_seed_varies_the_training_and_shares_the_dataset(data_dir, tmp_path):
    """``train.seed`` (issue 11): unset, it is the experiment's seed (bit-identical to before); another value gives
    another initialisation and other training draws on the very same dataset."""
    registry = load_registry()
    losses = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    for name, more in (("unset", []), ("same", ["train.seed=0"]), ("other", ["train.seed=1"])):
        summary = train(tiny_spec(data_dir, tmp_path / name, 3, "train.log_every=1", "train.threads=1", *more),
                        "tiny", registry, progress=False)  # fmt: skip
        assert summary["steps"] == 3
        assert torch.get_num_threads() == 2  # train.threads holds for the run only, not for the caller's later work
        losses[name] = [json.loads(line)["loss"] for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
    assert losses["unset"] == losses["same"]
    assert losses["other"] != losses["unset"]
    manifest = (data_dir / "manifest.json").read_text()
    assert json.loads(manifest)["seed"] == 0  # one dataset served all three
    torch.set_num_threads(threads)


def test_prior_nll_weight_trains_on_the_priors_renders_and_logs_their_nll(data_dir, tmp_path):
    """``train.prior_nll_weight`` (issue 28): the first step's ELBO terms are those of the paper's run (the prior's
    draws come after the posterior's), its loss is higher by w x the prior renders' NLL per scene, and every row
    logs that NLL per target dimension; the paper's run logs none. With ``train.prior_nll_start = 1`` the first
    step is the paper run's, the second has the term."""
    rows = {}
    for name, more in (("paper", ["train.prior_nll_weight=0.0"]),  # the quickstart's own: 1 from step 2400
                       ("hybrid", ["train.prior_nll_weight=2.0", "train.prior_nll_start=0"]),
                       ("late", ["train.prior_nll_weight=2.0", "train.prior_nll_start=1"])):
        train(tiny_spec(data_dir, tmp_path / name, 2, "train.log_every=1", "train.threads=1", *more), "tiny",
              load_registry(), progress=False)  # fmt: skip
        rows[name] = [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
    assert rows["late"][0] == rows["paper"][0] and "nll_prior_per_dim" in rows["late"][1]
    paper, hybrid = rows["paper"][0], rows["hybrid"][0]
    assert "nll_prior_per_dim" not in paper and all(math.isfinite(r["nll_prior_per_dim"]) for r in rows["hybrid"])
    assert hybrid["nll_per_dim"] == pytest.approx(paper["nll_per_dim"], rel=1e-5)
    assert hybrid["kl_per_scene"] == pytest.approx(paper["kl_per_scene"], rel=1e-5)
    dims_per_scene = (paper["loss"] - paper["beta"] * paper["kl_per_scene"]) / paper["nll_per_dim"]
    assert hybrid["loss"] - paper["loss"] == pytest.approx(2.0 * hybrid["nll_prior_per_dim"] * dims_per_scene, rel=1e-4)


def test_lr_and_sigma_schedules_follow_the_step_and_are_validated():
    from gmn_plugins.core.spec import SpecError
    from gmn_plugins.training.trainer import lr_at, sigma_at

    spec = load_spec(REPO / "specs" / "quickstart.toml", ["train.lr=0.003", "train.lr_end=0.0003",
                                                          "train.lr_anneal_steps=100", "train.sigma_start=0.5",
                                                          "train.sigma_anneal_steps=40"])  # fmt: skip
    assert [lr_at(spec, s) for s in (0, 50, 100, 5000)] == pytest.approx([3e-3, 1.65e-3, 3e-4, 3e-4])
    assert [sigma_at(spec, s) for s in (0, 20, 40, 41)] == pytest.approx([0.5, 0.3, 0.1, 0.1])
    warm = load_spec(REPO / "specs" / "quickstart.toml", ["train.lr=0.002", "train.lr_warmup_steps=4"])
    assert [lr_at(warm, s) for s in (0, 1, 3, 4, 900)] == pytest.approx([5e-4, 1e-3, 2e-3, 2e-3, 2e-3])
    plain = load_spec(REPO / "specs" / "quickstart.toml")
    assert lr_at(plain, 7) == plain.train.lr and sigma_at(plain, 7) == plain.model.sigma  # unset: constant
    with pytest.raises(SpecError, match=r"train.lr_warmup_steps"):
        load_spec(REPO / "specs" / "quickstart.toml", ["train.lr_warmup_steps=-1"])
    with pytest.raises(SpecError, match=r"train.lr_end: must be > 0"):
        load_spec(REPO / "specs" / "quickstart.toml", ["train.lr_end=0.0"])
    with pytest.raises(SpecError, match=r"train.sigma_start: must be > 0"):
        load_spec(REPO / "specs" / "quickstart.toml", ["train.sigma_start=-1.0"])
