"""ConvDRAW posterior and prior cells of C-GQN, without canvas feedback (reference §3.1-3.2, §3.4)."""

import attrs
import torch
import torch.nn as nn

from .convlstm import ConvLSTM
from .experts import gaussian_kl, gaussian_log_density


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


def _sample(mu, logvar):
    return mu + (0.5 * logvar).exp() * torch.randn_like(mu)


class ConvDraw(nn.Module):
    """One posterior cell q and one prior cell p, evaluated for P "experts" at once (reference §3.1).

    Each expert row has a constant posterior input xq (P, q_channels, h, w) and prior input xp (P, p_channels, h, w)
    and belongs to a scene, scene (P,). At step t:
      h_q = LSTM_q([xq, h_p^{t-1}]);  q_t = combine_q(head_q(h_q))      (per scene)
      z_t ~ q_t (posterior pass) or z_t ~ p_t (prior pass)
      p_t = combine_p(head_p(h_p^{t-1}))   before the update, so the step-1 prior is the head bias only
      h_p^t = LSTM_p([z_t of the row's scene, xp])
    combine_q / combine_p map per-row Gaussians (P, z, h, w) to per-scene Gaussians (B, z, h, w): a product of
    experts for (A)PoE, the identity for the baseline (one row per scene).
    """

    def __init__(self, q_channels: int, p_channels: int, hidden: int, z_channels: int, steps: int, kernel: int):
        super().__init__()
        self.steps, self.hidden = steps, hidden
        self.q_lstm = ConvLSTM(q_channels, hidden, kernel, var_channels=hidden)
        self.q_head = GaussianHead(hidden, z_channels, kernel)
        self.p_lstm = ConvLSTM(p_channels, hidden, kernel, var_channels=z_channels)
        self.p_head = GaussianHead(hidden, z_channels, kernel)

    def posterior(self, xq, xp, scene, combine_q, combine_p) -> Latents:
        """z from the posterior; also the KL to the prior and log p(z) - log q(z), per scene (paper Eq. 4)."""
        gates_q, gates_p = self.q_lstm.input_gates(xq), self.p_lstm.input_gates(xp)
        state_q = state_p = None
        zs, kl, log_ratio = [], 0.0, 0.0
        for _ in range(self.steps):
            h_p = None if state_p is None else state_p[0]
            state_q = self.q_lstm(gates_q, state_q, var=h_p)
            mu_q, logvar_q = combine_q(*self.q_head(state_q[0]))
            z = _sample(mu_q, logvar_q)
            mu_p, logvar_p = combine_p(*self.p_head(self._hidden(h_p, xp)))
            state_p = self.p_lstm(gates_p, state_p, var=z[scene])
            kl = kl + gaussian_kl(mu_q, logvar_q, mu_p, logvar_p).flatten(1).sum(1)
            log_ratio = log_ratio + (
                gaussian_log_density(z, mu_p, logvar_p) - gaussian_log_density(z, mu_q, logvar_q)
            ).flatten(1).sum(1)
            zs.append(z)
        return Latents(torch.cat(zs, 1), kl, log_ratio)

    def prior(self, xp, scene, combine_p) -> Latents:
        """z from the prior alone (generation)."""
        gates_p, state_p, zs = self.p_lstm.input_gates(xp), None, []
        for _ in range(self.steps):
            h_p = None if state_p is None else state_p[0]
            z = _sample(*combine_p(*self.p_head(self._hidden(h_p, xp))))
            state_p = self.p_lstm(gates_p, state_p, var=z[scene])
            zs.append(z)
        return Latents(torch.cat(zs, 1))

    def _hidden(self, h, like):
        return h if h is not None else like.new_zeros(like.shape[0], self.hidden, *like.shape[2:])
