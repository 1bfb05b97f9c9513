"""Paired bootstrap of a difference between two models, and the verdict on a claim about it (issue 11).

Each model was trained with the same training seeds and evaluated on the same units (evaluation scenes, masks or
held-out objects), so the two are paired twice: run ``s`` of model A with run ``s`` of model B, and unit ``n`` with
unit ``n``. One bootstrap replicate draws S seeds and N units with replacement, the same draw for both models, and
takes mean(A) - mean(B) over them. The 95 % interval is the 2.5 and 97.5 percentiles of the replicates.
"""

from __future__ import annotations

import numpy as np

HOLDS, FAILS, UNCLEAR = "holds", "does not hold", "not distinguishable"


def paired_bootstrap(a: np.ndarray, b: np.ndarray, replicates: int = 2000, seed: int = 0,
                     level: float = 0.95) -> dict:  # fmt: skip
    """``a``, ``b``: (S, N) per-unit values of models A and B (row s: training seed s; column n: unit n, the same
    unit for both). Returns ``{"difference", "low", "high", "a", "b", "per_seed", "seeds", "units"}``: the mean
    difference mean(a) - mean(b), its ``level`` percentile-bootstrap interval over seeds and units, both means and
    the per-seed differences. Raises ``ValueError`` for shapes that differ or are empty."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape or a.ndim != 2 or 0 in a.shape:
        raise ValueError(f"a and b must be (seeds, units) arrays of one shape, got {a.shape} and {b.shape}")
    seeds, units = a.shape
    rng = np.random.default_rng(seed)
    diff = a - b
    draws = np.empty(replicates)
    for r in range(replicates):
        rows = rng.integers(0, seeds, seeds)
        cols = rng.integers(0, units, units)
        draws[r] = diff[np.ix_(rows, cols)].mean()
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return {"difference": float(diff.mean()), "low": float(low), "high": float(high), "a": float(a.mean()),
            "b": float(b.mean()), "per_seed": diff.mean(1).tolist(), "seeds": seeds, "units": units}  # fmt: skip


def verdict(result: dict, side: str) -> str:
    """``"holds"`` when the interval lies on the claimed ``side`` of 0 (``"greater"``: A - B > 0, ``"less"``:
    A - B < 0), ``"does not hold"`` when it lies on the other side, else ``"not distinguishable"``."""
    if side not in ("greater", "less"):
        raise ValueError(f"side must be 'greater' or 'less', got {side!r}")
    above, below = result["low"] > 0, result["high"] < 0
    if side == "greater":
        return HOLDS if above else FAILS if below else UNCLEAR
    return HOLDS if below else FAILS if above else UNCLEAR
