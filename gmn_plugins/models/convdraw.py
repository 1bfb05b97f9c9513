"""ConvDRAW posterior and prior cells of C-GQN, without canvas feedback (reference §3.1-3.4)."""

import contextvars
from contextlib import contextmanager

import attrs
import torch
import torch.nn as nn

from .convlstm import ConvLSTM
from .experts import balanced_kl, gaussian_log_density
from ..core.options import FIRST_STEP_PRIORS
from .presets import Preset


@attrs.frozen(eq=False)
class Latents:
    """z: (B, steps * z_channels, h, w), the z_t of all steps concatenated in step order.
    kl: (B,) sum over steps and elements of KL(q_t || p_t) in nats (None when sampled from the prior).
    log_ratio: (B,) sum of log p(z_t | C) - log q(z_t | C, O) at the sampled z, in nats (None from the prior)."""

    z: torch.Tensor
    kl: torch.Tensor | None = None
    log_ratio: torch.Tensor | None = None


class GaussianHead(nn.Module):
    """Two separate convolutions hidden -> z_channels: mean and log-variance (not clipped) (reference §3.1)."""

    def __init__(self, hidden: int, z_channels: int, kernel: int):
        super().__init__()
        self.mean = nn.Conv2d(hidden, z_channels, kernel, padding=kernel // 2)
        self.logvar = nn.Conv2d(hidden, z_channels, kernel, padding=kernel // 2)

    def forward(self, h):
        """(P, hidden, h, w) -> (mu, logvar), each (P, z_channels, h, w)."""
        return self.mean(h), self.logvar(h)


_SLOTS: contextvars.ContextVar = contextvars.ContextVar("noise_slots", default=None)


@contextmanager
def noise_slots(total: int, index: torch.Tensor):
    """Within the block, every noise draw ``sample_gaussian`` makes is that of a global batch of ``total`` scenes,
    of which this process holds the scenes ``index`` (its (B,) int64 global slots, in its own order): each draws
    eps for all ``total`` scenes (the same on every process of a data-parallel run) and keeps its rows. So a
    scene's noise depends on (seed, step, slot) only, whatever the number of processes (issue 14)."""
    token = _SLOTS.set((int(total), index))
    try:
        yield
    finally:
        _SLOTS.reset(token)


_TEMPERATURE: contextvars.ContextVar = contextvars.ContextVar("sampling_temperature", default=1.0)


@contextmanager
def sampling_temperature(t: float):
    """Within the block, every draw of ``sample_gaussian`` is mu + t * exp(logvar / 2) * eps: t = 1 a sample (the
    default), t = 0 each Gaussian's mean (through the DRAW prior: each step's z_t the mean of P(z_t | z_<t, C), a
    deterministic render of the context), 0 < t < 1 a reduced-temperature draw. Raises ValueError for t < 0."""
    if not t >= 0:
        raise ValueError(f"the sampling temperature must be >= 0, got {t}")
    token = _TEMPERATURE.set(float(t))
    try:
        yield
    finally:
        _TEMPERATURE.reset(token)


def sample_gaussian(mu, logvar):
    """Reparameterised sample mu + exp(logvar / 2) * eps, eps ~ N(0, I): mu, logvar (B, ...) of B scenes; within
    ``noise_slots(total, index)`` eps is row ``index`` of a (total, ...) draw; within ``sampling_temperature(t)``
    eps is scaled by t (drawn all the same, so the generator advances as at t = 1)."""
    slots = _SLOTS.get()
    if slots is None:
        eps = torch.randn_like(mu)
    else:
        total, index = slots
        eps = torch.randn((total, *mu.shape[1:]), dtype=mu.dtype, device=mu.device)[index.to(mu.device)]
    t = _TEMPERATURE.get()
    return mu + (0.5 * logvar).exp() * (eps if t == 1.0 else t * eps)


class DrawCell(nn.Module):
    """One posterior cell q (LSTM_q over [xq, h_p] + head) and one prior cell p (head + LSTM_p over [z, xp])
    (reference §3.1). Parameters: (q_channels + 2 hidden) * 4 hidden * k^2 + 4 hidden for LSTM_q,
    (p_channels + z + hidden) * 4 hidden * k^2 + 4 hidden for LSTM_p, 2 (hidden * z * k^2 + z) per head."""

    def __init__(self, q_channels: int, p_channels: int, preset: Preset):
        super().__init__()
        hidden, z, k = preset.hidden, preset.z_channels, preset.kernel
        self.q_lstm = ConvLSTM(q_channels, hidden, k, var_channels=hidden)
        self.q_head = GaussianHead(hidden, z, k)
        self.p_lstm = ConvLSTM(p_channels, hidden, k, var_channels=z)
        self.p_head = GaussianHead(hidden, z, k)


def per_group(cells, groups, fn, *tensors):
    """fn(cell, *rows) -> tuple of tensors, run on consecutive row groups and concatenated along the rows.
    groups: list of (cell index, number of rows) covering all rows in order; a None tensor stays None."""
    if len(groups) == 1:
        return fn(cells[groups[0][0]], *tensors)
    outputs, start = [], 0
    for index, rows in groups:
        outputs.append(fn(cells[index], *(None if t is None else t[start : start + rows] for t in tensors)))
        start += rows
    return tuple(torch.cat(parts) for parts in zip(*outputs))


class ConvDraw(nn.Module):
    """T steps of ConvDRAW over P "expert" rows (reference §3.1-3.4), with `num_cells` independent cells.

    Each row has a constant posterior input xq (P, q_channels, h, w), prior input xp (P, p_channels, h, w) and a
    scene, scene (P,). groups = [(cell index, rows), ...] says which cell runs which consecutive rows: one group
    for the baseline and the batched APoE, one per expert for PoE (its own cells) and for the APoE loop form
    (the shared cell). At step t:
      h_q = LSTM_q([xq, h_p^{t-1}]);  q_t = combine_q(head_q(h_q))      (per scene)
      z_t ~ q_t (posterior pass) or z_t ~ p_t (prior pass)
      p_t = combine_p(head_p(h_p^{t-1}))   before the update
      h_p^t = LSTM_p([z_t of the row's scene, xp])
    combine_q / combine_p map per-row Gaussians (P, z, h, w) to per-scene Gaussians (B, z, h, w): a product of
    experts for (A)PoE, the identity for the baseline (one row per scene).

    first_step_prior="bias" (authors' code): h_p^0 = 0, so the step-1 prior is the head bias and ignores C.
    first_step_prior="context": h_p^0 = LSTM_p([0, xp]) from the zero state, one prior-LSTM update with z = 0,
    so the step-1 prior (and the step-1 posterior, which reads h_p^0) depends on the context; no parameters.
    Raises ValueError for an unknown first_step_prior.

    kl_balance: how the KL's gradient is shared between prior and posterior (``balanced_kl``; train.kl_balance sets
    it while training, 0.5 = the KL's own gradient); the KL's value never changes.
    """

    kl_balance = 0.5

    def __init__(self, num_cells: int, q_channels: int, p_channels: int, preset: Preset, first_step_prior: str):
        super().__init__()
        if first_step_prior not in FIRST_STEP_PRIORS:
            raise ValueError(f"first_step_prior must be one of {FIRST_STEP_PRIORS}, got {first_step_prior!r}")
        self.steps, self.hidden, self.first_step_prior = preset.steps, preset.hidden, first_step_prior
        self.cells = nn.ModuleList(DrawCell(q_channels, p_channels, preset) for _ in range(num_cells))

    def posterior(self, xq, xp, groups, scene, combine_q, combine_p) -> Latents:
        """z from the posterior; also the KL to the prior and log p(z) - log q(z), per scene (paper Eq. 4)."""
        return self._run(xq, xp, groups, scene, combine_q, combine_p)

    def prior(self, xp, groups, scene, combine_p) -> Latents:
        """z from the prior alone (generation)."""
        return self._run(None, xp, groups, scene, None, combine_p)

    def _run(self, xq, xp, groups, scene, combine_q, combine_p):
        def run(fn, *tensors):
            return per_group(self.cells, groups, fn, *tensors)

        prep_p = run(lambda cell, x: (cell.p_lstm.prepare(x),), xp)[0]
        state_p = run(lambda cell, x: cell.p_lstm(x), prep_p) if self.first_step_prior == "context" else None
        if xq is not None:
            prep_q, state_q = run(lambda cell, x: (cell.q_lstm.prepare(x),), xq)[0], (None, None)
        zs, kl, log_ratio = [], 0.0, 0.0
        for _ in range(self.steps):
            h_p = state_p[0] if state_p is not None else xp.new_zeros(xp.shape[0], self.hidden, *xp.shape[2:])
            mu_p, logvar_p = combine_p(*run(lambda cell, h: cell.p_head(h), h_p))
            if xq is None:
                z = sample_gaussian(mu_p, logvar_p)
            else:
                state_q = run(_q_step, prep_q, *state_q, None if state_p is None else h_p)
                mu_q, logvar_q = combine_q(*run(lambda cell, h: cell.q_head(h), state_q[0]))
                z = sample_gaussian(mu_q, logvar_q)
                kl = kl + balanced_kl(mu_q, logvar_q, mu_p, logvar_p, self.kl_balance).flatten(1).sum(1)
                log_ratio = log_ratio + (
                    gaussian_log_density(z, mu_p, logvar_p) - gaussian_log_density(z, mu_q, logvar_q)
                ).flatten(1).sum(1)
            state_p = run(_p_step, prep_p, *(state_p or (None, None)), z[scene])
            zs.append(z)
        if xq is None:
            return Latents(torch.cat(zs, 1))
        return Latents(torch.cat(zs, 1), kl, log_ratio)


def _q_step(cell, prepared, h, c, h_p):
    return cell.q_lstm(prepared, None if h is None else (h, c), h_p)


def _p_step(cell, prepared, h, c, z):
    return cell.p_lstm(prepared, None if h is None else (h, c), z)
