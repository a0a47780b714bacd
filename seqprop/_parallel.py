"""Thread-level parallelism and BLAS threading, shared by the layers.

The two directions of a bidirectional layer are independent computations, so
they run on two threads (numba kernels release the GIL). Each direction's
arithmetic is the same whichever thread runs it, so results are bit-for-bit
identical with one thread or two.

The number of threads comes from :func:`set_num_threads`, else the environment
variable ``SEQPROP_NUM_THREADS``, else the number of CPUs (at most 2 are used).

The second thread is one persistent worker (:class:`_PairWorker`) that
:func:`run_pair` hands work to through flags in compiled code rather than
locks: on a virtual machine whose idle cores halt at once, a thread asleep
on a lock wakes 50-150 microseconds late, a twentieth of an online training
step. The worker spins about a millisecond for its next task, then sleeps.

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
import time

import numpy as np

_num_threads: int | None = None
_cpus: int | None = None
_worker: _PairWorker | None = None
_worker_lock = threading.Lock()
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
        n = _cpu_count()
    return max(1, min(2, n))


def _cpu_count() -> int:
    """``os.cpu_count()``, asked once (it reads the system on every call: microseconds that
    every step of a network would pay)."""
    global _cpus
    if _cpus is None:
        _cpus = os.cpu_count() or 1
    return _cpus


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


class _BlasSingleThread:
    """The context manager :func:`blas_single_thread` returns (one, shared).

    A counter of the contexts open in any thread: the first to open sets every
    BLAS library to one thread (reading each one's own count first), the last
    to close puts the counts back; nested ones cost a lock and an addition.
    """

    def __init__(self):
        self._before: list[int] = []

    def __enter__(self):
        global _limit_depth
        with _limit_lock:
            _limit_depth += 1
            if _limit_depth > 1:
                return self
            libs = _blas_libraries()
            self._before = [lib.get_num_threads() for lib in libs]
            for lib, n in zip(libs, self._before, strict=True):
                if n != 1:
                    lib.set_num_threads(1)
        return self

    def __exit__(self, *exc):
        global _limit_depth
        with _limit_lock:
            _limit_depth -= 1
            if _limit_depth == 0:
                for lib, n in zip(_blas_libraries(), self._before, strict=True):
                    if n != 1:
                        lib.set_num_threads(n)
        return False


_BLAS_SINGLE_THREAD = _BlasSingleThread()


def blas_single_thread() -> _BlasSingleThread:
    """Hold every loaded BLAS library to one thread while the context is open.

    Nested and concurrent uses cost almost nothing; each library's own thread
    count is read when the first context opens and put back when the last
    closes (a few microseconds: threadpoolctl's controllers, looked up once).
    """
    return _BLAS_SINGLE_THREAD


NO_LAUNCH = (np.zeros(0, dtype=np.int64), 0, 0)
"""The ``launch`` of a :func:`run_pair` whose worker needs no start from compiled code."""


def run_pair(f1, f2, *, launch=False):
    """Run two independent callables, concurrently when more than one thread is allowed.

    ``f2`` goes to seqprop's worker thread (:class:`_PairWorker`) while the
    calling thread runs ``f1``; returns ``(f1(), f2())``. One after the other
    when one thread is allowed, when called from the worker itself, or while
    another thread's pair is running (the arithmetic is the same either way).

    With ``launch``, ``f1`` is called with one argument, ``(flags, index,
    value)``, that its compiled kernel publishes first thing
    (:func:`seqprop.kernels.sync.publish`; nothing to do when ``flags`` is
    empty, :data:`NO_LAUNCH`): the worker, spinning for its task, then
    starts ``f2`` while the GIL is free, instead of sleeping on the GIL
    until ``f1`` has entered compiled code (tens of microseconds late on
    this project's machines).
    """
    both = _on_worker(f1, f2, launch)
    if both is not None:
        return both
    return (f1(NO_LAUNCH) if launch else f1()), f2()


def run_concurrently(f1, f2):
    """:func:`run_pair` where the two callables are sure to run at the same time (two
    threads allowed, the worker free, not called from the worker); else None, having
    run nothing. For pairs whose halves wait for each other midway.

    The worker is started from here, never from ``f1``'s kernel (``launch``): a
    worker that falls asleep just before such a start would wait for ``f1`` to end,
    and ``f1`` for it."""
    return _on_worker(f1, f2, False)


def _on_worker(f1, f2, launch):
    """``(f1(), f2())`` with ``f2`` on the worker thread, or None, having run nothing,
    where it is not free: one thread allowed, called from the worker itself, or
    another thread's pair running."""
    if get_num_threads() < 2:
        return None
    worker = _get_worker()
    if threading.get_ident() == worker.ident or not worker.lock.acquire(blocking=False):
        return None
    try:
        with blas_single_thread():
            return worker.run(f1, f2, launch)
    finally:
        worker.lock.release()


SPIN_LOOKS = 100_000
"""How long a thread spins on a flag before it sleeps: about a millisecond here, each
look followed by the CPU's spin-wait hint (``pause``, about 10 ns on the machine of
issue 14; :mod:`seqprop.kernels.sync`)."""
_TASK, _DONE, _ASLEEP = 0, 16, 24  # flag indices, on separate cache lines


class _PairWorker:
    """A persistent thread that takes the second callable of each :func:`run_pair`.

    Hand-offs go through int64 flags in compiled code
    (:mod:`seqprop.kernels.sync`), not through locks: a thread that sleeps
    on a lock is woken tens of microseconds late on machines whose idle cores
    halt at once, which is longer than many steps take. The worker spins for
    its next task a few milliseconds (:data:`SPIN_LOOKS`) after each one, then
    sleeps on a condition until :meth:`run` notifies it. The caller spins
    while the worker finishes; the worker announces the end of a task from
    compiled code, the GIL already released, so that the caller goes on at
    once.
    """

    def __init__(self):
        from seqprop.kernels.sync import publish, publish_and_wait, wait_for

        self._publish, self._publish_and_wait, self._wait_for = publish, publish_and_wait, wait_for
        self.flags = np.zeros(32, dtype=np.int64)
        self.lock = threading.Lock()  # one pair at a time
        self._wake = threading.Condition()
        self._seq = 0
        self._task = None
        self._outcome = None
        wait_for(self.flags, _TASK, 1, 1)  # compiled before the thread uses it
        publish_and_wait(np.zeros(32, dtype=np.int64), _DONE, 0, _TASK, 1, 1)
        thread = threading.Thread(target=self._loop, name="seqprop-worker", daemon=True)
        thread.start()
        self.ident = thread.ident

    def _loop(self) -> None:
        seq = 1
        ready = self._wait_for(self.flags, _TASK, seq, SPIN_LOOKS)
        while True:
            if not ready:
                with self._wake:
                    self.flags[_ASLEEP] = 1  # callers then publish from Python and notify
                    while self.flags[_TASK] < seq:
                        self._wake.wait()
                    self.flags[_ASLEEP] = 0
            try:
                self._outcome = (self._task(), None)
            except BaseException as exc:  # handed to the caller, raised there
                self._outcome = (None, exc)
            ready = self._publish_and_wait(self.flags, _DONE, seq, _TASK, seq + 1, SPIN_LOOKS)
            seq += 1

    def run(self, f1, f2, launch=False):
        self._seq += 1
        seq = self._seq
        self._task = f2
        # a spinning worker is started by f1's kernel (run_pair's launch); a sleeping
        # one from here, with a notify
        wants_launch, launch = launch, launch and not self.flags[_ASLEEP]
        if not launch:
            self._publish(self.flags, _TASK, seq)
            with self._wake:
                self._wake.notify()
        try:
            if wants_launch:
                r1 = f1((self.flags, _TASK, seq) if launch else NO_LAUNCH)
            else:
                r1 = f1()
        finally:
            if launch:  # f1 failed before its kernel, or the worker fell asleep meanwhile
                self._publish(self.flags, _TASK, seq)
                with self._wake:
                    self._wake.notify()
            while not self._wait_for(self.flags, _DONE, seq, SPIN_LOOKS):
                time.sleep(1e-4)  # a long task: look again now and then
        r2, exc = self._outcome
        self._task = self._outcome = None
        if exc is not None:
            raise exc
        return r1, r2


def _get_worker() -> _PairWorker:
    global _worker
    if _worker is None:
        with _worker_lock:
            if _worker is None:
                _worker = _PairWorker()
    return _worker


def _forget_worker() -> None:
    """In a forked child the worker thread does not exist: start a new one when needed."""
    global _worker, _worker_lock
    _worker = None
    _worker_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_worker)
