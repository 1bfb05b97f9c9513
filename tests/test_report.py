"""The reproduction report (issue 11): the paired bootstrap and its verdicts, and ``gmn-eval report`` end to end on a
tiny report directory (4 real runs of a few steps, real MESE data, every claim, figures, caching, one-line errors)."""

import json
import re

import numpy as np
import pytest

from conftest import REPO, run_cli
from gmn_plugins.data.format import open_split
from gmn_plugins.evaluation.bootstrap import FAILS, HOLDS, UNCLEAR, paired_bootstrap, verdict


def test_paired_bootstrap_finds_a_shift_that_unpaired_noise_would_hide():
    rng = np.random.default_rng(0)
    scene_effect = rng.normal(0, 1.0, 200)  # large differences between scenes, shared by both models
    a = scene_effect + 0.05 + rng.normal(0, 0.01, (2, 200))
    b = scene_effect + rng.normal(0, 0.01, (2, 200))
    result = paired_bootstrap(a, b, replicates=500)
    assert result["difference"] == pytest.approx(0.05, abs=0.005)
    assert 0 < result["low"] < 0.05 < result["high"] < 0.1  # pairing removes the scene effect (sd 1)
    assert verdict(result, "greater") == HOLDS and verdict(result, "less") == FAILS
    same = paired_bootstrap(b + rng.normal(0, 0.01, b.shape), b, replicates=500)
    assert verdict(same, "greater") == UNCLEAR and same["low"] < 0 < same["high"]
    assert len(result["per_seed"]) == 2 and result["units"] == 200
    with pytest.raises(ValueError, match="one shape"):
        paired_bootstrap(a, b[:, :10])
    with pytest.raises(ValueError, match="side"):
        verdict(result, "bigger")


def test_paired_bootstrap_resamples_training_seeds_too():
    """Two seeds that disagree in sign give an interval across 0 although every scene agrees within each seed."""
    a = np.stack([np.full(50, 1.0), np.full(50, -1.0)]) + np.random.default_rng(1).normal(0, 0.01, (2, 50))
    result = paired_bootstrap(a, np.zeros_like(a), replicates=500)
    assert result["low"] < 0 < result["high"] and verdict(result, "greater") == UNCLEAR


TINY = ["data.train_scenes=8", "data.val_scenes=2", "data.test_scenes=6", "data.views=8", "data.shard_size=4",
        "data.workers=1", "train.batch_scenes=4", "train.max_targets=4", "train.eval_every=2", "train.eval_scenes=2",
        "train.beta_anneal_steps=2", "train.missing_sizes=[2, 2]", 'model.preset="tiny"']  # fmt: skip


def _spec(steps: int, keep_every: int) -> str:
    """The quickstart, training ``steps`` steps and keeping a checkpoint every ``keep_every``."""
    text = (REPO / "specs" / "quickstart.toml").read_text()
    text, found = re.subn(r"(?m)^steps = \d+", f"steps = {steps}\nkeep_every = {keep_every}", text)
    assert found == 1, "specs/quickstart.toml: no train.steps line to replace"
    return text.replace("checkpoint_every = 100", "checkpoint_every = 1")


def _report_dir(root, split="test"):
    directory = root / "repro"
    directory.mkdir()
    # the specs keep different steps: tiny.toml 2 and 4 (its last), tiny-b.toml 3 (its last)
    (directory / "tiny.toml").write_text(_spec(4, 2))
    (directory / "tiny-b.toml").write_text(_spec(3, 3))
    (directory / "report.toml").write_text(f"""
name = "tiny"
out = "{root / 'runs'}"
seeds = [1, 2]
split = "{split}"
bootstrap = 200
trend = true
overrides = {json.dumps([*TINY, f"data.dir={json.dumps(str(root / 'data'))}"])}

[[missing]]
spec = "tiny-b.toml"
scenes = 6
small_sizes = [1]
figure = "Fig. 5 b"

[[missing]]        # a second claim 1, on the runs the density claim trains: no more training
spec = "tiny.toml"
scenes = 4
small_sizes = [1, 2]
figure = "Fig. 5 a"

[density]
spec = "tiny.toml"
scenes = 6
samples = 2
source_counts = [3]
target_counts = [0, 1]
directions = ["haptic->rgb:gray", "rgb->haptic"]

[classification]
spec = "tiny.toml"
blocks = [4]
objects = 4
k = 2
contexts = [1]
samples = 2

[power]
scenes = 6
samples = 2
counts = [0, 3]
colour_views = 3
""")
    return directory


def test_gmn_eval_report_trains_evaluates_and_decides_every_claim(tmp_path):
    directory = _report_dir(tmp_path)
    done = run_cli("evaluate", "report", str(directory), "--no-progress", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    out = tmp_path / "runs" / "report"
    claims = json.loads((out / "claims.json").read_text())["claims"]
    # claim 1 per [[missing]] table, claims 2a and 2b per direction, claim 3 per context mask (rgb, haptic, rgb+haptic)
    assert [r["claim"][0] for r in claims] == ["1"] * 2 + ["2"] * 4 + ["3"] * 3
    assert [r["claim"] for r in claims[:2]] == ["1 missing modalities (Fig. 5 b)", "1 missing modalities (Fig. 5 a)"]
    assert claims[0]["statistic"].startswith("tiny-b.toml: neg. ELBO at 1 modalities")
    assert claims[1]["statistic"].startswith("tiny.toml: neg. ELBO at 1-2 modalities") and claims[1]["units"] == 4
    for row in claims:
        assert row["verdict"] in (HOLDS, FAILS, UNCLEAR)
        assert row["low"] <= row["difference"] <= row["high"] and row["seeds"] == 2
        assert row["difference"] == pytest.approx(row["a"] - row["b"], abs=1e-9)
    assert claims[0]["units"] == 6 and claims[-1]["units"] == 4  # test scenes; held-out objects
    text = (out / "report.md").read_text()
    assert "| **" in text and "tiny/apoe-seed2" in text and "tiny/baseline-seed1" in text
    for png in ("fig3-density", "fig4-classification", "fig5-missing-tiny-b", "fig5-missing-tiny",
                "fig1-generation-tiny-apoe", "fig1-generation-tiny-baseline", "training-tiny", "trend"):  # fmt: skip
        assert (out / f"{png}.png").stat().st_size > 1000 and f"({png}.png)" in text
    # trend: every claim decided again at each checkpoint that all runs of its spec kept (specs keep different
    # steps); a kept last step reuses the last checkpoint's evaluation
    trend = json.loads((out / "claims.json").read_text())["trend"]
    assert {spec: list(by_step) for spec, by_step in trend.items()} == {"tiny-b.toml": ["3"], "tiny.toml": ["2", "4"]}
    assert trend["tiny-b.toml"]["3"] == claims[:1] and trend["tiny.toml"]["4"] == claims[1:]
    assert [r["statistic"] for r in trend["tiny.toml"]["2"]] == [r["statistic"] for r in claims[1:]]
    assert "### Claim 1 by combination size (Fig. 5 b, `tiny-b.toml`)" in text and "| baseline | 2 | " in text
    assert "### Claim 1 by combination size (Fig. 5 a, `tiny.toml`)" in text and "| 2 modalities |" in text
    assert "| 1 modality |" in text and "(n = 6) |" in text and " = KL +" in text  # Fig. 5 b: small_sizes [1]
    # the KL part of each negative ELBO: a KL is >= 0, and the gap splits into it and the NLL's part
    missing = json.loads((tmp_path / "runs" / "tiny-b" / "apoe-seed1" / "eval" / "report-missing.json").read_text())
    assert len(missing["small_kl"]) == len(missing["small"]) == 6 and min(missing["small_kl"] + missing["rule_kl"]) >= 0
    assert "## Trend over kept checkpoints" in text and "| step 2 | step 4 |" in text and "| step 3 |" in text
    # context use, per run of every spec: the log-likelihood gain from 0 to 3 own views per modality, and the colour
    # measure of the one 3-channel image (rgb; haptic is a vector)
    power = json.loads((out / "claims.json").read_text())["power"]
    assert {spec: [(r["model"], r["seed"]) for r in rows] for spec, rows in power.items()} == {
        spec: [("apoe", 1), ("apoe", 2), ("baseline", 1), ("baseline", 2)] for spec in ("tiny.toml", "tiny-b.toml")}
    cached = json.loads((tmp_path / "runs" / "tiny" / "apoe-seed2" / "eval" / "report-power.json").read_text())
    assert cached["modalities"] == ["rgb", "haptic"] and len(cached["gain"]["rgb"]) == 6
    assert list(cached["colour"]) == ["rgb"] and cached["colour"]["rgb"]["context_views"] == 3
    summary = next(r for r in power["tiny.toml"] if (r["model"], r["seed"]) == ("apoe", 2))
    assert summary["gain"]["haptic"] == pytest.approx(np.mean(cached["gain"]["haptic"]))
    assert np.isfinite(summary["gain"]["rgb"]) and summary["gain"] != power["tiny.toml"][0]["gain"]
    assert "## Context use" in text and "| model | train.seed | gain rgb | gain haptic | colour rgb |" in text
    evaluated = tmp_path / "runs" / "tiny" / "baseline-seed2" / "eval"
    assert (evaluated / "report-density-step-2.json").is_file() and not (evaluated / "report-density-step-4.json").exists()
    assert not list((tmp_path / "runs" / "tiny-b").glob("*/eval/report-missing-step-*"))
    runs = sorted(p.name for p in (tmp_path / "runs" / "tiny").iterdir())
    assert runs == ["apoe-seed1", "apoe-seed2", "baseline-seed1", "baseline-seed2"]
    cached = tmp_path / "runs" / "tiny" / "apoe-seed1" / "eval" / "report-density.json"
    stamp = cached.stat().st_mtime_ns
    # the models differ (different weights), so the paired differences are not all zero
    assert any(abs(r["difference"]) > 0 for r in claims)

    # several reports' claims in one table (claim x recipe): a report directory and a claims.json, one labelled
    table = run_cli("evaluate", "claims", f"mine={directory}", str(out / "claims.json"), cwd=tmp_path)
    assert table.returncode == 0, table.stderr[-2000:]
    lines = table.stdout.splitlines()
    assert len(lines) == 2 + 2 * len(claims) and lines[0].startswith("| claim | statistic | recipe |")
    assert ["| mine |" in line for line in lines[2:6]] == [True, True, False, False]  # by claim, then by source
    assert "| tiny |" in lines[4] and f"**{claims[0]['verdict']}** |" in lines[2] and "| 2 × 6 |" in lines[2]
    bad = run_cli("evaluate", "claims", str(tmp_path / "nowhere.json"), cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.strip() == f"{tmp_path / 'nowhere.json'}: no such report directory or claims.json"

    # a classification cut short keeps the held-out sizes it finished, each cached on its own
    part = tmp_path / "runs" / "tiny" / "baseline-seed1" / "eval" / "report-classification-blocks4.json"
    part_stamp = part.stat().st_mtime_ns
    (part.parent / "report-classification.json").unlink()

    again = run_cli("evaluate", "report", str(directory), "--no-progress", "--no-train", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert cached.stat().st_mtime_ns == stamp  # evaluations are cached by settings and step
    assert part.stat().st_mtime_ns == part_stamp and (part.parent / "report-classification.json").is_file()
    # assembled from a cached part, the evaluation's cost is the part's, as long as it took when it was made
    part_seconds = json.loads(part.read_text())["seconds"]
    assert json.loads((part.parent / "report-classification.json").read_text())["seconds"] == part_seconds > 0
    assert json.loads((out / "claims.json").read_text())["claims"] == claims  # same numbers
    assert json.loads((out / "claims.json").read_text())["partial"] == {}

    # --no-train on runs short of their spec's steps (still training): read as they are, the report marked interim
    (directory / "tiny-b.toml").write_text(_spec(5, 3))
    interim = run_cli("evaluate", "report", str(directory), "--no-progress", "--no-train", cwd=tmp_path)
    assert interim.returncode == 0, interim.stderr[-2000:]
    short = {str(tmp_path / "runs" / "tiny-b" / f"{m}-seed{s}"): 3 for m in ("apoe", "baseline") for s in (1, 2)}
    stored = json.loads((out / "claims.json").read_text())
    assert stored["partial"] == short and stored["claims"] == claims  # the same checkpoints, the same numbers
    assert "**Interim report**: 4 of 8 runs" in (out / "report.md").read_text() and "at step 3 of 5" in interim.stderr
    table = run_cli("evaluate", "claims", str(directory), cwd=tmp_path)
    assert table.returncode == 0 and "| tiny (interim) |" in table.stdout, table.stderr[-2000:]

    # claim 3 on more held-out objects (rounds = 2): round 0 is the evaluation already cached, round 1 four new
    # objects per size under the next evaluation seed; the other claims keep their numbers
    spec_file = directory / "report.toml"
    spec_file.write_text(spec_file.read_text().replace("objects = 4\n", "objects = 4\nrounds = 2\n"))
    more = run_cli("evaluate", "report", str(directory), "--no-progress", "--no-train", cwd=tmp_path)
    assert more.returncode == 0, more.stderr[-2000:]
    rows = json.loads((out / "claims.json").read_text())["claims"]
    assert rows[:6] == claims[:6] and [r["units"] for r in rows[6:]] == [8, 8, 8]
    assert part.stat().st_mtime_ns == part_stamp and part.with_name(f"{part.stem}-round1.json").is_file()
    merged = json.loads((part.parent / "report-classification.json").read_text())["records"]["4"]
    first = json.loads(part.read_text())["records"]
    assert [r["correct"][:4] for r in merged] == [r["correct"] for r in first] and merged[0]["groups"] == 4
    round1 = json.loads(part.with_name(f"{part.stem}-round1.json").read_text())["seconds"]
    assert json.loads((part.parent / "report-classification.json").read_text())["seconds"] == pytest.approx(
        part_seconds + round1, abs=0.051)
    # held-out object i is the same in a larger set (round r > 0 reads objects r·4.. of a set of 8)
    small, large = (open_split(tmp_path / f"data-heldout4x{n}", "test") for n in (4, 8))
    assert small.keys() == large.keys() and all(np.array_equal(small[key], large[key][:4]) for key in small)
    assert not any(np.array_equal(small[key], large[key][4:]) for key in ("colours", "walk"))


def test_gmn_eval_report_refuses_bad_input_in_one_line(tmp_path):
    directory = _report_dir(tmp_path)
    (directory / "report.toml").write_text((directory / "report.toml").read_text().replace('seeds = [1, 2]',
                                                                                         'seeds = [1, 1]'))  # fmt: skip
    done = run_cli("evaluate", "report", str(directory), cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.strip() == (
        f"{directory / 'report.toml'}: seeds: expected distinct training seeds, got [1, 1]")
    other = tmp_path / "other"
    other.mkdir()
    directory = _report_dir(other, split="test")
    quickstart = (REPO / "specs" / "quickstart.toml").read_text()  # a spec without test scenes
    (directory / "tiny.toml").write_text(re.sub(r"(?m)^test_scenes = \d+.*$", "test_scenes = 0", quickstart))
    text = (directory / "report.toml").read_text().replace('"data.test_scenes=6", ', "")
    (directory / "report.toml").write_text(text)
    done = run_cli("evaluate", "report", str(directory), cwd=other)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "data.test_scenes" in done.stderr
    (directory / "report.toml").write_text(text.replace("target_counts = [0, 1]", "target_counts = [1, 0]"))
    done = run_cli("evaluate", "report", str(directory), cwd=other)
    assert done.returncode == 2 and done.stderr.strip().endswith(
        "density.target_counts: expected 0 first (the fully cross-modal setting), then the counts it is compared "
        "with, got [1, 0]")  # fmt: skip
    (directory / "report.toml").write_text(text.replace("counts = [0, 3]", "counts = [3, 3]"))
    done = run_cli("evaluate", "report", str(directory), cwd=other)
    assert done.returncode == 2 and done.stderr.strip().endswith(
        "power: expected counts = [fewer, more] context views (>= 0), scenes, samples and colour_views >= 1, got "
        "counts [3, 3], scenes 6, samples 2, colour_views 3")  # fmt: skip
    (directory / "report.toml").write_text(text.replace("objects = 4\n", "objects = 4\nrounds = 0\n"))
    done = run_cli("evaluate", "report", str(directory), cwd=other)
    assert done.returncode == 2 and done.stderr.strip().endswith(
        "classification: expected rounds >= 1 and objects >= k >= 1, got rounds 0, objects 4, k 2")
    (directory / "report.toml").write_text(text.replace('spec = "tiny-b.toml"', 'spec = "tiny.toml"'))
    done = run_cli("evaluate", "report", str(directory), cwd=other)
    assert done.returncode == 2 and done.stderr.strip().endswith(
        "missing: expected one claim per spec (their evaluations share the runs' cache), got specs ['tiny.toml', "
        "'tiny.toml']")  # fmt: skip
    done = run_cli("evaluate", "report", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert done.returncode == 2 and "report.toml: no such file" in done.stderr
