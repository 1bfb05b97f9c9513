"""Diagonal Gaussians: the product of experts (reference §3.3, paper §2.5), KL and log-density."""

import math

EPS = 1e-8  # precision = 1 / (variance + EPS), as the authors' code (which adds it twice)


def gaussian_product(mu, logvar, scene, num_scenes, mask=None, unit=False):
    """Precision-weighted product of Gaussian experts, grouped by scene (paper §2.5, reference §3.3).

    mu, logvar: (P, C, h, w), one row per (expert, scene) pair; scene: (P,) int64 in [0, num_scenes);
    mask: optional (P,) bool, False drops that expert from the product; unit: also multiply by a N(0, I) expert
    (precision 1, mean 0), so that a scene without experts gets N(0, I).
    Returns (mu, logvar), each (num_scenes, C, h, w) in float32 (also under bf16 autocast, where CUDA computes
    ``exp`` in float32 and the experts' means stay bfloat16): mean = sum T_m mu_m / sum T_m, variance = 1 / sum T_m.
    A scene with no expert and unit=False gets a NaN mean.
    """
    mu, logvar = mu.float(), logvar.float()
    precision = 1.0 / (logvar.exp() + EPS)
    if mask is not None:
        precision = precision * mask.to(precision.dtype).view(-1, 1, 1, 1)
    total = mu.new_full((num_scenes, *mu.shape[1:]), 1.0 if unit else 0.0).index_add(0, scene, precision)
    mean = mu.new_zeros(total.shape).index_add(0, scene, precision * mu) / total
    return mean, -total.log()


def gaussian_kl(mu_q, logvar_q, mu_p, logvar_p):
    """Elementwise KL(N(mu_q, var_q) || N(mu_p, var_p)) in nats, computed in float32 (also under bf16 autocast)."""
    mu_q, logvar_q, mu_p, logvar_p = mu_q.float(), logvar_q.float(), mu_p.float(), logvar_p.float()
    return 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p) ** 2) / logvar_p.exp() - 1.0)


def balanced_kl(mu_q, logvar_q, mu_p, logvar_p, balance: float = 0.5):
    """``gaussian_kl`` in value: elementwise nats, the four tensors of one shape, e.g. (B, z, h, w). Its gradient
    reaches the prior (mu_p, logvar_p) ``2 * balance`` times and the posterior ``2 * (1 - balance)`` times as
    strongly as the KL's own (KL balancing, Hafner et al. 2021, DreamerV2 §2: 0.8 trains the prior towards the
    posterior faster than the posterior towards the prior). 0.5 is the KL itself, the same tensor as
    ``gaussian_kl``."""
    kl = gaussian_kl(mu_q, logvar_q, mu_p, logvar_p)
    if balance == 0.5:
        return kl
    to_prior = gaussian_kl(mu_q.detach(), logvar_q.detach(), mu_p, logvar_p)
    to_posterior = gaussian_kl(mu_q, logvar_q, mu_p.detach(), logvar_p.detach())
    return kl + (2 * balance - 1) * (to_prior - to_posterior)  # the bracket is 0 in value


def gaussian_log_density(x, mu, logvar):
    """Elementwise log N(x; mu, exp(logvar)) in nats, the 0.5 log(2 pi) constant included, in float32."""
    x, mu, logvar = x.float(), mu.float(), logvar.float()
    return -0.5 * (math.log(2 * math.pi) + logvar + (x - mu) ** 2 / logvar.exp())
