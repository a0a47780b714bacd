"""seqprop's worker thread: hand-offs, errors, nesting, concurrent callers and fork."""

import multiprocessing
import threading
import time

import numpy as np
import pytest

from seqprop._parallel import run_pair, set_num_threads


@pytest.fixture
def two_threads():
    set_num_threads(2)
    try:
        yield
    finally:
        set_num_threads(None)


def test_second_callable_runs_on_the_worker_thread(two_threads):
    names = run_pair(
        lambda: threading.current_thread().name, lambda: threading.current_thread().name
    )
    assert names[0] == threading.current_thread().name
    assert names[1] == "seqprop-worker"


def test_one_thread_runs_both_here():
    set_num_threads(1)
    try:
        here = threading.current_thread().name
        assert run_pair(
            lambda: threading.current_thread().name, lambda: threading.current_thread().name
        ) == (here, here)
    finally:
        set_num_threads(None)


def test_many_hand_offs_keep_order_and_results(two_threads):
    """Back-to-back pairs (the worker spinning) and pairs after it fell asleep."""
    for i in range(300):
        assert run_pair(lambda i=i: i, lambda i=i: -i) == (i, -i)
    time.sleep(0.01)  # longer than the worker spins: it sleeps and must be woken
    assert run_pair(lambda: "a", lambda: "b") == ("a", "b")


def test_worker_error_is_raised_in_the_caller_after_both_finish(two_threads):
    done = []

    def slow_ok():
        time.sleep(0.02)
        done.append(1)

    def fails():
        raise ValueError("from the worker")

    with pytest.raises(ValueError, match="from the worker"):
        run_pair(slow_ok, fails)
    assert done == [1]
    assert run_pair(lambda: 1, lambda: 2) == (1, 2)  # still usable


def test_caller_error_waits_for_the_worker(two_threads):
    finished = []

    def slow():
        time.sleep(0.02)
        finished.append(1)

    with pytest.raises(KeyError):
        run_pair(lambda: {}["x"], slow)
    assert finished == [1]  # the worker's task was over before the error surfaced


def test_long_task_on_the_worker(two_threads):
    """The caller spins, then looks now and then: a task longer than the spin still ends."""
    assert run_pair(lambda: 1, lambda: time.sleep(0.05) or 2) == (1, 2)


def test_nested_pair_on_the_worker_runs_in_sequence(two_threads):
    def inner():
        return run_pair(
            lambda: threading.current_thread().name, lambda: threading.current_thread().name
        )

    _, (a, b) = run_pair(lambda: None, inner)
    assert a == b == "seqprop-worker"


def test_concurrent_callers_each_get_their_results(two_threads):
    out = {}

    def caller(k):
        out[k] = [run_pair(lambda j=j: (k, j), lambda j=j: (j, k)) for j in range(200)]

    threads = [threading.Thread(target=caller, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for k in range(3):
        assert out[k] == [((k, j), (j, k)) for j in range(200)]


def _child(q):
    set_num_threads(2)
    q.put(run_pair(lambda: "parent-side", lambda: threading.current_thread().name))


def test_forked_child_starts_its_own_worker(two_threads):
    run_pair(lambda: None, lambda: None)  # the parent's worker exists
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(q,))
    p.start()
    result = q.get(timeout=60)
    p.join(timeout=60)
    assert result == ("parent-side", "seqprop-worker")
    assert p.exitcode == 0


def test_flags_are_atomic_release_acquire():
    from seqprop.kernels.sync import publish, publish_and_wait, wait_for

    flags = np.zeros(32, dtype=np.int64)
    assert not wait_for(flags, 0, 1, 1000)
    publish(flags, 0, 3)
    assert wait_for(flags, 0, 3, 1) and wait_for(flags, 0, 2, 1)
    assert publish_and_wait(flags, 16, 5, 0, 3, 10) and flags[16] == 5
    assert not publish_and_wait(flags, 16, 6, 0, 4, 10) and flags[16] == 6


def test_blas_held_to_one_thread_inside_and_restored_after():
    """Nested and concurrent contexts: one thread inside any, each library's own count after."""
    import scipy.linalg.cython_blas  # noqa: F401  (load the BLAS numba calls)
    from threadpoolctl import ThreadpoolController

    from seqprop._parallel import blas_single_thread

    ctl = ThreadpoolController()
    ctl.select(user_api="blas").lib_controllers[0].set_num_threads(2)

    def counts():
        return [
            lib.num_threads
            for lib in ThreadpoolController().select(user_api="blas").lib_controllers
        ]

    before = counts()
    seen = []
    with blas_single_thread():
        seen.append(counts())
        with blas_single_thread():
            seen.append(counts())
        seen.append(counts())
        t = threading.Thread(target=lambda: seen.append(run_pair(counts, counts)))
        t.start()
        t.join()
    assert all(c == 1 for snapshot in seen[:3] for c in snapshot)
    assert counts() == before


def _launching(result, events=None, publish_it=True):
    """An f1 for run_pair(launch=True): publishes the token as a kernel would, records
    whether the worker's task had started by then."""
    from seqprop.kernels.sync import publish

    def f1(token):
        flags, idx, value = token
        if events is not None:
            events.append(("token", flags.size > 0))
        if publish_it and flags.size:
            publish(flags, idx, value)
        return result

    return f1


def test_launched_pair_hands_the_token_and_runs_both(two_threads):
    """The worker's task starts when the caller's kernel publishes the token, while the
    worker spins; after it has fallen asleep the pair starts it from Python instead."""
    events = []
    for i in range(200):
        f1 = _launching(i, events)
        assert run_pair(f1, lambda i=i: threading.current_thread().name + str(i), launch=True) == (
            i,
            f"seqprop-worker{i}",
        )
    assert ("token", True) in events  # the worker was spinning for most of them
    time.sleep(0.01)  # longer than the worker spins: asleep, started from Python
    events.clear()
    assert run_pair(_launching("a", events), lambda: "b", launch=True) == ("a", "b")
    assert events == [("token", False)]


def test_launched_pair_whose_caller_never_publishes_still_ends(two_threads):
    """A caller that fails before its kernel (or ignores the token): the pair starts the
    worker's task itself once the caller's half is over."""
    assert run_pair(_launching(1, publish_it=False), lambda: 2, launch=True) == (1, 2)

    def fails(token):
        raise RuntimeError("before the kernel")

    ran = []
    with pytest.raises(RuntimeError, match="before the kernel"):
        run_pair(fails, lambda: ran.append(1), launch=True)
    assert ran == [1]
    assert run_pair(_launching(3), lambda: 4, launch=True) == (3, 4)


def test_launched_pair_on_one_thread_gets_no_token():
    from seqprop._parallel import NO_LAUNCH

    set_num_threads(1)
    try:
        seen = []
        assert run_pair(lambda token: seen.append(token) or 1, lambda: 2, launch=True) == (1, 2)
        assert seen == [NO_LAUNCH]
    finally:
        set_num_threads(None)
