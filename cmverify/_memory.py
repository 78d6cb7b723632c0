"""Allocator tuning for long vectorized loops (glibc only).

A batched ODE solve allocates and frees the same few megabyte-sized NumPy temporaries
millions of times. With glibc's default policy the freed top of the heap is returned to
the system (``M_TRIM_THRESHOLD``) and large blocks are mmap-ed afresh
(``M_MMAP_THRESHOLD``), so every new temporary page-faults its memory back in: measured
on 100,000 trajectories, 2.4 million page faults and twice the wall time. Raising the
two thresholds once keeps freed memory in the process for reuse (the process never
holds more than its peak). Set ``CMVERIFY_NO_MALLOPT=1`` to leave the allocator alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys

__all__ = ["keep_freed_memory"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's maximum on 64-bit systems
_TRIM_THRESHOLD = 512 * 1024 * 1024


@functools.cache
def keep_freed_memory() -> bool:
    """Raise glibc's trim and mmap thresholds once; ``True`` if it was done."""
    if os.environ.get("CMVERIFY_NO_MALLOPT") or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, …)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok_trim = mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)
    ok_mmap = mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
    return bool(ok_trim and ok_mmap)
