"""Convolutional LSTM cell (reference §3.1), with the input convolution hoisted out of the step loop."""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class ConvLSTM(nn.Module):
    """ConvLSTM cell, gates in the order input, forget, output, cell (reference §3.1).

    The gate pre-activation is one convolution, with one bias, over [x, v, h] where
    x (B, in_channels, h, w) is constant over the steps of a sequence, v (B, var_channels, h, w) changes at every
    step (var_channels may be 0) and h (B, hidden, h, w) is the hidden state. The parameter count equals that of
    the single convolution, stored as conv_x (x part, with the bias) and conv_h ([v, h] part, no bias).

    hoisted=True (default): convolution is linear, so `prepare` runs conv_x once per sequence and `forward` adds
    conv_h at every step (only its v part while the state is zero).
    hoisted=False: the straightforward form, `prepare` returns x and `forward` runs the single convolution over
    cat[x, v, h] (zeros for a missing v or h) at every step. Both give the same numbers up to rounding.

    Initialisation: as the authors' single ``nn.Conv2d(in + var + hidden, 4 * hidden, kernel)`` (torch's default):
    weight and bias ~ U(±1/sqrt(fan_in)), fan_in = (in_channels + var_channels + hidden) * kernel², drawn as one
    weight tensor and then the bias (the same random draws as that convolution), then split into conv_x and conv_h.
    Two separate convolutions initialised on their own would draw each part with its own, smaller fan-in (×1.1 to
    ×2.2 the standard deviation; issue 27). ``model.init = "kaiming"`` leaves the ConvLSTMs so.
    """

    def __init__(self, in_channels: int, hidden: int, kernel: int, var_channels: int = 0):
        super().__init__()
        self.hidden, self.var_channels, self.padding = hidden, var_channels, kernel // 2
        self.hoisted = True
        # skip_init: no draws here; reset_parameters draws as the single convolution would
        self.conv_x = nn.utils.skip_init(nn.Conv2d, in_channels, 4 * hidden, kernel, padding=self.padding)
        self.conv_h = nn.utils.skip_init(nn.Conv2d, var_channels + hidden, 4 * hidden, kernel, padding=self.padding,
                                         bias=False)  # fmt: skip
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Draw weight and bias as ``nn.Conv2d(in + var + hidden, 4 * hidden, kernel)`` does (see the class)."""
        in_channels = self.conv_x.in_channels
        weight = torch.empty(4 * self.hidden, in_channels + self.conv_h.in_channels, *self.conv_x.kernel_size,
                             device=self.conv_x.weight.device, dtype=self.conv_x.weight.dtype)  # fmt: skip
        nn.init.kaiming_uniform_(weight, a=math.sqrt(5))  # torch's Conv2d default: U(±1/sqrt(fan_in))
        bound = 1 / math.sqrt(weight[0].numel())
        self.conv_x.weight.copy_(weight[:, :in_channels])
        self.conv_h.weight.copy_(weight[:, in_channels:])
        nn.init.uniform_(self.conv_x.bias, -bound, bound)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Once per sequence: (B, in_channels, h, w) -> the constant gate part conv_x(x) (B, 4 * hidden, h, w)
        with the bias (hoisted), or x itself (straightforward)."""
        return self.conv_x(x) if self.hoisted else x

    def forward(self, prepared, state=None, var=None):
        """One step. prepared from `prepare`; state (h, c), each (B, hidden, h, w), or None for the zero state;
        var (B, var_channels, h, w), or None when var_channels is 0 or v is zero. Returns the new state (h, c)."""
        if not self.hoisted:
            return self._straightforward(prepared, state, var)
        if state is None:
            c = 0.0
            gates = prepared
            if var is not None:
                gates = gates + F.conv2d(var, self.conv_h.weight[:, : self.var_channels], padding=self.padding)
        else:
            h, c = state
            gates = prepared + self.conv_h(h if var is None else torch.cat([var, h], 1))
        return self._update(gates, c)

    def _straightforward(self, x, state, var):
        n, _, height, width = x.shape
        h, c = state if state is not None else (x.new_zeros(n, self.hidden, height, width), 0.0)
        if var is None:
            var = x.new_zeros(n, self.var_channels, height, width)
        weight = torch.cat([self.conv_x.weight, self.conv_h.weight], 1)
        gates = F.conv2d(torch.cat([x, var, h], 1), weight, self.conv_x.bias, padding=self.padding)
        return self._update(gates, c)

    @staticmethod
    def _update(gates, c):
        i, f, o, g = gates.chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c
