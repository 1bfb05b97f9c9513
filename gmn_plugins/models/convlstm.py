"""Convolutional LSTM cell (reference §3.1), with the input convolution hoisted out of the step loop."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class ConvLSTM(nn.Module):
    """ConvLSTM cell, gates in the order input, forget, output, cell (reference §3.1).

    The gate pre-activation is one convolution, with one bias, over [x, v, h] where
    x (B, in_channels, h, w) is constant over the steps of a sequence, v (B, var_channels, h, w) changes at every
    step (var_channels may be 0) and h (B, hidden, h, w) is the hidden state. Convolution is linear, so it is
    computed as conv_x(x) + conv_h([v, h]): `input_gates` runs conv_x (with the bias) once per sequence and
    `forward` adds conv_h (no bias) at every step. The parameter count equals that of the single convolution;
    `forward_reference` is that straightforward form, kept to test the equivalence.
    """

    def __init__(self, in_channels: int, hidden: int, kernel: int, var_channels: int = 0):
        super().__init__()
        self.hidden, self.var_channels, self.padding = hidden, var_channels, kernel // 2
        self.conv_x = nn.Conv2d(in_channels, 4 * hidden, kernel, padding=self.padding)
        self.conv_h = nn.Conv2d(var_channels + hidden, 4 * hidden, kernel, padding=self.padding, bias=False)

    def input_gates(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, h, w) -> (B, 4 * hidden, h, w): the constant part of the gates, bias included."""
        return self.conv_x(x)

    def forward(self, x_gates, state=None, var=None):
        """One step. x_gates from `input_gates`; state (h, c), each (B, hidden, h, w), or None for the zero state;
        var (B, var_channels, h, w), or None when var_channels is 0 or, with a zero state, when v is zero.
        Returns the new state (h, c)."""
        if state is None:
            c = 0.0
            gates = x_gates
            if var is not None:
                gates = gates + F.conv2d(var, self.conv_h.weight[:, : self.var_channels], padding=self.padding)
        else:
            h, c = state
            gates = x_gates + self.conv_h(h if var is None else torch.cat([var, h], 1))
        return self._update(gates, c)

    def forward_reference(self, x, state=None, var=None):
        """The same step as `input_gates` + `forward`, as one convolution over cat[x, v, h] (None = zeros)."""
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
