"""The straightforward form (``GMN(..., hoisted=False)``) is the yardstick of the speed goals (issue 15): it is frozen
as it was at commit 109f683, so that no speed-up ratio can grow by slowing the reference.

Its FLOPs (forward + backward, batch 1 scene, 7 context + 8 target points per modality) are pinned for every
Table 1 cell (baseline, APoE, PoE x the |M| = 2, 5, 8, 14 modality sets of benchmarks/step_time.py, loaded from
there) at a small preset with the v4 architecture's code paths. The numbers were counted at 109f683 (torch
FlopCounterMode).
"""


import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from conftest import load_benchmark
from gmn_plugins.models import GMN
from gmn_plugins.models.presets import Preset

PIN = Preset(8, 8, 2, 2, 3, 4, 16)  # r, hidden, z, steps, kernel, decoder width, vector hidden
FLOPS_AT_109F683 = {
    ("baseline", 2): 458099808, ("baseline", 5): 322255968, ("baseline", 8): 508575936, ("baseline", 14): 463336896,
    ("apoe", 2): 504548448, ("apoe", 5): 372022368, ("apoe", 8): 614951616, ("apoe", 14): 578110656,
    ("poe", 2): 498650208, ("poe", 5): 362806368, ("poe", 8): 588409536, ("poe", 14): 537468096,
}


def _step_time():
    """benchmarks/step_time.py, whose Table 1 cells (``modalities``, ``episode``) these FLOPs were counted on."""
    return load_benchmark("step_time")


@pytest.mark.parametrize("variant", ["baseline", "apoe", "poe"])
def test_straightforward_flops_are_frozen(variant):
    bench, counted = _step_time(), {}
    for m in (2, 5, 8, 14):
        torch.manual_seed(0)
        mods = bench.modalities(m)
        model = GMN(mods, PIN, inference=variant, hoisted=False)
        context, target = bench.episode(mods, 1)  # 7 context + 8 target points per modality
        with FlopCounterMode(display=False) as counter:
            model(context, target, 1)["loss"].backward()
        counted[variant, m] = counter.get_total_flops()
    assert counted == {k: v for k, v in FLOPS_AT_109F683.items() if k[0] == variant}
