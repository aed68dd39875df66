"""Giving freed memory back to the system between the large steps of a run.

glibc keeps the memory of freed mid-sized arrays in its heaps (the level-0 solves of step 1 free
block-sized products on the thread pool's heaps each block), so without a trim the peak RSS of
step 1 carried one or two blocks' worth of memory no array used any more (+50-90 MB on
`benchmarks/bench_engine.py`). `malloc_trim` returns it; elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import lru_cache


@lru_cache(maxsize=1)
def _malloc_trim():
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None


def release_free_memory() -> None:
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
