"""Arrays in memory that the operating system may back with 2 MiB pages.

A recurrent layer reads its recurrent weights (``W_hh`` or its transpose,
100-700 KB) once per time step, and they have to stay in the core's L2
cache while the step's activations stream past. Ordinary 4 KiB pages land at
physical addresses the kernel picks, and the L2 cache is indexed by physical
address: from one process to the next the weights may crowd some cache sets
and be partly evicted at every step. Measured on the 2-core machine of issue
14, the forward pass of the paper's LSTM (140 blocks, one sequence) took
1.10-1.14 ms in some processes and 1.35 ms in others, for the same code and
data. In one 2 MiB page the weights cover the cache sets evenly: 1.10-1.14
ms in every process.

:func:`huge_page_empty` maps such memory (``mmap`` aligned to 2 MiB and
advised ``MADV_HUGEPAGE``, Linux transparent huge pages); where the system
offers no huge pages the memory is ordinary, the arithmetic the same.
"""

from __future__ import annotations

import mmap

import numpy as np

HUGE_PAGE = 2 << 20
"""Bytes in one transparent huge page (x86-64 and most arm64 Linux kernels)."""

HUGE_PAGE_MIN_BYTES = 128 << 10
"""Smaller arrays get ordinary memory: a huge page costs 2 MiB of memory once touched,
and an array this small is not the one that crowds the cache (the paper's BLSTM's
``W_hh^T`` is 138 KB in float32)."""


def huge_page_empty(n: int, dtype) -> np.ndarray:
    """An uninitialised 1-D array of ``n`` items; from :data:`HUGE_PAGE_MIN_BYTES` on,
    2 MiB aligned in memory advised for transparent huge pages (zeroed then).

    The memory is an anonymous mapping of whole huge pages; it is released when
    the array and its views are.
    """
    dtype = np.dtype(dtype)
    nbytes = max(int(n) * dtype.itemsize, 1)
    if nbytes < HUGE_PAGE_MIN_BYTES:
        return np.empty(n, dtype=dtype)
    size = -(-nbytes // HUGE_PAGE) * HUGE_PAGE
    try:
        # one huge page more than needed, so that an aligned start lies inside
        mem = mmap.mmap(-1, size + HUGE_PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    except (OSError, AttributeError, ValueError):  # no anonymous mappings here
        return np.empty(n, dtype=dtype)
    raw = np.frombuffer(mem, dtype=np.uint8)
    start = -raw.ctypes.data % HUGE_PAGE
    advice = getattr(mmap, "MADV_HUGEPAGE", None)
    if advice is not None:
        try:
            mem.madvise(advice, start, size)
        except OSError:  # huge pages disabled: ordinary pages, the same arithmetic
            pass
    return raw[start : start + int(n) * dtype.itemsize].view(dtype)


def huge_page_zeros(n: int, dtype) -> np.ndarray:
    """:func:`huge_page_empty` filled with zeros."""
    out = huge_page_empty(n, dtype)
    out[...] = 0
    return out
