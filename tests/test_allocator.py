"""train.malloc (issue 15): "retain" makes glibc serve a training step's large tensors from its heap, which it keeps,
instead of a fresh mmap per allocation. Measured in a fresh process with glibc's own accounting (mallinfo2)."""

import subprocess
import sys

import pytest

from gmn_plugins.runtime import allocator

PROBE = """
import ctypes, sys
import torch
from gmn_plugins.runtime import allocator

class Info(ctypes.Structure):  # glibc's struct mallinfo2
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
print(allocator.configure(sys.argv[1]))
heap = libc.mallinfo2().arena
x = torch.ones(16 << 20)  # 64 MiB
mapped = libc.mallinfo2().hblkhd
del x
print(mapped >= 64 << 20, libc.mallinfo2().arena - heap >= 64 << 20)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or allocator._glibc_mallopt() is None, reason="glibc only")
def test_retain_serves_a_large_tensor_from_the_heap_and_keeps_it():
    out = {}
    for malloc in ("retain", "default"):
        result = subprocess.run([sys.executable, "-c", PROBE, malloc], capture_output=True, text=True, check=True)
        out[malloc] = result.stdout.split()
    # retain: set; the 64 MiB tensor was not mmapped, and the heap still holds it after it was freed
    assert out["retain"] == ["True", "False", "True"]
    # default: glibc's own thresholds mmap it (and unmap it on free)
    assert out["default"] == ["False", "True", "False"]


def test_an_unknown_setting_is_refused():
    with pytest.raises(ValueError, match="malloc must be one of"):
        allocator.configure("jemalloc")
