"""Thread-level parallelism and BLAS threading, shared by the layers.

The two directions of a bidirectional layer are independent computations, so
they run on two threads (numba kernels release the GIL). Each direction's
arithmetic is the same whichever thread runs it, so results are bit-for-bit
identical with one thread or two.

The number of threads comes from :func:`set_num_threads`, else the environment
variable ``SEQPROP_NUM_THREADS``, else the number of CPUs (at most 2 are used).

BLAS threads. While a network computes, the BLAS libraries behind numpy and
scipy (which numba's ``np.dot`` calls) are held to one thread with
threadpoolctl (:func:`blas_single_thread`), and the limit is lifted when the
call returns. The recurrences make one small matrix product per time step, where
a multi-threaded BLAS spends more time waking its threads than computing (ten
times slower at batch 1); while seqprop runs two threads of its own, BLAS
threads spinning on the same cores slow both; and a multi-threaded BLAS sums in
an order that depends on its thread count, so results would differ, in the last
bits, between machines with different numbers of cores. With BLAS on one
thread, results are bit-for-bit the same whatever :func:`set_num_threads` says.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

_num_threads: int | None = None
_executor: ThreadPoolExecutor | None = None
_blas_libs = None
_limit_depth = 0  # blas_single_thread contexts currently open (any thread)
_limit_lock = threading.Lock()


def get_num_threads() -> int:
    """Threads seqprop uses for independent work (1 or 2)."""
    if _num_threads is not None:
        return _num_threads
    env = os.environ.get("SEQPROP_NUM_THREADS")
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"SEQPROP_NUM_THREADS must be an integer, got {env!r}") from None
    else:
        n = os.cpu_count() or 1
    return max(1, min(2, n))


def set_num_threads(n: int | None) -> None:
    """Set the number of threads (``None``: back to the default)."""
    global _num_threads
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"num_threads must be a positive integer, got {n!r}")
    _num_threads = None if n is None else min(int(n), 2)


def _blas_libraries():
    """threadpoolctl's controllers of every loaded BLAS library (looked up once)."""
    global _blas_libs
    if _blas_libs is None:
        import scipy.linalg.cython_blas  # noqa: F401  (the BLAS numba's np.dot calls)
        from threadpoolctl import ThreadpoolController

        _blas_libs = ThreadpoolController().select(user_api="blas").lib_controllers
    return _blas_libs


@contextmanager
def blas_single_thread():
    """Hold every loaded BLAS library to one thread (nested uses cost nothing).

    Each library's own thread count is read on entry and put back on exit
    (a few microseconds: threadpoolctl's controllers, looked up once).
    """
    global _limit_depth
    with _limit_lock:
        outermost = _limit_depth == 0
        _limit_depth += 1
    try:
        if outermost:
            libs = _blas_libraries()
            before = [lib.get_num_threads() for lib in libs]
            for lib, n in zip(libs, before, strict=True):
                if n != 1:
                    lib.set_num_threads(1)
            try:
                yield
            finally:
                for lib, n in zip(libs, before, strict=True):
                    if n != 1:
                        lib.set_num_threads(n)
        else:
            yield
    finally:
        with _limit_lock:
            _limit_depth -= 1


def run_pair(f1, f2):
    """Run two independent callables, concurrently when more than one thread is allowed."""
    global _executor
    if get_num_threads() < 2:
        return f1(), f2()
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seqprop")
    with blas_single_thread():
        fut = _executor.submit(f2)
        try:
            r1 = f1()
        finally:
            r2 = fut.result()
    return r1, r2
