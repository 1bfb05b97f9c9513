"""Training batches per second of the loader alone (issue 14): the m2 spec's batch (12 scenes, 15 views, rgb 64x64
+ haptic, add-opposite) from a 20 000-scene dataset read through its packed memory maps, with N DataLoader workers,
with a cold page cache and then a warm one. Goal: >= 20 batches/s with 2 workers, cold and warm.

    python benchmarks/loader_throughput.py --out /tmp/loader [--scenes 20000] [--workers 2] [--batches 200]

The dataset is synthetic in the real format (``memory_scaling.synthetic_dataset``). "Cold": every packed file is
dropped from the page cache first (``posix_fadvise(DONTNEED)``, no root needed; the shards are not read). Prints one
JSON line per pass. Run it on an idle machine; compare with the step time of ``benchmarks/step_time.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from memory_scaling import synthetic_dataset  # noqa: E402

from gmn_plugins.data.episodes import SceneSet  # noqa: E402
from gmn_plugins.data.format import open_split, packed_dir, read_manifest  # noqa: E402
from gmn_plugins.data.loader import TrainingBatches, training_batches  # noqa: E402
from gmn_plugins.core.plugins import load_registry  # noqa: E402
from gmn_plugins.core.spec import load_spec  # noqa: E402

SPEC = REPO / "specs" / "m2.toml"


def drop_page_cache(directory: Path) -> None:
    for path in directory.glob("*.npy"):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="dataset directory (~7 GB at 20 000 scenes)")
    parser.add_argument("--scenes", type=int, default=20000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batches", type=int, default=200)
    args = parser.parse_args()
    root = Path(args.out)
    overrides = [f"data.dir={json.dumps(str(root))}", f"data.train_scenes={args.scenes}", "data.val_scenes=0"]
    synthetic_dataset(root, overrides, SPEC)
    spec = load_spec(SPEC, overrides)
    modalities = load_registry().resolve(spec.modalities, str(SPEC))
    open_split(root, "train", progress=True)  # pack once, outside the timing
    scenes = SceneSet(root, "train", modalities, read_manifest(root)["stats"])
    t = spec.train
    batches = TrainingBatches(scenes, spec.seed, t.batch_scenes, t.max_targets, t.missing_sizes, t.missing_mode,
                              t.add_opposite)  # fmt: skip
    for cache in ("cold", "warm"):
        if cache == "cold":
            drop_page_cache(packed_dir(root, "train"))
        first = 0 if cache == "cold" else args.batches  # other steps than the cold pass: other scenes
        stream = training_batches(batches, first, first + args.batches, args.workers)
        started = time.perf_counter()
        startup = None
        for i, batch in enumerate(stream):
            if i == 0:
                startup = time.perf_counter() - started
        seconds = time.perf_counter() - started
        del stream
        print(json.dumps({"cache": cache, "workers": args.workers, "scenes": args.scenes, "batch_scenes": t.batch_scenes,
                          "batches": args.batches, "batches_per_second": round(args.batches / seconds, 2),
                          "first_batch_seconds": round(startup, 3)}))  # fmt: skip


if __name__ == "__main__":
    main()
