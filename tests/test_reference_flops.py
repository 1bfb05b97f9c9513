"""The straightforward form (``GMN(..., hoisted=False)``) is the yardstick of the speed goals (issue 15): it is frozen
as it was at commit 109f683, so that no speed-up ratio can grow by slowing the reference.

Its FLOPs (forward + backward, batch 1 scene, 7 context + 8 target points per modality) are pinned for every
Table 1 cell (baseline, APoE, PoE x the |M| = 2, 5, 8, 14 modality sets of benchmarks/step_time.py) at a small
preset with the v4 architecture's code paths. The numbers were counted at 109f683 (torch FlopCounterMode).
"""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from gmn_plugins.models import GMN, ModalityInfo, Points
from gmn_plugins.models.presets import Preset

PIN = Preset(8, 8, 2, 2, 3, 4, 16)  # r, hidden, z, steps, kernel, decoder width, vector hidden
FLOPS_AT_109F683 = {
    ("baseline", 2): 458099808, ("baseline", 5): 322255968, ("baseline", 8): 508575936, ("baseline", 14): 463336896,
    ("apoe", 2): 504548448, ("apoe", 5): 372022368, ("apoe", 8): 614951616, ("apoe", 14): 578110656,
    ("poe", 2): 498650208, ("poe", 5): 362806368, ("poe", 8): 588409536, ("poe", 14): 537468096,
}


def modalities(m):
    """The Table 1 modality sets, as in benchmarks/step_time.py."""
    vectors = [ModalityInfo("haptics1", "vector", (61,)), ModalityInfo("haptics2", "vector", (71,))]
    return {
        2: [ModalityInfo("image", "image", (3, 64, 64)), ModalityInfo("haptic", "vector", (132,))],
        5: [ModalityInfo(f"image{k}", "image", (3, 32, 32)) for k in range(4)]
        + [ModalityInfo("haptic", "vector", (132,))],
        8: [ModalityInfo(f"image{k}", "image", (1, 48, 24)) for k in range(6)] + vectors,
        14: [ModalityInfo(f"image{k}", "image", (1, 24, 24)) for k in range(12)] + vectors,
    }[m]


def _points(info, n):
    return Points(torch.rand(n, *info.shape), torch.randn(n, 5), torch.zeros(n, dtype=torch.long))


@pytest.mark.parametrize("variant", ["baseline", "apoe", "poe"])
def test_straightforward_flops_are_frozen(variant):
    counted = {}
    for m in (2, 5, 8, 14):
        torch.manual_seed(0)
        mods = modalities(m)
        model = GMN(mods, PIN, inference=variant, hoisted=False)
        context, target = [_points(i, 7) for i in mods], [_points(i, 8) for i in mods]
        with FlopCounterMode(display=False) as counter:
            model(context, target, 1)["loss"].backward()
        counted[variant, m] = counter.get_total_flops()
    assert counted == {k: v for k, v in FLOPS_AT_109F683.items() if k[0] == variant}
