"""train.precision = "bf16" (issue 14): autocast of the forward pass with float32 master weights; the likelihood and
the KL stay float32, so the loss of a real (tiny) GMN under bf16 is close to its fp32 value and every gradient is
float32. The fp32 path is untouched (the quickstart's bit-identity check covers it). train.memory_format changes
the layout, train.compile and train.adam the kernels, not the values."""

import shutil

import pytest
import torch

from gmn_plugins.core.families import IMAGE, VECTOR
from gmn_plugins.models.gmn import GMN, ModalityInfo
from gmn_plugins.models.presets import PRESETS, Preset
from gmn_plugins.core.points import Points
from gmn_plugins.models.convlstm import ConvLSTM
from gmn_plugins.core.spec import TrainSpec
from gmn_plugins.training.trainer import compile_model, make_optimizer, to_memory_format
from gmn_plugins.core.options import ADAMS, COMPILES, MEMORY_FORMATS


def _points(n, shape, scenes, generator):
    return Points(torch.rand(n, *shape, generator=generator), torch.randn(n, 5, generator=generator),
                  torch.arange(n) % scenes)  # fmt: skip


def test_bf16_autocast_keeps_the_loss_close_and_the_gradients_float32():
    torch.manual_seed(0)
    tiny = Preset(r_channels=8, hidden=8, z_channels=2, steps=2, kernel=3, decoder_width=4, vector_hidden=16)
    model = GMN([ModalityInfo("rgb", IMAGE, (3, 16, 16)), ModalityInfo("touch", VECTOR, (12,))], tiny, sigma=0.5)
    g = torch.Generator().manual_seed(1)
    context = [_points(4, (3, 16, 16), 2, g), _points(3, (12,), 2, g)]
    target = [_points(4, (3, 16, 16), 2, g), _points(4, (12,), 2, g)]
    losses = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(2)  # the same posterior noise
        model.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            out = model(context, target, 2)
        assert out["loss"].dtype == torch.float32 and out["nll"].dtype == torch.float32
        out["loss"].backward()
        assert all(p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all()
                   for p in model.parameters() if p.grad is not None)  # fmt: skip
        losses[precision] = out["loss"].item()
    assert losses["fp32"] != losses["bf16"], "autocast had no effect"
    assert abs(losses["bf16"] - losses["fp32"]) < 0.02 * abs(losses["fp32"])


def _same_loss_and_gradients(names, prepare, size: int = 16):
    """Train one step of the same tiny GMN (seeded) once per option value, ``prepare(model, name)`` applied first;
    assert the losses equal to 1e-5 and the gradients to 1e-4. Returns the last model."""
    results = []
    for name in names:
        torch.manual_seed(0)
        model = GMN([ModalityInfo("rgb", IMAGE, (3, size, size)), ModalityInfo("touch", VECTOR, (12,))],
                    PRESETS["tiny"], sigma=0.5)  # fmt: skip
        prepare(model, name)
        g = torch.Generator().manual_seed(1)
        context = [_points(4, (3, size, size), 2, g), _points(3, (12,), 2, g)]
        target = [_points(4, (3, size, size), 2, g), _points(4, (12,), 2, g)]
        torch.manual_seed(2)
        out = model(context, target, 2)
        out["loss"].backward()
        results.append((out["loss"].item(), [p.grad for p in model.parameters()]))
    (loss_a, grads_a), (loss_b, grads_b) = results
    assert abs(loss_a - loss_b) <= 1e-5 * abs(loss_a)
    assert all(torch.allclose(a, b, rtol=1e-4, atol=1e-6) for a, b in zip(grads_a, grads_b))
    return model


def test_channels_last_memory_format_gives_the_contiguous_loss_and_gradients():
    """train.memory_format = "channels_last" (issue 15) changes the layout of every 4-d weight, hence of every
    convolution's activations, and nothing else: the loss and every gradient equal the contiguous model's."""

    def prepare(model, name):
        assert to_memory_format(model, name) is model
        kernels = [p for p in model.parameters() if p.dim() == 4]
        layout = torch.channels_last if name == "channels_last" else torch.contiguous_format
        assert kernels and all(p.is_contiguous(memory_format=layout) for p in kernels)
        assert any(not p.is_contiguous() for p in kernels) == (name == "channels_last")

    model = _same_loss_and_gradients(MEMORY_FORMATS, prepare, size=32)
    with pytest.raises(ValueError, match="memory_format must be one of"):
        to_memory_format(model, "nhwc")


@pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None,
                    reason="torch.compile's CPU backend needs a C++ compiler")  # fmt: skip
def test_compiled_cells_give_the_eager_loss_and_gradients():
    """train.compile = "cells" (issue 15) runs every ConvLSTM's gate update through torch.compile: a real tiny GMN
    gives the eager loss and gradients, and every cell holds the one compiled update."""

    def prepare(model, name):
        assert compile_model(model, name) is model
        updates = {id(m._update) for m in model.modules() if isinstance(m, ConvLSTM)}
        assert len(updates) == 1 and (updates == {id(ConvLSTM._update)}) == (name == "off")

    model = _same_loss_and_gradients(COMPILES, prepare)
    with pytest.raises(ValueError, match="compile must be one of"):
        compile_model(model, "graph")


def test_every_adam_implementation_makes_the_same_update():
    """train.adam (issue 15) picks torch.optim.Adam's implementation, not the update: three steps of a real tiny GMN
    under each give the same weights to rounding, and they moved (Adam steps ~lr per element)."""
    weights = {}
    for name in ADAMS:
        torch.manual_seed(0)
        model = GMN([ModalityInfo("rgb", IMAGE, (3, 16, 16)), ModalityInfo("touch", VECTOR, (12,))],
                    PRESETS["tiny"], sigma=0.5)  # fmt: skip
        before = [p.detach().clone() for p in model.parameters()]
        optimizer = make_optimizer(model.parameters(), 1e-2, name)
        assert optimizer.defaults["fused"] is (True if name == "fused" else None)
        g = torch.Generator().manual_seed(1)
        context, target = [_points(4, (3, 16, 16), 2, g), _points(3, (12,), 2, g)], \
            [_points(4, (3, 16, 16), 2, g), _points(4, (12,), 2, g)]  # fmt: skip
        for step in range(3):
            torch.manual_seed(2 + step)
            optimizer.zero_grad()
            model(context, target, 2)["loss"].backward()
            optimizer.step()
        weights[name] = [p.detach().clone() for p in model.parameters()]
        assert all((a - b).abs().max() > 1e-3 for a, b in zip(weights[name], before) if a.numel() > 1)
    for name in ADAMS[1:]:
        assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-6) for a, b in zip(weights[ADAMS[0]], weights[name]))
    with pytest.raises(ValueError, match="adam must be one of"):
        make_optimizer(model.parameters(), 1e-2, "sgd")
    assert TrainSpec().adam == "fused"  # the default, by measurement (gmn_plugins/core/spec.py)
