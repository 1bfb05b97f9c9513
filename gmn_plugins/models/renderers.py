"""Renderers: the mean of P(x | v, z) for one modality at target queries (reference §4.1-4.2)."""

import torch
import torch.nn as nn
import torch.nn.functional as F

from .convlstm import ConvLSTM
from .encoders import QUERY_DIM, broadcast_query
from .presets import Preset


class Renderer(nn.Module):
    """Base: a ConvLSTM over [z_1..T, query] run for `steps` steps; canvas = sum over steps of decoder(h_s),
    where subclasses set `decoder`.

    z comes once per scene, (B, T*z, h, w). Hoisted (lstm.hoisted, default): the input convolution is linear,
    so its z part (with the bias) is computed once per scene and gathered per target, its query part once per
    target, the steps add only the conv over h, and the decoder runs once over the T hidden states stacked
    (T*N, hidden, h, w). Straightforward (lstm.hoisted = False): z is copied to every
    target and the single convolution runs over [z, query, h] at every step. Same numbers up to rounding.
    A subclass whose decoder is an ``nn.Sequential`` ending in a linear layer (nothing after it) sets
    ``linear_last_layer``: the hoisted form then sums the T steps before that layer, which runs once on (N, ...)
    instead of (T*N, ...), with T times its bias (a linear layer commutes with the sum).
    """

    linear_last_layer = False

    def __init__(self, preset: Preset, grid: tuple[int, int], query_dim: int = QUERY_DIM):
        super().__init__()
        self.steps, self.grid = preset.steps, tuple(grid)
        self.z_channels = preset.steps * preset.z_channels
        self.lstm = ConvLSTM(self.z_channels + query_dim, preset.hidden, preset.kernel)

    def forward(self, z, queries, scene):
        """z (B, T*z, h, w), queries (N, Q) encoded, scene (N,) int64 in [0, B) -> mean (N, *shape)."""
        query_map = broadcast_query(queries, self.grid)
        if self.lstm.hoisted:
            conv = self.lstm.conv_x
            gates_z = F.conv2d(z, conv.weight[:, : self.z_channels], conv.bias, padding=conv.padding)
            prepared = gates_z[scene] + F.conv2d(query_map, conv.weight[:, self.z_channels :], padding=conv.padding)
        else:
            prepared = torch.cat([z[scene], query_map], 1)
        state, hidden, canvas = None, [], 0.0
        for _ in range(self.steps):
            state = self.lstm(prepared, state)
            if self.lstm.hoisted:
                hidden.append(state[0])
            else:
                canvas = canvas + self.decoder(state[0])
        if hidden and not self.linear_last_layer:  # one decoder call over the T hidden states
            return self.decoder(torch.cat(hidden)).unflatten(0, (self.steps, -1)).sum(0)
        if hidden:  # ... and the last, linear layer once, on the sum over steps
            last = self.decoder[-1]
            out = last(self.decoder[:-1](torch.cat(hidden)).unflatten(0, (self.steps, -1)).sum(0))
            return out if last.bias is None else out + (self.steps - 1) * last.bias.view(-1, *[1] * (out.dim() - 2))
        return canvas


class ImageRenderer(Renderer):
    """Image canvas (reference §4.1): decoder conv5x5 (hidden -> W) + ReLU, ConvTranspose 4x4 s2 (W -> 2W) + ReLU,
    ConvTranspose 4x4 s2 (2W -> C), W = decoder_width; no output nonlinearity (the mean is unbounded).
    The canvas is (N, C, 4h, 4w); an image of another size (H, W) gets it resized (bilinear, antialiased when
    shrinking; no parameters). Output (N, C, H, W)."""

    linear_last_layer = True  # the last ConvTranspose (Renderer: the hoisted form sums the steps before it)

    def __init__(self, shape: tuple[int, int, int], preset: Preset, grid: tuple[int, int], query_dim: int = QUERY_DIM):
        super().__init__(preset, grid, query_dim)
        channels, height, width = shape
        self.size = (height, width)
        w = preset.decoder_width
        self.decoder = nn.Sequential(
            nn.Conv2d(preset.hidden, w, 5, padding=2), nn.ReLU(),
            nn.ConvTranspose2d(w, 2 * w, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(2 * w, channels, 4, stride=2, padding=1),
        )

    def forward(self, z, queries, scene):
        canvas = super().forward(z, queries, scene)
        if tuple(canvas.shape[-2:]) == self.size:
            return canvas
        shrink = canvas.shape[-2] > self.size[0] or canvas.shape[-1] > self.size[1]
        return F.interpolate(canvas, size=self.size, mode="bilinear", align_corners=False, antialias=shrink)


class VectorRenderer(Renderer):
    """Vector canvas (reference §4.2): h_s flattened (hidden*h*w) -> V, ReLU, V -> V, ReLU, V -> D per step
    (V = vector_hidden), summed over steps. Output (N, D). ``vector_projection``: the family's option, which only
    the encoder uses."""

    linear_last_layer = True  # the last Linear (Renderer: the hoisted form sums the steps before it)

    def __init__(self, shape: tuple[int], preset: Preset, grid: tuple[int, int], vector_projection: str = "dense",
                 query_dim: int = QUERY_DIM):  # fmt: skip
        super().__init__(preset, grid, query_dim)
        (dim,), v = shape, preset.vector_hidden
        self.decoder = nn.Sequential(
            nn.Flatten(), nn.Linear(preset.hidden * grid[0] * grid[1], v), nn.ReLU(),
            nn.Linear(v, v), nn.ReLU(), nn.Linear(v, dim),
        )
