"""Modality encoders f_m(x, v) with their learned rho_m (reference §2), and the shared query encoding (§1.2)."""

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..core.options import AGGREGATES, VECTOR_PROJECTIONS
from .presets import Preset

QUERY_DIM = 7  # the camera's and wrist's encoded query (gmn_plugins.mese.queries); other kinds bring their own


def encode_query(queries: torch.Tensor) -> torch.Tensor:
    """(N, 5) raw query (x, y, z, q3, q4), metres and radians -> (N, 7) [x, y, z, cos q3, sin q3, cos q4, sin q4]
    (reference §1.2; shared by cameras and wrists). Raises ValueError if the last dimension is not 5."""
    if queries.ndim != 2 or queries.shape[1] != 5:
        raise ValueError(f"queries must have shape (N, 5), got {tuple(queries.shape)}")
    angles = queries[:, 3:]
    return torch.cat([queries[:, :3], angles[:, :1].cos(), angles[:, :1].sin(),
                      angles[:, 1:].cos(), angles[:, 1:].sin()], 1)


class Encoder(nn.Module):
    """Base: per-point encoder f_m plus the learned representation offset rho_m (zero init, reference §2.3).

    ``aggregate_mode`` ("sum", the paper's; or "mean", ``model.aggregate``, set by GMN on every encoder) is how a
    scene's points are pooled."""

    def __init__(self, r_channels: int, grid: tuple[int, int]):
        super().__init__()
        self.rho = nn.Parameter(torch.zeros(r_channels, *grid))
        self.aggregate_mode = "sum"

    def aggregate(self, senses, queries, scene, num_scenes):
        """r_m = rho_m + sum (or mean, ``aggregate_mode``) over each scene's points of f_m(x, v) (reference §2.3).
        senses (N, *shape), queries (N, Q) encoded, scene (N,) int64 in [0, num_scenes) -> (num_scenes, r, h, w);
        N = 0 gives rho_m for every scene."""
        return self.aggregate_sets([(senses, queries, scene)], num_scenes)[0]

    def aggregate_sets(self, sets, num_scenes):
        """``aggregate`` of several point sets of this modality (context and target), f_m run once over all their
        points (one batch instead of one per set; the same numbers up to rounding). sets: [(senses, queries,
        scene), ...] as in ``aggregate`` -> one (num_scenes, r, h, w) per set."""
        if self.aggregate_mode not in AGGREGATES:
            raise ValueError(f"aggregate_mode must be one of {AGGREGATES}, got {self.aggregate_mode!r}")
        rho = self.rho.expand(num_scenes, *self.rho.shape)
        sizes = [senses.shape[0] for senses, _, _ in sets]
        if not sum(sizes):
            return [rho for _ in sets]
        features = self(torch.cat([s[0] for s in sets]), torch.cat([s[1] for s in sets])).to(rho.dtype)
        out = []  # float32 sums under bf16 autocast too
        for (_, _, scene), part in zip(sets, features.split(sizes)):
            if part.shape[0] and self.aggregate_mode == "mean":
                counts = torch.bincount(scene, minlength=num_scenes).clamp(min=1).to(part.dtype)
                part = part / counts[scene].view(-1, *[1] * (part.dim() - 1))
            out.append(rho.index_add(0, scene, part) if part.shape[0] else rho)
        return out


class _Residual(nn.Module):
    """main(x) + skip(x), no nonlinearity inside (reference §2.1-2.2). Both layers are linear in x, so the fused form
    (``hoisted``, the default) runs one layer (``fused``) whose weight and bias are the sums: the same numbers up
    to rounding, one call instead of two. ``hoisted = False`` runs the two layers (the straightforward form)."""

    def __init__(self, main: nn.Module, skip: nn.Module):
        super().__init__()
        self.main, self.skip = main, skip
        self.hoisted = True

    def forward(self, x):
        return self.fused(x, self.main.bias + self.skip.bias) if self.hoisted else self.main(x) + self.skip(x)


class _ResidualConv(_Residual):
    """3 x 3 conv + 1 x 1 conv, cin -> cout, on (N, cin, H, W); fused: the 1 x 1 kernel added at the 3 x 3 centre."""

    def __init__(self, cin: int, cout: int):
        super().__init__(nn.Conv2d(cin, cout, 3, padding=1), nn.Conv2d(cin, cout, 1))

    def fused(self, x, bias):
        return F.conv2d(x, self.main.weight + F.pad(self.skip.weight, (1, 1, 1, 1)), bias, padding=1)


class _ResidualLinear(_Residual):
    """Two linear layers cin -> cout on (N, cin); fused: one layer with the summed weight."""

    def __init__(self, cin: int, cout: int):
        super().__init__(nn.Linear(cin, cout), nn.Linear(cin, cout))

    def fused(self, x, bias):
        return F.linear(x, self.main.weight + self.skip.weight, bias)


def broadcast_query(query, grid):
    """(N, 7) -> (N, 7, h, w), constant over the grid (reference §1.2)."""
    return query[:, :, None, None].expand(-1, -1, *grid)


class ImageEncoder(Encoder):
    """GQN "tower" (reference §2.1): (N, C, H, W) images and (N, Q) encoded queries (Q = ``query_dim``, 7 for
    camera and wrist) -> (N, r, h, w), every layer followed by
    ReLU. The tower works at (H/4, W/4) (two stride-2 layers, floored); when that is not the latent grid (h, w), as
    for an image smaller than the experiment's largest, the output is resized to it (bilinear, no parameters).
    Raises ValueError for H or W < 4."""

    def __init__(self, shape: tuple[int, int, int], preset: Preset, grid: tuple[int, int], query_dim: int = QUERY_DIM):
        super().__init__(preset.r_channels, grid)
        channels, height, width = shape
        if height < 4 or width < 4:
            raise ValueError(f"image size {(height, width)} must be at least 4 x 4")
        r = preset.r_channels
        self.grid = tuple(grid)
        self.native = (height // 2 // 2, width // 2 // 2)
        self.conv1 = nn.Conv2d(channels, r, 2, stride=2)
        self.res1 = _ResidualConv(r, r // 2)
        self.conv2 = nn.Conv2d(r // 2, r, 2, stride=2)
        self.res2 = _ResidualConv(r + query_dim, r // 2)
        self.conv3 = nn.Conv2d(r // 2, r, 3, padding=1)
        self.conv4 = nn.Conv2d(r, r, 3, padding=1)

    def forward(self, senses, queries):
        x = F.relu(self.conv2(F.relu(self.res1(F.relu(self.conv1(senses))))))
        x = F.relu(self.res2(torch.cat([x, broadcast_query(queries, self.native)], 1)))
        x = F.relu(self.conv4(F.relu(self.conv3(x))))
        return x if self.native == self.grid else F.interpolate(x, size=self.grid, mode="bilinear", align_corners=False)


PROJECTIONS = VECTOR_PROJECTIONS  # the vector family's option (core/families.py)


class VectorEncoder(Encoder):
    """MLP encoder (reference §2.2): (N, D) vectors and (N, 7) queries -> (N, r, h, w). Layers (each + ReLU):
    D -> V, Res(V -> V/2), V/2 -> V, cat query, Res(V+7 -> V/2), V/2 -> V, then the projection onto the grid
    (V = vector_hidden):
      projection="dense" (authors' code): Linear(V -> r*h*w), (V + 1) r h w parameters (33.6M at v4, 16x16);
      projection="light" (reference §9.1 item 3, a spatial broadcast): Linear(V -> r), broadcast over the grid
      plus a learned position map (r, h, w), ReLU, 1x1 conv r -> r; (V + 1) r + r h w + (r + 1) r parameters
      (262,656 at v4, 16x16: 33,357,312 fewer per vector modality).
    ``vector_projection`` is the family's option (gmn_plugins.core.families). Raises ValueError for an unknown
    projection."""

    def __init__(self, shape: tuple[int], preset: Preset, grid: tuple[int, int], vector_projection: str = "dense",
                 query_dim: int = QUERY_DIM):  # fmt: skip
        super().__init__(preset.r_channels, grid)
        projection = vector_projection
        if projection not in PROJECTIONS:
            raise ValueError(f"vector_projection must be one of {PROJECTIONS}, got {projection!r}")
        (dim,), v, r = shape, preset.vector_hidden, preset.r_channels
        self.fc1 = nn.Linear(dim, v)
        self.res1 = _ResidualLinear(v, v // 2)
        self.fc2 = nn.Linear(v // 2, v)
        self.res2 = _ResidualLinear(v + query_dim, v // 2)
        self.fc3 = nn.Linear(v // 2, v)
        self.projection = projection
        if projection == "dense":
            self.out = nn.Linear(v, r * grid[0] * grid[1])
        else:
            self.out = nn.Linear(v, r)
            self.position = nn.Parameter(0.1 * torch.randn(r, *grid))
            self.mix = nn.Conv2d(r, r, 1)

    def forward(self, senses, queries):
        x = F.relu(self.fc2(F.relu(self.res1(F.relu(self.fc1(senses))))))
        x = F.relu(self.fc3(F.relu(self.res2(torch.cat([x, queries], 1)))))
        if self.projection == "dense":
            return F.relu(self.out(x)).view(-1, *self.rho.shape)
        x = F.relu(self.out(x))[:, :, None, None] + self.position
        return F.relu(self.mix(F.relu(x)))


class ShallowImageEncoder(Encoder):
    """The image family's shallow target encoder (``model.target_encoder = "shallow"``; GQN's inference core reads
    the target image directly): (N, C, H, W) images and (N, Q) encoded queries -> (N, r, h, w). Each latent cell's
    block of pixels (the image resized to 4h x 4w if it is not, then 4 x 4 blocks: 16 C values) with the query,
    through a per-cell MLP (1 x 1 convs 16 C + Q -> r -> r, ReLU after each): two layers between a target's pixels
    and the posterior instead of the tower's six."""

    def __init__(self, shape: tuple[int, int, int], preset: Preset, grid: tuple[int, int], query_dim: int = QUERY_DIM,
                 **_options):  # fmt: skip
        super().__init__(preset.r_channels, grid)
        self.grid = tuple(grid)
        r = preset.r_channels
        self.cell = nn.Conv2d(16 * shape[0] + query_dim, r, 1)
        self.out = nn.Conv2d(r, r, 1)

    def forward(self, senses, queries):
        size = (4 * self.grid[0], 4 * self.grid[1])
        if tuple(senses.shape[-2:]) != size:
            senses = F.interpolate(senses, size=size, mode="bilinear", align_corners=False)
        x = torch.cat([F.pixel_unshuffle(senses, 4), broadcast_query(queries, self.grid)], 1)
        return F.relu(self.out(F.relu(self.cell(x))))


class ShallowVectorEncoder(Encoder):
    """The vector family's shallow target encoder: (N, D) vectors and (N, Q) queries -> (N, r, h, w), an MLP
    (D + Q -> V -> r, ReLU after each; V = vector_hidden) broadcast over the grid plus a learned position map."""

    def __init__(self, shape: tuple[int], preset: Preset, grid: tuple[int, int], query_dim: int = QUERY_DIM,
                 **_options):  # fmt: skip
        super().__init__(preset.r_channels, grid)
        (dim,), v, r = shape, preset.vector_hidden, preset.r_channels
        self.hidden = nn.Linear(dim + query_dim, v)
        self.out = nn.Linear(v, r)
        self.position = nn.Parameter(torch.zeros(r, *grid))

    def forward(self, senses, queries):
        x = F.relu(self.out(F.relu(self.hidden(torch.cat([senses, queries], 1)))))
        return F.relu(x[:, :, None, None] + self.position)


class RepresentationGaussian(nn.Module):
    """Gaussian over the modality representation r_m given an aggregated representation (paper Eq. 3, used
    when r_m is a latent): a 1x1 conv r -> 2r gives (mu, logvar), each (B, r, h, w); (2r + 2) r parameters
    (131,584 at v4). The same head gives p(r_m | C_m) from the context aggregate and q(r_m | C_m u O_m) from
    the context-and-target aggregate."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, 2 * channels, 1)

    def forward(self, aggregate):
        """(B, r, h, w) -> (mu, logvar)."""
        return self.conv(aggregate).chunk(2, 1)
