"""The sequence family's networks (torch), imported only when a model is built."""

import torch
import torch.nn as nn
import torch.nn.functional as F

from gmn_plugins.plugin import Encoder, Renderer


class SequenceEncoder(Encoder):
    """(N, T, D) sequences and (N, Q) encoded queries -> (N, r, h, w): two Conv1d layers over time (D -> V -> V,
    kernel 3), mean over time, the query joined, an MLP to r, broadcast over the latent grid plus a learned position
    map (the vector family's light projection), ReLU and a 1x1 conv. V = preset.vector_hidden."""

    def __init__(self, shape, preset, grid, query_dim):
        super().__init__(preset.r_channels, grid)
        steps, channels = shape
        v, r = preset.vector_hidden, preset.r_channels
        self.conv1 = nn.Conv1d(channels, v, 3, padding=1)
        self.conv2 = nn.Conv1d(v, v, 3, padding=1)
        self.fc = nn.Linear(v + query_dim, r)
        self.position = nn.Parameter(0.1 * torch.randn(r, *grid))
        self.mix = nn.Conv2d(r, r, 1)

    def forward(self, senses, queries):
        x = F.relu(self.conv2(F.relu(self.conv1(senses.transpose(1, 2))))).mean(2)
        x = F.relu(self.fc(torch.cat([x, queries], 1)))[:, :, None, None] + self.position
        return F.relu(self.mix(F.relu(x)))


class SequenceRenderer(Renderer):
    """The shared ConvLSTM canvas: per step, h_s averaged over the grid -> Linear to (V, T) -> ReLU -> Conv1d
    (V -> D, kernel 3), summed over steps; output (N, T, D)."""

    def __init__(self, shape, preset, grid, query_dim):
        super().__init__(preset, grid, query_dim)
        steps, channels = shape
        v = preset.vector_hidden // 4
        self.decoder = _SequenceDecoder(preset.hidden, v, steps, channels)


class _SequenceDecoder(nn.Module):
    def __init__(self, hidden, width, steps, channels):
        super().__init__()
        self.width, self.steps = width, steps
        self.fc = nn.Linear(hidden, width * steps)
        self.conv = nn.Conv1d(width, channels, 3, padding=1)

    def forward(self, h):
        x = F.relu(self.fc(h.mean((2, 3)))).view(-1, self.width, self.steps)
        return self.conv(x).transpose(1, 2)
