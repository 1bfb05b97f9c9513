"""The colour measure (gmn_plugins.evaluation.colour; issues 28 and 29): its pieces on known arrays, and the whole
measure on a trained tiny run, its truth side checked against the dataset read directly."""

import copy
import math

import numpy as np
import pytest
import torch

from gmn_plugins.core.plugins import load_registry
from gmn_plugins.evaluation.colour import SWAP, chroma, chroma_correlation, colour_transfer, object_colour
from gmn_plugins.evaluation.runs import load_run


def test_object_colour_is_the_mean_over_the_masked_pixels_of_all_images():
    images = torch.zeros(2, 3, 4, 4)
    images[0, :, :2, :2] = torch.tensor([1.0, 0.5, 0.0]).view(3, 1, 1)  # 4 object pixels
    images[1, :, 0, 0] = torch.tensor([0.0, 0.5, 1.0])  # 1 object pixel
    mask = (images.max(1, keepdim=True).values > 0.1).float()
    assert np.allclose(object_colour(images, mask), [4 / 5, 0.5, 1 / 5])


def test_chroma_and_its_correlation():
    colours = np.array([[0.9, 0.3, 0.3], [0.2, 0.8, 0.5], [0.4, 0.4, 0.9]])
    c = chroma(colours)
    assert np.allclose(c.sum(1), 0) and np.allclose(c[0], [0.4, -0.2, -0.2])
    assert chroma_correlation(c, c) == pytest.approx(1.0)
    assert chroma_correlation(c, 0.1 * c) == pytest.approx(1.0)  # a faint but right tint still correlates
    assert chroma_correlation(c, -c) == pytest.approx(-1.0)
    assert chroma_correlation(c[:, SWAP], chroma(colours[:, SWAP])) == pytest.approx(1.0)  # a model that follows a swap
    assert math.isnan(chroma_correlation(c, chroma(np.full((3, 3), 0.5))))  # exactly grey renders


def test_colour_transfer_on_a_trained_run(tiny_run_dir):
    run = load_run(tiny_run_dir, load_registry())
    scenes = run.scenes("val")
    torch.manual_seed(0)
    result = colour_transfer(run.model, scenes, num_scenes=2, context_views=5)
    assert result["scenes"] == 2
    for key in ("posterior", "posterior_swapped", "prior", "prior_swapped"):
        assert -1 <= result[f"chroma_corr_{key}"] <= 1
    rgb = [m.name for m in scenes.modalities].index("rgb")
    truth = []
    for s in range(2):  # the truth's colours from the dataset itself: views 5.. of each scene
        images = torch.as_tensor(scenes.senses(scenes.modalities[rgb], np.full(scenes.views - 5, s),
                                               np.arange(5, scenes.views)))  # fmt: skip
        truth.append(object_colour(images, (images.max(1, keepdim=True).values > 0.1).float()))
    assert result["mean_abs_chroma"]["truth"] == pytest.approx(np.abs(chroma(np.array(truth))).mean(), rel=1e-5)
    # 400 tiny steps at lr 3e-3 may leave the image encoder dead (its r then follows the query alone, and a swap or a
    # grey image moves it by exactly 0): the distances are only >= 0 there, and > 0 once the encoder is re-initialised
    assert result["encoder_other_scene"] > 0 and result["encoder_swap"] >= 0 and result["encoder_gray"] >= 0
    fresh = copy.deepcopy(run.model)
    torch.manual_seed(0)
    for module in fresh.encoders[rgb].modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    live = colour_transfer(fresh, scenes, num_scenes=2, context_views=5)
    assert live["encoder_swap"] > 0 and live["encoder_gray"] > 0 and live["encoder_other_scene"] > 0
    with pytest.raises(ValueError, match="image modality 'haptic'"):
        colour_transfer(run.model, scenes, num_scenes=1, modality="haptic")
    with pytest.raises(ValueError, match="context_views"):
        colour_transfer(run.model, scenes, num_scenes=1, context_views=scenes.views)
    # at temperature 0 the prior renders its means: its colours do not depend on the seed, the posterior's do
    cold = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        cold.append(colour_transfer(run.model, scenes, num_scenes=2, context_views=5, temperature=0.0))
    assert cold[0]["temperature"] == 0.0 and result["temperature"] == 1.0
    assert cold[0]["mean_abs_chroma"]["prior"] == cold[1]["mean_abs_chroma"]["prior"]
    assert cold[0]["mean_abs_chroma"]["posterior"] != cold[1]["mean_abs_chroma"]["posterior"]
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        colour_transfer(run.model, scenes, num_scenes=1, temperature=-1.0)
