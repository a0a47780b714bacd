"""Arrays in memory advised for 2 MiB pages (seqprop._memory)."""

import gc
import weakref

import numpy as np
import pytest

import seqprop
from seqprop._memory import HUGE_PAGE, HUGE_PAGE_MIN_BYTES, huge_page_empty, huge_page_zeros


@pytest.mark.parametrize(
    "n, dtype", [(1, np.float64), (78_400, np.float32), (HUGE_PAGE // 8 + 3, np.float64)]
)
def test_aligned_from_the_threshold_writable_and_of_the_size_asked(n, dtype):
    a = huge_page_empty(n, dtype)
    assert a.shape == (n,) and a.dtype == dtype and a.flags.c_contiguous and a.flags.writeable
    large = n * np.dtype(dtype).itemsize >= HUGE_PAGE_MIN_BYTES
    assert large == (n > 1)
    if large:
        assert a.ctypes.data % HUGE_PAGE == 0
    a[...] = np.arange(n)
    assert a[-1] == n - 1


def test_zeros_are_zero_and_memory_is_released_with_the_array():
    a = huge_page_zeros(HUGE_PAGE_MIN_BYTES // 4, np.float32)
    assert not a.any()
    base = a
    while getattr(base, "base", None) is not None:
        base = base.base
    mapping = getattr(base, "obj", base)  # the mmap behind numpy's memoryview
    ref = weakref.ref(mapping)
    del a, base, mapping
    gc.collect()
    assert ref() is None


def test_network_parameters_live_in_aligned_memory_when_large():
    net = seqprop.make_network("lstm", 26, 64, 61, random_state=0)  # 186 KB of weights
    assert net.flat_parameters.nbytes >= HUGE_PAGE_MIN_BYTES
    assert net.flat_parameters.ctypes.data % HUGE_PAGE == 0
    assert net.flat_gradient.ctypes.data % HUGE_PAGE == 0
    copy = net.copy()
    np.testing.assert_array_equal(copy.flat_parameters, net.flat_parameters)
    small = seqprop.make_network("lstm", 3, 4, 5)  # ordinary memory, zeros all the same
    assert small.flat_parameters.nbytes < HUGE_PAGE_MIN_BYTES
    assert not small.flat_gradient.any()
