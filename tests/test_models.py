"""Tests of the model layer (gmn_plugins.models) at tiny sizes; the v4 parameter count on the meta device."""

import math

import attrs
import pytest
import torch
import torch.nn.functional as F

from gmn_plugins.models import GMN, PRESETS, ModalityInfo, Points, Preset
from gmn_plugins.models.convdraw import Latents, sample_gaussian, sampling_temperature
from gmn_plugins.models.convlstm import ConvLSTM
from gmn_plugins.models.encoders import ImageEncoder, VectorEncoder, encode_query
from gmn_plugins.models.experts import gaussian_product
from gmn_plugins.models.gmn import _elements
from gmn_plugins.models.inference import APoE
from gmn_plugins.models.renderers import ImageRenderer, VectorRenderer

TINY = Preset(r_channels=8, hidden=8, z_channels=2, steps=2, kernel=3, decoder_width=4, vector_hidden=16)
IMAGE = ModalityInfo("cam", "image", (3, 16, 16))
VECTOR = ModalityInfo("hand", "vector", (5,))
GRID = (4, 4)
B = 3


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def points(info, per_scene):
    """Points with per_scene[b] observations in scene b."""
    scene = torch.repeat_interleave(torch.arange(len(per_scene)), torch.tensor(per_scene))
    n = scene.shape[0]
    return Points(torch.rand(n, *info.shape), torch.randn(n, 5), scene)


def test_query_encoding():
    q = torch.tensor([[1.0, 2.0, 3.0, 0.0, math.pi / 2]])
    assert torch.allclose(encode_query(q), torch.tensor([[1.0, 2.0, 3.0, 1.0, 0.0, 0.0, 1.0]]), atol=1e-6)
    with pytest.raises(ValueError):
        encode_query(torch.zeros(2, 7))


@pytest.mark.parametrize("encoder_cls,info", [(ImageEncoder, IMAGE), (VectorEncoder, VECTOR)])
def test_encoder_shapes_and_aggregation(encoder_cls, info):
    encoder = encoder_cls(info.shape, TINY, GRID)
    with torch.no_grad():
        encoder.rho.normal_()
    p = points(info, [2, 0, 3])
    q = encode_query(p.queries)
    assert encoder(p.senses, q).shape == (5, TINY.r_channels, *GRID)
    r = encoder.aggregate(p.senses, q, p.scene, B)
    assert r.shape == (B, TINY.r_channels, *GRID)
    f = encoder(p.senses, q)
    assert torch.allclose(r[0], encoder.rho + f[:2].sum(0), atol=1e-5)
    assert torch.equal(r[1], encoder.rho)  # empty context: r_m = rho_m
    assert torch.allclose(r[2], encoder.rho + f[2:].sum(0), atol=1e-5)
    empty = points(info, [0, 0, 0])
    assert torch.equal(encoder.aggregate(empty.senses, encode_query(empty.queries), empty.scene, B),
                       encoder.rho.expand(B, -1, -1, -1))


@pytest.mark.parametrize("renderer_cls,info", [(ImageRenderer, IMAGE), (VectorRenderer, VECTOR)])
def test_renderer_shapes_and_per_scene_input_conv(renderer_cls, info):
    """The z part of the input conv, computed once per scene and gathered, equals the plain ConvLSTM over
    [z copied per target, query broadcast] (reference §4.1)."""
    renderer = renderer_cls(info.shape, TINY, GRID)
    z = torch.randn(B, TINY.steps * TINY.z_channels, *GRID)
    queries, scene = encode_query(torch.randn(4, 5)), torch.tensor([2, 0, 2, 1])
    mean = renderer(z, queries, scene)
    assert mean.shape == (4, *info.shape)
    x = torch.cat([z[scene], queries[:, :, None, None].expand(-1, -1, *GRID)], 1)
    state, canvas = None, 0.0
    weight = torch.cat([renderer.lstm.conv_x.weight, renderer.lstm.conv_h.weight], 1)
    for _ in range(TINY.steps):
        h, c = state if state is not None else (torch.zeros(4, TINY.hidden, *GRID), 0.0)
        i, f, o, g = F.conv2d(torch.cat([x, h], 1), weight, renderer.lstm.conv_x.bias, padding=1).chunk(4, 1)
        c = f.sigmoid() * c + i.sigmoid() * g.tanh()
        state = (o.sigmoid() * c.tanh(), c)
        canvas = canvas + renderer.decoder(state[0])
    assert torch.allclose(mean, canvas, atol=1e-5)
    renderer.lstm.hoisted = False
    assert torch.allclose(renderer(z, queries, scene), mean, atol=1e-5)


@pytest.mark.parametrize("var_channels", [0, 3])
def test_hoisted_convlstm_equals_single_conv(var_channels):
    cell = ConvLSTM(5, 6, 3, var_channels=var_channels)
    x = torch.randn(2, 5, 7, 6)
    gates = cell.prepare(x)
    assert gates.shape == (2, 24, 7, 6)
    state = state_ref = None
    for _ in range(4):
        var = torch.randn(2, var_channels, 7, 6) if var_channels else None
        cell.hoisted = True
        state = cell(gates, state, var)
        cell.hoisted = False
        state_ref = cell(cell.prepare(x), state_ref, var)
        for a, b in zip(state, state_ref):
            assert torch.allclose(a, b, atol=1e-5)
    # parameters = one conv over [x, v, h] with one bias
    assert sum(p.numel() for p in cell.parameters()) == (5 + var_channels + 6) * 4 * 6 * 9 + 4 * 6


def test_convlstm_gate_order():
    """Gates in the order input, forget, output, cell (reference §3.1)."""
    cell = ConvLSTM(2, 3, 1)
    x, h, c = torch.randn(1, 2, 1, 1), torch.randn(1, 3, 1, 1), torch.randn(1, 3, 1, 1)
    gates = F.conv2d(torch.cat([x, h], 1), torch.cat([cell.conv_x.weight, cell.conv_h.weight], 1), cell.conv_x.bias)
    i, f, o, g = gates.sigmoid()[:, :3], gates.sigmoid()[:, 3:6], gates.sigmoid()[:, 6:9], gates[:, 9:].tanh()
    c_new = f * c + i * g
    h_new, c_out = cell(cell.prepare(x), (h, c))
    assert torch.allclose(c_out, c_new, atol=1e-6) and torch.allclose(h_new, o * c_new.tanh(), atol=1e-6)


def test_gmn_forward_generate_and_log_likelihood_shapes():
    model = GMN([IMAGE, VECTOR], TINY)
    assert model.grid == GRID
    context = [points(IMAGE, [1, 0, 2]), points(VECTOR, [0, 0, 1])]
    target = [points(IMAGE, [2, 1, 1]), points(VECTOR, [1, 2, 0])]
    out = model(context, target, B, beta=0.5)
    assert torch.isfinite(out["nll_per_dim"]) and out["nll_per_dim"] > 0.5 * math.log(2 * math.pi)
    elements = 4 * 3 * 16 * 16 + 3 * 5
    assert torch.allclose(out["nll_per_dim"], out["nll"] / elements)
    assert torch.allclose(out["loss"], (out["nll"] + 0.5 * out["kl"]) / B)
    assert out["kl"] >= 0
    ll = model.log_likelihood(context, target, B, samples=3)
    assert ll.shape == (B,) and torch.isfinite(ll).all()
    with pytest.raises(ValueError, match="every scene"):
        model.log_likelihood(context, [points(IMAGE, [1, 0, 1]), points(VECTOR, [0, 0, 1])], B)
    scene = [torch.tensor([0, 1, 2, 2]), torch.tensor([1])]
    images, vectors = model.generate(context, [torch.randn(4, 5), torch.randn(1, 5)], scene, B)
    assert images.shape == (4, 3, 16, 16) and vectors.shape == (1, 5)
    assert model.generate(context, [None, torch.randn(1, 5)], [None, scene[1]], B)[0] is None


def test_malformed_input_raises():
    model = GMN([IMAGE, VECTOR], TINY)
    good = [points(IMAGE, [1, 1, 1]), points(VECTOR, [1, 1, 1])]
    with pytest.raises(ValueError, match="one per modality"):
        model(good[:1], good, B)
    with pytest.raises(ValueError, match="scene indices"):
        model(good, good, 2)
    with pytest.raises(ValueError, match="empty"):
        model(good, [points(IMAGE, [0, 0, 0]), points(VECTOR, [0, 0, 0])], B)


def test_latent_grid_rules():
    assert GMN([IMAGE], TINY).grid == (4, 4)  # H/4 x W/4
    assert GMN([IMAGE, ModalityInfo("wide", "image", (3, 16, 32))], TINY).grid == (4, 8)  # the largest image / 4
    assert GMN([VECTOR], TINY).grid == (16, 16)
    assert GMN([VECTOR], TINY, latent_grid=(2, 3)).grid == (2, 3)
    with pytest.raises(ValueError, match="'x'.*needs 1 positive dimensions"):
        ModalityInfo("x", "vector", (3, 4))
    with pytest.raises(ValueError, match="unknown family 'audio'"):
        ModalityInfo("x", "audio", (3,))
    with pytest.raises(ValueError, match="at least 4 x 4|H, W >= 4"):
        ModalityInfo("x", "image", (3, 2, 8))


@pytest.mark.parametrize("latent_grid", [None, (3, 3)])
def test_images_of_different_sizes_share_one_latent_grid(latent_grid):
    """A 16x16 camera beside an 8x8 crop and a 12x12 (not 4x the grid) image: each encoder and renderer adapts to
    the latent grid, the outputs keep each modality's size and every parameter gets a gradient."""
    torch.manual_seed(0)
    mods = [IMAGE, ModalityInfo("crop", "image", (3, 8, 8)), ModalityInfo("gray", "image", (1, 12, 12)), VECTOR]
    model = GMN(mods, TINY, latent_grid=latent_grid)
    assert model.grid == (latent_grid or (4, 4))
    context = [points(m, [2, 1, 1]) for m in mods]
    target = [points(m, [1, 2, 1]) for m in mods]
    out = model(context, target, B)
    out["loss"].backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None and not n.endswith("rho")]
    assert not dead and torch.isfinite(out["loss"])
    queries = [torch.rand(2, 5) for _ in mods]
    rendered = model.generate(context, queries, [torch.tensor([0, 2])] * len(mods), B)
    assert [tuple(x.shape[1:]) for x in rendered] == [m.shape for m in mods]


def _params(module):
    return sum(p.numel() for p in module.parameters())


def test_apoe_one_hot_width_is_number_of_modalities():
    mods = [IMAGE, VECTOR, ModalityInfo("hand2", "vector", (4,))]
    apoe = GMN(mods, TINY).inference
    r = torch.randn(3, B, TINY.r_channels, *GRID)
    expert, scene = torch.tensor([0, 2, 1]), torch.tensor([1, 1, 0])
    rows = apoe.expert_inputs([r], expert, scene)
    assert rows.shape == (3, TINY.r_channels + 3, *GRID)
    assert torch.equal(rows[:, -3:, 0, 0], torch.eye(3)[expert])
    assert torch.equal(rows[1, : TINY.r_channels], r[2, 1])
    assert len(apoe.draw.cells) == 1
    assert apoe.draw.cells[0].q_lstm.conv_x.in_channels == 2 * TINY.r_channels + 3
    assert apoe.draw.cells[0].p_lstm.conv_x.in_channels == TINY.r_channels + 3
    difference = _params(GMN(mods, TINY)) - _params(GMN(mods, TINY, inference="baseline"))
    assert difference == 2 * len(mods) * 4 * TINY.hidden * TINY.kernel**2


def test_gaussian_product():
    mu = torch.tensor([1.0, 3.0, 5.0]).view(3, 1, 1, 1)
    logvar = torch.tensor([0.0, math.log(0.5), 0.0]).view(3, 1, 1, 1)
    scene = torch.tensor([0, 0, 1])
    mean, lv = gaussian_product(mu, logvar, scene, 3)  # precisions 1 and 2 in scene 0, 1 in scene 1
    assert torch.allclose(mean[:2].flatten(), torch.tensor([7 / 3, 5.0]), atol=1e-5)
    assert torch.allclose(lv[:2].flatten(), torch.tensor([-math.log(3), 0.0]), atol=1e-5)
    mean, lv = gaussian_product(mu, logvar, scene, 3, mask=torch.tensor([True, False, True]), unit=True)
    assert torch.allclose(mean.flatten(), torch.tensor([0.5, 2.5, 0.0]), atol=1e-5)
    assert torch.allclose(lv.flatten(), torch.tensor([-math.log(2), -math.log(2), 0.0]), atol=1e-5)


def test_kaiming_init_lets_the_image_encoder_see_its_input():
    """model.init = "kaiming": the encoders' layers get He-normal weights and zero biases; the renderers, ConvLSTMs
    and DRAW heads keep torch's. torch's default leaves the 6-layer image encoder's output
    nearly its biases' (two random images differ by ~6 % of it at init); He normal passes the input (> 40 %)."""
    mods = [ModalityInfo("rgb", "image", (3, 64, 64)), ModalityInfo("haptic", "vector", (132,))]
    images, queries = torch.rand(2, 3, 64, 64), torch.zeros(2, 7)
    change = {}
    for init in ("default", "kaiming"):
        torch.manual_seed(0)
        model = GMN(mods, TINY, init=init)
        with torch.no_grad():
            out = model.encoders[0](images, queries)
        change[init] = ((out[0] - out[1]).norm() / out.mean(0).norm()).item()
    assert change["default"] < 0.1 < 0.4 < change["kaiming"]
    for part in model.encoders:
        for name, p in part.named_parameters():
            if name.endswith("bias"):
                assert not p.any(), name
    assert model.renderers[0].decoder[0].bias.any() and model.inference.draw.cells[0].q_head.mean.bias.any()
    fan_in = model.encoders[1].fc1.weight.shape[1]
    assert abs(model.encoders[1].fc1.weight.std().item() - math.sqrt(2 / fan_in)) < 0.1 * math.sqrt(2 / fan_in)
    with pytest.raises(ValueError, match="init"):
        GMN(mods, TINY, init="xavier")


def test_sampling_temperature_scales_each_draws_noise():
    """t scales eps: t = 0.5 halves a seeded draw's distance from the mean, t = 0 gives the mean, t = 1 (the default)
    is the plain draw, and the generator advances as at t = 1 whatever t."""
    mu, logvar = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    torch.manual_seed(0)
    full, after = sample_gaussian(mu, logvar), torch.randn(1)
    torch.manual_seed(0)
    with sampling_temperature(0.5):
        half = sample_gaussian(mu, logvar)
    assert torch.equal(torch.randn(1), after)
    torch.testing.assert_close(half - mu, 0.5 * (full - mu))
    with sampling_temperature(0.0):
        assert torch.equal(sample_gaussian(mu, logvar), mu)
    torch.manual_seed(0)
    assert torch.equal(sample_gaussian(mu, logvar), full)  # the block has ended
    with pytest.raises(ValueError, match="temperature must be >= 0"), sampling_temperature(-0.1):
        pass


def test_gaussian_product_of_mixed_precision_experts_is_float32():
    """Under CUDA's bf16 autocast the experts' means come out of a convolution in bfloat16 while ``exp`` of the
    log-variance runs in float32; the product must take both (it failed on the first GPU run: index_add_ of a
    bfloat16 total and a float32 precision)."""
    mu = torch.tensor([1.0, 3.0, 5.0]).view(3, 1, 1, 1)
    logvar = torch.tensor([0.0, math.log(0.5), 0.0]).view(3, 1, 1, 1)
    scene = torch.tensor([0, 0, 1])
    mean, lv = gaussian_product(mu.bfloat16(), logvar, scene, 2, unit=True)
    assert mean.dtype == lv.dtype == torch.float32
    assert torch.allclose(mean.flatten(), torch.tensor([7 / 4, 2.5]), atol=1e-5)


def test_present_experts_with_empty_context_give_unit_prior():
    """experts="present": no modality in the context -> the prior is the N(0, I) expert alone at every step,
    so z = eps exactly. experts="all" multiplies M context-free experts instead (reference §3.4)."""
    r = torch.randn(2, B, TINY.r_channels, *GRID)
    no_context = torch.zeros(2, B, dtype=torch.bool)
    shape = (B, TINY.z_channels, *GRID)
    present = APoE(2, TINY, "present")
    torch.manual_seed(1)
    z = present.prior(r, no_context).z
    torch.manual_seed(1)
    assert torch.equal(z, torch.cat([torch.randn(shape) for _ in range(TINY.steps)], 1))
    with pytest.raises(ValueError):
        APoE(2, TINY, "some")


def test_all_experts_step_one_prior_is_the_head_bias():
    """experts="all": at step 1 every prior expert is the head bias (h_p = 0), so the product of the M = 2
    experts has that mean and half that variance (reference §3.1, §3.4 step-1 quirk)."""
    apoe = APoE(2, TINY, "all")
    r = torch.randn(2, B, TINY.r_channels, *GRID)
    torch.manual_seed(1)
    z1 = apoe.prior(r, torch.zeros(2, B, dtype=torch.bool)).z[:, : TINY.z_channels]
    torch.manual_seed(1)
    eps = torch.randn(B, TINY.z_channels, *GRID)
    head = apoe.draw.cells[0].p_head
    expected = head.mean.bias.view(1, -1, 1, 1) + (0.5 * (head.logvar.bias.view(1, -1, 1, 1) - math.log(2))).exp() * eps
    assert torch.allclose(z1, expected, atol=1e-5)


def test_present_experts_posterior_and_prior_sets(monkeypatch):
    """experts="present": the prior multiplies only context experts (plus N(0, I)); the posterior also the
    target-only ones (paper Eq. 2 and 5)."""
    apoe = APoE(2, TINY, "present")
    r, t = torch.randn(2, 2, 2, TINY.r_channels, *GRID).unbind(0)
    in_context = torch.tensor([[True, False], [False, False]])  # scene 1 has no context
    in_target = torch.tensor([[False, True], [True, True]])
    seen = {}
    monkeypatch.setattr(apoe.draw, "posterior", lambda xq, xp, groups, scene, combine_q, combine_p: seen.update(locals()))
    apoe.posterior(r, t, in_context, in_target)
    assert seen["scene"].tolist() == [0, 1, 0, 1]  # pairs (m, b) of context | target, expert-major
    expert_mu = torch.full((4, TINY.z_channels, *GRID), 3.0)
    mu_p, logvar_p = seen["combine_p"](expert_mu, torch.zeros_like(expert_mu))
    assert torch.allclose(mu_p[0], torch.tensor(1.5)) and torch.allclose(logvar_p[0], torch.tensor(-math.log(2)))
    assert torch.equal(mu_p[1], torch.zeros_like(mu_p[1])) and torch.equal(logvar_p[1], torch.zeros_like(mu_p[1]))
    mu_q, logvar_q = seen["combine_q"](expert_mu, torch.zeros_like(expert_mu))
    assert torch.allclose(mu_q, torch.tensor(2.0)) and torch.allclose(logvar_q, torch.tensor(-math.log(3)))


def test_posterior_reads_the_previous_prior_state():
    """h_q^t = LSTM_q([input_q, h_p^{t-1}]) (reference §3.1): changing only the prior LSTM leaves z_1 and
    changes z_2."""
    apoe = APoE(2, TINY, "all")
    r, t = torch.randn(2, 2, B, TINY.r_channels, *GRID).unbind(0)
    mask = torch.ones(2, B, dtype=torch.bool)
    torch.manual_seed(1)
    z = apoe.posterior(r, t, mask, mask).z
    with torch.no_grad():
        apoe.draw.cells[0].p_lstm.conv_x.bias.add_(1.0)
    torch.manual_seed(1)
    z_changed = apoe.posterior(r, t, mask, mask).z
    k = TINY.z_channels
    assert torch.equal(z[:, :k], z_changed[:, :k]) and not torch.allclose(z[:, k:], z_changed[:, k:])


def test_posterior_pass_prior_comes_before_the_update():
    """One step: the prior is the head bias (h_p = 0), so the KL ignores the prior LSTM (reference §3.1)."""
    apoe = APoE(2, attrs.evolve(TINY, steps=1), "all")
    r, t = torch.randn(2, 2, B, TINY.r_channels, *GRID).unbind(0)
    mask = torch.ones(2, B, dtype=torch.bool)
    torch.manual_seed(1)
    kl = apoe.posterior(r, t, mask, mask).kl
    with torch.no_grad():
        apoe.draw.cells[0].p_lstm.conv_x.bias.add_(1.0)
    torch.manual_seed(1)
    assert torch.equal(kl, apoe.posterior(r, t, mask, mask).kl)


def test_log_likelihood_weights(monkeypatch):
    """w_s = log p(X | V, z_s) + log p(z_s | C) - log q(z_s | C, O), per target dimension (reference §6.1)."""
    model = GMN([IMAGE, VECTOR], TINY)
    context = [points(IMAGE, [1, 0, 2]), points(VECTOR, [0, 0, 1])]
    target = [points(IMAGE, [2, 1, 1]), points(VECTOR, [1, 2, 0])]
    fixed = Latents(torch.zeros(B, TINY.steps * TINY.z_channels, *GRID), torch.zeros(B), torch.tensor([-1.0, 2.0, 0.5]))
    monkeypatch.setattr(model.inference, "posterior", lambda *args: fixed)
    nll, elements = model._nll(fixed.z, target, B), _elements(target, B)
    expected = (fixed.log_ratio - nll) / elements
    assert torch.allclose(model.log_likelihood(context, target, B, samples=2), expected, atol=1e-5)
    assert elements.tolist() == [2 * 768 + 5, 768 + 10, 768]


@pytest.mark.parametrize("inference", ["apoe", "baseline", "poe"])
@pytest.mark.parametrize("options", [{}, {"first_step_prior": "context", "stochastic_representation": True,
                                          "vector_projection": "light"}])
def test_gradients_reach_every_parameter(inference, options):
    model = GMN([IMAGE, VECTOR], TINY, inference=inference, **options)
    context = [points(IMAGE, [1, 2, 1]), points(VECTOR, [2, 1, 1])]
    target = [points(IMAGE, [1, 1, 2]), points(VECTOR, [1, 2, 1])]
    model(context, target, B)["loss"].backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


# ---- paper Table 1 parameter counts (reference §8.1), on the meta device ----

def table1_modalities(m):
    """The four environments of reference §1.1: |M| = 2, 5, 8, 14."""
    if m == 2:
        return [ModalityInfo("image", "image", (3, 64, 64)), ModalityInfo("haptic", "vector", (132,))]
    if m == 5:
        return [ModalityInfo(f"image{k}", "image", (3, 32, 32)) for k in range(4)] + [
            ModalityInfo("haptic", "vector", (132,))]
    size = {8: (1, 48, 24), 14: (1, 24, 24)}[m]
    return [ModalityInfo(f"image{k}", "image", size) for k in range(m - 2)] + [
        ModalityInfo("haptics1", "vector", (61,)), ModalityInfo("haptics2", "vector", (71,))]


# Reference §8.1 (authors' code) minus the 7 unused init_query parameters per modality.
TABLE1 = {
    "baseline": {2: 52_655_603, 5: 28_470_812, 8: 48_294_102, 14: 51_177_756},
    "apoe": {2: 52_681_203, 5: 28_534_812, 8: 48_396_502, 14: 51_356_956},
    "poe": {2: 58_838_527, 5: 53_202_508, 8: 91_574_570, 14: 131_555_768},
}
V4_CELL = (640 * 256 * 25 + 256) + (323 * 256 * 25 + 256) + 4 * (64 * 3 * 25 + 3)  # one posterior + prior pair


@pytest.mark.parametrize("inference", list(TABLE1))
@pytest.mark.parametrize("m", [2, 5, 8, 14])
def test_v4_parameter_counts(inference, m):
    with torch.device("meta"):
        model = GMN(table1_modalities(m), PRESETS["v4"], inference=inference)
    assert _params(model) == TABLE1[inference][m]
    assert _params(model.inference) == {"baseline": V4_CELL, "apoe": V4_CELL + 2 * m * 256 * 25,
                                        "poe": m * V4_CELL}[inference]


def test_v4_option_parameter_deltas():
    """first_step_prior and hoisted add nothing; stochastic_representation adds (2r + 2) r per modality;
    the light projection removes 33,357,312 per vector modality at 16x16 (encoders.VectorEncoder)."""
    mods, v4 = table1_modalities(2), PRESETS["v4"]
    with torch.device("meta"):
        base = _params(GMN(mods, v4))
        assert _params(GMN(mods, v4, first_step_prior="context", hoisted=False, amortizer="loop")) == base
        assert _params(GMN(mods, v4, stochastic_representation=True)) - base == 2 * (2 * 256 + 2) * 256
        light = GMN(mods, v4, vector_projection="light")
    assert base - _params(light) == 33_357_312
    assert _params(light.encoders[1].out) + light.encoders[1].position.numel() + _params(light.encoders[1].mix) \
        == 513 * 256 + 256 * 256 + 257 * 256


# ---- PoE ----

def test_poe_has_one_cell_pair_per_modality():
    mods = [IMAGE, VECTOR, ModalityInfo("hand2", "vector", (4,))]
    poe, baseline = GMN(mods, TINY, inference="poe"), GMN(mods, TINY, inference="baseline")
    cell = _params(baseline.inference)
    assert len(poe.inference.draw.cells) == 3
    assert _params(poe) - _params(baseline) == 2 * cell
    assert poe.inference.draw.cells[0].q_lstm.conv_x.in_channels == 2 * TINY.r_channels  # no one-hot


def test_poe_shapes_and_each_expert_uses_its_own_cells():
    model = GMN([IMAGE, VECTOR], TINY, inference="poe")
    context = [points(IMAGE, [1, 0, 2]), points(VECTOR, [0, 0, 0])]
    target = [points(IMAGE, [2, 1, 1]), points(VECTOR, [0, 0, 0])]  # the vector modality is absent
    torch.manual_seed(1)
    out = model(context, target, B)
    assert torch.isfinite(out["loss"]) and out["kl"] >= 0
    assert model.log_likelihood(context, target, B, samples=2).shape == (B,)
    assert model.generate(context, [torch.randn(2, 5), None], [torch.tensor([0, 2]), None], B)[0].shape == (2, 3, 16, 16)
    with torch.no_grad():  # experts="present": the absent modality's cells take no part
        model.inference.draw.cells[1].q_lstm.conv_x.bias.add_(1.0)
    torch.manual_seed(1)
    assert torch.equal(model(context, target, B)["loss"], out["loss"])
    with torch.no_grad():
        model.inference.draw.cells[0].q_lstm.conv_x.bias.add_(1.0)
    torch.manual_seed(1)
    assert not torch.equal(model(context, target, B)["loss"], out["loss"])


# ---- options ----

def _context_target():
    context = [points(IMAGE, [1, 0, 2]), points(VECTOR, [2, 1, 0])]
    target = [points(IMAGE, [2, 1, 1]), points(VECTOR, [1, 2, 1])]
    return context, target


@pytest.mark.parametrize("inference", ["apoe", "baseline", "poe"])
def test_first_step_prior(inference):
    """"bias": the step-1 prior (hence z_1 drawn from it) ignores the context; "context": it depends on it."""
    r = torch.randn(2, B, TINY.r_channels, *GRID)
    in_context = torch.ones(2, B, dtype=torch.bool)
    for mode, depends in [("bias", False), ("context", True)]:
        model = GMN([IMAGE, VECTOR], TINY, inference=inference, experts="all", first_step_prior=mode)
        z1 = []
        for reps in (r, r + 1.0):
            torch.manual_seed(1)
            z1.append(model.inference.prior(reps, in_context).z[:, : TINY.z_channels])
        assert torch.equal(z1[0], z1[1]) != depends
    with pytest.raises(ValueError, match="first_step_prior"):
        GMN([IMAGE], TINY, first_step_prior="zero")


@pytest.mark.parametrize("inference", ["apoe", "baseline", "poe"])
def test_stochastic_representation_adds_its_kl(inference, monkeypatch):
    """Paper Eq. 3: r_m latent, KL(q(r | C u O) || p(r | C)) > 0 added to the KL and to the IWAE weights."""
    context, target = _context_target()
    for stochastic in (False, True):
        model = GMN([IMAGE, VECTOR], TINY, inference=inference, stochastic_representation=stochastic)
        zero = Latents(torch.zeros(B, TINY.steps * TINY.z_channels, *GRID), torch.zeros(B), torch.zeros(B))
        monkeypatch.setattr(model.inference, "posterior", lambda *args: zero)
        kl = model(context, target, B)["kl"]
        assert (kl > 0) == stochastic
        nll, elements = model._nll(zero.z, target, B), _elements(target, B)
        ll = model.log_likelihood(context, target, B, samples=1)
        assert torch.allclose(ll, -nll / elements, atol=1e-5) != stochastic
    monkeypatch.undo()
    assert torch.isfinite(model(context, target, B)["loss"])
    assert model.generate(context, [torch.randn(1, 5), None], [torch.tensor([1]), None], B)[0].shape == (1, 3, 16, 16)


def test_light_vector_projection():
    dense, light = GMN([VECTOR], TINY, latent_grid=GRID), GMN([VECTOR], TINY, latent_grid=GRID, vector_projection="light")
    r, v, hw = TINY.r_channels, TINY.vector_hidden, GRID[0] * GRID[1]
    assert _params(dense) - _params(light) == (v + 1) * r * hw - ((v + 1) * r + r * hw + (r + 1) * r)
    p = points(VECTOR, [1, 2, 0])
    assert light.encoders[0](p.senses, encode_query(p.queries)).shape == (3, r, *GRID)
    with pytest.raises(ValueError, match="vector_projection"):
        GMN([VECTOR], TINY, vector_projection="sparse")


def test_bad_options_raise():
    with pytest.raises(ValueError, match="inference"):
        GMN([IMAGE], TINY, inference="moe")
    with pytest.raises(ValueError, match="amortizer"):
        GMN([IMAGE], TINY, amortizer="loop", inference="poe")
    with pytest.raises(ValueError, match="amortizer"):
        GMN([IMAGE], TINY, amortizer="grouped")


# ---- hoisted vs straightforward, batched vs per-expert loop (same weights, same noise) ----

def _twin(model, **kwargs):
    """A GMN with the same modalities and weights as `model`, built with other execution options."""
    other = GMN(model.modalities, model.preset, **kwargs)
    other.load_state_dict(model.state_dict())
    return other


def _run(model, context, target):
    torch.manual_seed(7)
    out = model(context, target, B)
    torch.manual_seed(7)
    ll = model.log_likelihood(context, target, B, samples=2)
    return torch.stack([out["nll"], out["kl"]]), ll


@pytest.mark.parametrize("inference,options", [
    ("apoe", {}), ("baseline", {}), ("poe", {}),
    ("apoe", {"experts": "all", "first_step_prior": "context", "stochastic_representation": True}),
    ("poe", {"first_step_prior": "context", "vector_projection": "light"}),
])
def test_hoisted_equals_straightforward_with_fewer_flops(inference, options):
    from torch.utils.flop_counter import FlopCounterMode

    context, target = _context_target()
    kwargs = dict(inference=inference, **options)
    model = GMN([IMAGE, VECTOR], TINY, **kwargs)
    reference = _twin(model, hoisted=False, **kwargs)
    for a, b in zip(_run(model, context, target), _run(reference, context, target)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    flops = []
    for m in (model, reference):
        with FlopCounterMode(display=False) as counter:
            m(context, target, B)["loss"].backward()
        flops.append(counter.get_total_flops())
    assert flops[0] < flops[1]


@pytest.mark.parametrize("experts", ["present", "all"])
def test_batched_apoe_equals_per_expert_loop(experts):
    context = [points(IMAGE, [1, 0, 2]), points(VECTOR, [0, 0, 1])]
    target = [points(IMAGE, [2, 1, 0]), points(VECTOR, [1, 2, 1])]
    model = GMN([IMAGE, VECTOR], TINY, experts=experts)
    loop = _twin(model, experts=experts, amortizer="loop")
    for a, b in zip(_run(model, context, target), _run(loop, context, target)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    scene = [torch.tensor([0, 2]), None]
    torch.manual_seed(3)
    g = model.generate(context, [torch.randn(2, 5), None], scene, B)[0]
    torch.manual_seed(3)
    torch.testing.assert_close(g, loop.generate(context, [torch.randn(2, 5), None], scene, B)[0], rtol=1e-5, atol=1e-5)


def test_balanced_kl_keeps_the_value_and_shares_the_gradient_between_prior_and_posterior():
    """KL balancing (train.kl_balance): the value is the KL's; the gradient reaches the prior 2 * balance and the
    posterior 2 * (1 - balance) times the KL's own; 0.5 is the KL itself."""
    from gmn_plugins.models.experts import balanced_kl, gaussian_kl

    g = torch.Generator().manual_seed(0)
    tensors = [torch.randn(2, 3, 4, 4, generator=g) for _ in range(4)]

    def grads(fn, *args):
        leaves = [t.clone().requires_grad_() for t in tensors]
        value = fn(*leaves, *args)
        value.sum().backward()
        return value.detach(), [leaf.grad for leaf in leaves]

    kl, plain = grads(gaussian_kl)
    for balance in (0.0, 0.5, 0.8, 1.0):
        value, balanced = grads(balanced_kl, balance)
        torch.testing.assert_close(value, kl)
        for grad, own, share in zip(balanced, plain, (1 - balance, 1 - balance, balance, balance)):
            torch.testing.assert_close(grad, 2 * share * own)  # mu_q, logvar_q, then mu_p, logvar_p


def test_prior_nll_weight_adds_the_prior_renders_nll_and_trains_the_prior_heads():
    """train.prior_nll_weight w (issue 28, Sohn et al. 2015's hybrid objective): the ELBO's terms are unchanged (its
    draws come first), the loss gains w * NLL of the targets rendered from z ~ P(z | C) / B, and at beta = 0 only
    that term reaches the prior's Gaussian heads (the ELBO's prior enters through the KL alone)."""
    context, target = [points(IMAGE, [1, 2, 0]), points(VECTOR, [2, 0, 1])], [points(IMAGE, [2, 1, 1]),
                                                                               points(VECTOR, [1, 1, 1])]
    torch.manual_seed(0)
    model = GMN([IMAGE, VECTOR], TINY, latent_grid=GRID, renderer_context="mean")
    heads = [p for n, p in model.named_parameters() if ".p_head." in n]
    results = {}
    for weight in (0.0, 2.0):
        model.zero_grad()
        torch.manual_seed(1)
        results[weight] = model(context, target, B, beta=0.0, prior_nll_weight=weight)
        results[weight]["loss"].backward()
        results[weight]["head_grad"] = sum(p.grad.abs().sum() for p in heads if p.grad is not None)
    plain, hybrid = results[0.0], results[2.0]
    assert "nll_prior" not in plain
    torch.testing.assert_close(hybrid["nll"], plain["nll"])
    torch.testing.assert_close(hybrid["kl"], plain["kl"])
    torch.testing.assert_close(hybrid["loss"], plain["loss"] + 2.0 * hybrid["nll_prior"] / B)
    assert abs(hybrid["nll_prior"] - hybrid["nll"]) > 1e-3  # its own draws, not the posterior's
    assert plain["head_grad"] == 0 and hybrid["head_grad"] > 0


# ---- initialisation (issue 27) ----

@pytest.mark.parametrize("inference,cells", [("baseline", 4), ("apoe", 4), ("poe", 6)])
def test_convlstm_init_is_one_gate_convolution(inference, cells):
    """Every ConvLSTM of a v4 m2 model draws conv_x (weight, bias) and conv_h as one nn.Conv2d over [x, v, h] would:
    std 1/sqrt(3 fan_in), fan_in = (in + var + hidden) k², within 10 % per tensor (the authors' init)."""
    model = GMN(table1_modalities(2), PRESETS["v4"], inference=inference, experts="all")
    lstms = [m for m in model.modules() if isinstance(m, ConvLSTM)]
    assert len(lstms) == cells  # DRAW posterior + prior per expert (one shared for baseline/APoE), 2 renderers
    for lstm in lstms:
        fan_in = (lstm.conv_x.in_channels + lstm.conv_h.in_channels) * math.prod(lstm.conv_x.kernel_size)
        want = 1 / math.sqrt(3 * fan_in)
        for tensor in (lstm.conv_x.weight, lstm.conv_x.bias, lstm.conv_h.weight):
            assert abs(tensor.std().item() / want - 1) < 0.10, (tensor.shape, tensor.std().item(), want)
            assert tensor.abs().max().item() <= math.sqrt(3) * want + 1e-7  # uniform within ±1/sqrt(fan_in)


def test_convlstm_init_draws_as_the_single_convolution():
    torch.manual_seed(3)
    lstm = ConvLSTM(6, 4, 3, var_channels=2)
    torch.manual_seed(3)
    single = torch.nn.Conv2d(6 + 2 + 4, 16, 3, padding=1)
    assert torch.equal(torch.cat([lstm.conv_x.weight, lstm.conv_h.weight], 1), single.weight)
    assert torch.equal(lstm.conv_x.bias, single.bias)
    assert set(lstm.state_dict()) == {"conv_x.weight", "conv_x.bias", "conv_h.weight"}  # old checkpoints load


def test_mean_aggregate_pools_each_scene_by_its_count():
    """model.aggregate = "mean" (issue 28): r_m = rho_m + the mean of f_m over the scene's points; empty = rho_m."""
    encoder = ImageEncoder(IMAGE.shape, TINY, GRID)
    encoder.aggregate_mode = "mean"
    with torch.no_grad():
        encoder.rho.normal_()
    p = points(IMAGE, [2, 0, 3])
    q = encode_query(p.queries)
    f = encoder(p.senses, q)
    r = encoder.aggregate(p.senses, q, p.scene, B)
    assert torch.allclose(r[0], encoder.rho + f[:2].mean(0), atol=1e-5)
    assert torch.equal(r[1], encoder.rho)
    assert torch.allclose(r[2], encoder.rho + f[2:].mean(0), atol=1e-5)
    model = GMN([IMAGE, VECTOR], TINY, aggregate="mean", latent_grid=GRID)
    assert all(e.aggregate_mode == "mean" for e in model.encoders)
    assert all(e.aggregate_mode == "sum" for e in GMN([IMAGE, VECTOR], TINY, latent_grid=GRID).encoders)
    with pytest.raises(ValueError, match="aggregate"):
        GMN([IMAGE, VECTOR], TINY, aggregate="max")


def test_shallow_target_encoder_feeds_the_posterior_and_leaves_the_context_path():
    """model.target_encoder = "shallow" (issue 28): t_m from each family's shallow encoder, r_m as before; the
    default builds no extra parameters."""
    from gmn_plugins.models.encoders import ShallowImageEncoder, ShallowVectorEncoder

    torch.manual_seed(0)
    shared = GMN([IMAGE, VECTOR], TINY, latent_grid=GRID)
    torch.manual_seed(0)
    shallow = GMN([IMAGE, VECTOR], TINY, latent_grid=GRID, target_encoder="shallow", aggregate="mean")
    assert shared.target_encoders is None
    assert [type(e) for e in shallow.target_encoders] == [ShallowImageEncoder, ShallowVectorEncoder]
    extra = sum(p.numel() for p in shallow.target_encoders.parameters())
    assert sum(p.numel() for p in shallow.parameters()) == sum(p.numel() for p in shared.parameters()) + extra
    context, target = [points(IMAGE, [1, 2, 0]), points(VECTOR, [2, 0, 1])], [points(IMAGE, [2, 1, 1]),
                                                                               points(VECTOR, [1, 1, 1])]
    r, t, _, _ = shallow._represent(context, target, B)
    images = target[0]
    f = shallow.target_encoders[0](images.senses, encode_query(images.queries))
    assert f.shape == (4, TINY.r_channels, *GRID)
    assert torch.allclose(t[0, 0], shallow.target_encoders[0].rho + f[:2].mean(0), atol=1e-5)
    assert torch.allclose(r[0, 0], shallow.encoders[0].aggregate(*[x[:1] for x in (context[0].senses,
        encode_query(context[0].queries), context[0].scene)], 1)[0], atol=1e-5)  # fmt: skip
    loss = shallow(context, target, B)["loss"]
    loss.backward()
    assert shallow.target_encoders[0].cell.weight.grad.abs().sum() > 0  # the posterior reads the shallow path
    with pytest.raises(ValueError, match="target_encoder"):
        GMN([IMAGE, VECTOR], TINY, target_encoder="deep")
    # a family without a shallow target encoder (a plugin's) reads its targets through its own encoder
    bare = ModalityInfo("hand", attrs.evolve(VECTOR.family, target_encoder=None), (5,))
    mixed = GMN([IMAGE, bare], TINY, latent_grid=GRID, target_encoder="shallow", aggregate="mean")
    assert [type(e) for e in mixed.target_encoders] == [ShallowImageEncoder, torch.nn.Identity]
    _, t, _, _ = mixed._represent(context, target, B)
    vectors = target[1]
    assert torch.allclose(t[1], mixed.encoders[1].aggregate(vectors.senses, encode_query(vectors.queries),
                                                            vectors.scene, B), atol=1e-5)  # fmt: skip
    mixed(context, target, B)["loss"].backward()


def test_renderer_context_gives_the_renderers_the_context_representation():
    """model.renderer_context = "mean" (issue 28): with the same z, what the renderers draw follows the context's
    representation (the mean over modalities of r_m); the default renders from z alone and builds no extra
    parameters."""
    torch.manual_seed(0)
    plain = GMN([IMAGE, VECTOR], TINY, latent_grid=GRID)
    torch.manual_seed(0)
    model = GMN([IMAGE, VECTOR], TINY, latent_grid=GRID, renderer_context="mean")
    per_step = -(-TINY.r_channels // TINY.steps)
    extra = TINY.r_channels * TINY.steps * per_step + TINY.steps * per_step  # the projection
    extra += sum(4 * TINY.hidden * TINY.steps * per_step * TINY.kernel ** 2 for _ in model.renderers)  # wider LSTMs
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in plain.parameters()) + extra
    context, target = [points(IMAGE, [1, 2, 0]), points(VECTOR, [2, 0, 1])], [points(IMAGE, [2, 1, 1]),
                                                                               points(VECTOR, [1, 1, 1])]
    r, _ = model.represent(context, B)
    other, _ = model.represent([points(IMAGE, [2, 1, 1]), points(VECTOR, [0, 0, 1])], B)
    z = torch.randn(B, TINY.steps * TINY.z_channels, *GRID)
    assert plain.render_input(z, r) is z
    queries, scene = encode_query(target[0].queries), target[0].scene
    one = model.renderers[0](model.render_input(z, r), queries, scene)
    two = model.renderers[0](model.render_input(z, other), queries, scene)
    assert (one - two).abs().max() > 1e-4
    loss = model(context, target, B)["loss"]
    loss.backward()
    assert model.context_projection.weight.grad.abs().sum() > 0
    assert model.encoders[0].rho.grad.abs().sum() > 0  # the renderers' path reaches the context's encoder
    with pytest.raises(ValueError, match="renderer_context"):
        GMN([IMAGE, VECTOR], TINY, renderer_context="sum")


def test_chroma_weight_weighs_the_colour_errors_of_rgb_images():
    """model.chroma_weight (issue 28): the image family's likelihood with w = 1 is the paper's Gaussian to the bit;
    with w != 1 it is the normalised Gaussian whose covariance per pixel is sigma^2 (P_lum + P_chroma / w) (checked
    against torch.distributions), so colour errors weigh w times, luminance errors as before; images of other
    channel counts and other families keep the paper's likelihood, through the GMN too."""
    from gmn_plugins.core.families import IMAGE as IMAGE_FAMILY, VECTOR as VECTOR_FAMILY

    sigma, w = 0.1, 4.0
    mean, senses = torch.rand(2, 3, 5, 5), torch.rand(2, 3, 5, 5)
    paper = IMAGE_FAMILY.nll(mean, senses, sigma)
    assert torch.equal(IMAGE_FAMILY.nll(mean, senses, sigma, chroma_weight=1.0), paper)
    weighted = IMAGE_FAMILY.nll(mean, senses, sigma, chroma_weight=w)
    assert weighted.shape == paper.shape
    lum = torch.full((3, 3), 1 / 3)
    covariance = sigma ** 2 * (lum + (torch.eye(3) - lum) / w)
    density = torch.distributions.MultivariateNormal(torch.zeros(3), covariance)
    want = -density.log_prob((senses - mean).movedim(1, -1)).sum()
    assert torch.allclose(weighted.sum(), want, rtol=1e-5)
    grey, colour = torch.full((1, 3, 2, 2), 0.05), torch.tensor([0.05, -0.05, 0.0]).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    zero = torch.zeros(1, 3, 2, 2)
    normaliser = -math.log(w) * 4  # -0.5 log w for each of the two chroma coordinates of 4 pixels
    assert torch.allclose(IMAGE_FAMILY.nll(zero, grey, sigma, chroma_weight=w).sum(),
                          IMAGE_FAMILY.nll(zero, grey, sigma).sum() + normaliser)  # fmt: skip
    quadratic = IMAGE_FAMILY.nll(zero, colour, sigma).sum() - IMAGE_FAMILY.nll(zero, zero, sigma).sum()
    assert torch.allclose(IMAGE_FAMILY.nll(zero, colour, sigma, chroma_weight=w).sum(),
                          IMAGE_FAMILY.nll(zero, zero, sigma).sum() + w * quadratic + normaliser)  # fmt: skip
    one = torch.rand(2, 1, 5, 5)
    assert torch.equal(IMAGE_FAMILY.nll(one, senses[:, :1], sigma, chroma_weight=w),
                       IMAGE_FAMILY.nll(one, senses[:, :1], sigma))  # fmt: skip
    assert IMAGE_FAMILY.likelihood_values({"chroma_weight": w, "other": 1}) == {"chroma_weight": w}
    assert VECTOR_FAMILY.likelihood_values({"chroma_weight": w}) == {}

    context, target = [points(IMAGE, [1, 2, 0]), points(VECTOR, [2, 0, 1])], [points(IMAGE, [2, 1, 1]),
                                                                               points(VECTOR, [1, 1, 1])]
    outs = []
    for options in (None, {"chroma_weight": 1.0}, {"chroma_weight": w}):
        torch.manual_seed(0)
        model = GMN([IMAGE, VECTOR], TINY, latent_grid=GRID, sigma=sigma, likelihood_options=options)
        torch.manual_seed(1)
        outs.append(model(context, target, B))
    assert torch.equal(outs[0]["loss"], outs[1]["loss"])
    assert outs[2]["nll"] != outs[0]["nll"] and torch.equal(outs[2]["kl"], outs[0]["kl"])
    vector_only = [points(IMAGE, [0, 0, 0]), target[1]]
    torch.manual_seed(0)
    plain = GMN([IMAGE, VECTOR], TINY, latent_grid=GRID, sigma=sigma)
    torch.manual_seed(0)
    model = GMN([IMAGE, VECTOR], TINY, latent_grid=GRID, sigma=sigma, likelihood_options={"chroma_weight": w})
    torch.manual_seed(1)
    a = plain(context, vector_only, B)["nll"]
    torch.manual_seed(1)
    assert torch.equal(model(context, vector_only, B)["nll"], a)  # the vector family's likelihood is untouched
    outs[2]["loss"].backward()
