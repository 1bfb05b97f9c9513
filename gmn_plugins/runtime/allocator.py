"""The C allocator of a training process: keep freed memory for the next step instead of handing it back
(``train.malloc = "retain"``, the default; issue 15).

Why: glibc serves every allocation above its mmap threshold (128 KiB, adapting up to 32 MiB) with a fresh ``mmap``
and returns it with ``munmap`` when torch frees it. A training step allocates the same large tensors again and
again (Adam's temporaries, the gradients of v4's dense vector projections, 9.4-33.6 M parameters each, the
renderers' stacked activations), so each step page-faults them in anew: the kernel zeroes every page before torch
writes it. Raising the mmap threshold and the trim threshold keeps that memory in the heap for the next step's
allocations of the same sizes. Measured (benchmarks/step_time.py --one, v4 |M| = 8 APoE, batch 1, 2 threads):
3.70 -> 2.90 s per step, peak RSS 1422 -> 1425 MiB. At v4's training batch (|M| = 2 APoE, 24 episodes) 76.1 -> 59.0 s,
but peak RSS 7453 -> 8223 MiB: kept blocks of the wrong size for the next request add to the heap
(docs/performance.md). The memory a run has once held stays with it until it ends; ``default`` is the choice where
memory is tight.

Only the C library's settings change, never a value torch computes: the numbers of a run are the same either way.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

from ..core.options import MALLOCS

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's <malloc.h>
RETAIN_BYTES = 1 << 30  # both thresholds: allocations up to 1 GiB come from the heap, and 1 GiB of free top stays
GLIBC_MMAP_MAX = 32 << 20  # glibc before 2.35 refuses a mmap threshold above this (64-bit)

_retaining = False  # set once this process's thresholds are


def configure(malloc: str) -> bool:
    """Apply ``train.malloc`` to this process: ``retain`` sets glibc's mmap and trim thresholds (module docstring),
    ``default`` leaves the C library as it is. Returns True when the thresholds were set; False for ``default``,
    and where there is no glibc (macOS, Windows, musl), which keeps its own allocator's behaviour. Raises
    ValueError for another value. Settings last for the process; a second call with ``retain`` does nothing."""
    if malloc not in MALLOCS:
        raise ValueError(f"malloc must be one of {MALLOCS}, got {malloc!r}")
    if malloc != "retain":
        return False
    global _retaining
    if _retaining:
        return True
    mallopt = _glibc_mallopt()
    if mallopt is None:
        return False
    if not mallopt(M_MMAP_THRESHOLD, RETAIN_BYTES):
        mallopt(M_MMAP_THRESHOLD, GLIBC_MMAP_MAX)
    mallopt(M_TRIM_THRESHOLD, RETAIN_BYTES)
    _retaining = True
    return True


def _glibc_mallopt():
    """glibc's ``mallopt(int, int) -> int``, or None where the C library is not glibc."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt
