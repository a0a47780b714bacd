"""Softmax output with framewise cross-entropy.

``logits`` (N, K) for N frames, ``targets`` (N,) int with -1 = not scored.
Sums are accumulated in float64 whatever the arrays' precision.
"""

import math

import numpy as np

from seqprop.kernels._jit import jit
from seqprop.kernels.activations import exp_work
from seqprop.kernels.sync import start_worker

_BLOCK = 64
"""Rows whose exponentials are computed in one vectorised call."""


@jit
def _softmax_block(logits, lo, hi, probs, u, ib, log_z, arg):
    """``probs[lo:hi] = softmax(logits[lo:hi])`` row by row.

    Fills ``log_z[r]`` (the log-partition) and ``arg[r]`` (the first maximum)
    for each row ``lo + r``. ``u`` and ``ib`` (int64) are work vectors of at
    least ``(hi - lo) K`` entries. The exponentials of the block are one
    vectorised :func:`~seqprop.kernels.activations.exp_work` call in the
    arrays' precision; each row's sum is accumulated in float64 as four
    partial sums added in a fixed order.
    """
    K = logits.shape[1]
    R = hi - lo
    K4 = K - K % 4
    for r in range(R):
        n = lo + r
        # the maximum as four running maxima (short dependency chains), then its first index
        m0 = logits[n, 0]
        m1 = m0
        m2 = m0
        m3 = m0
        for k in range(0, K4, 4):
            m0 = max(m0, logits[n, k])
            m1 = max(m1, logits[n, k + 1])
            m2 = max(m2, logits[n, k + 2])
            m3 = max(m3, logits[n, k + 3])
        for k in range(K4, K):
            m0 = max(m0, logits[n, k])
        mx = max(max(m0, m1), max(m2, m3))
        a = 0
        while a < K - 1 and logits[n, a] != mx:  # bounded: a NaN row has no maximum
            a += 1
        arg[r] = a
        for k in range(K):
            u[r * K + k] = logits[n, k] - mx
    e = probs[lo:hi].reshape(R * K)
    exp_work(u[: R * K], e, ib)
    for r in range(R):
        n = lo + r
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        s3 = 0.0
        for k in range(0, K4, 4):
            s0 += probs[n, k]
            s1 += probs[n, k + 1]
            s2 += probs[n, k + 2]
            s3 += probs[n, k + 3]
        for k in range(K4, K):
            s0 += probs[n, k]
        ssum = (s0 + s1) + (s2 + s3)
        inv = 1.0 / ssum
        for k in range(K):
            probs[n, k] *= inv
        log_z[r] = math.log(ssum) + logits[n, arg[r]]


@jit
def _block_work(logits):
    """Work arrays of :func:`_softmax_block` for a block of rows of ``logits`` (N, K):
    ``u`` and ``ib`` (block x K), ``log_z`` and ``arg`` (block)."""
    K = logits.shape[1]
    return (
        np.empty(_BLOCK * K, dtype=logits.dtype),
        np.empty(_BLOCK * K, dtype=np.int64),
        np.empty(_BLOCK, dtype=np.float64),
        np.empty(_BLOCK, dtype=np.int64),
    )


@jit
def softmax_xent_rows(logits, targets, probs, dlogits, nll):
    """:func:`softmax_xent` over a block of rows, keeping each frame's cross-entropy.

    The same arithmetic per row as :func:`softmax_xent` (each row's softmax
    depends on that row alone): fills ``probs`` and ``dlogits`` alike, and
    ``nll`` (N,) float64 with each scored frame's ``-ln p_c`` (0 on unscored
    frames) instead of summing them, so that :func:`ordered_sum` of the whole
    ``nll`` gives :func:`softmax_xent`'s total bit for bit, however the frames
    were split into blocks. Returns the block's numbers of scored and of
    correctly classified frames.
    """
    N, K = logits.shape
    u, ib, log_z, arg = _block_work(logits)
    n_scored = 0
    n_correct = 0
    for lo in range(0, N, _BLOCK):
        hi = min(lo + _BLOCK, N)
        _softmax_block(logits, lo, hi, probs, u, ib, log_z, arg)
        for n in range(lo, hi):
            c = targets[n]
            if c < 0:
                nll[n] = 0.0
                for k in range(K):
                    dlogits[n, k] = 0.0
                continue
            nll[n] = log_z[n - lo] - logits[n, c]
            n_scored += 1
            if arg[n - lo] == c:
                n_correct += 1
            for k in range(K):
                dlogits[n, k] = probs[n, k]
            dlogits[n, c] -= 1.0
    return n_scored, n_correct


@jit
def class_targets(y, valid, num_classes, out):
    """``out[t B + b] = y[t, b]`` where ``valid[t, b]``, else -1: a softmax head's (T, B)
    targets flattened. Returns the first valid (t, b) in frame order whose value is
    neither a class in ``[0, num_classes)`` nor -1, or (-1, -1); entries that are not
    valid are not looked at."""
    T, B = y.shape
    for t in range(T):
        for b in range(B):
            if not valid[t, b]:
                out[t * B + b] = -1
                continue
            c = y[t, b]
            if c < -1 or c >= num_classes:
                return t, b
            out[t * B + b] = c
    return -1, -1


@jit
def ordered_sum(values):
    """``values[0] + values[1] + ...`` added one after the other, in float64."""
    total = 0.0
    for v in values:
        total += v
    return total


def softmax_xent(logits, targets, probs, dlogits):
    """Softmax probabilities, summed cross-entropy and its gradient.

    Fills ``probs`` (N, K) and ``dlogits`` (N, K) = ``probs - onehot`` on scored
    frames, 0 on unscored ones. Returns the cross-entropy summed over scored
    frames (in frame order, in float64), the number of scored frames and the
    number whose most probable class (first maximum) is the target.
    (Python: calls the kernels :func:`softmax_xent_rows` and :func:`ordered_sum`.)
    """
    nll = np.empty(logits.shape[0], dtype=np.float64)
    n_scored, n_correct = softmax_xent_rows(logits, targets, probs, dlogits, nll)
    return ordered_sum(nll), n_scored, n_correct


@jit
def softmax(logits, probs):
    """Row-wise softmax of ``logits`` (N, K) into ``probs``."""
    N, K = logits.shape
    u, ib, log_z, arg = _block_work(logits)
    for lo in range(0, N, _BLOCK):
        _softmax_block(logits, lo, min(lo + _BLOCK, N), probs, u, ib, log_z, arg)


@jit
def xent_counts(logits, targets):
    """Summed cross-entropy, number of scored frames and of correct argmax (no gradient)."""
    N, K = logits.shape
    probs = np.empty((_BLOCK, K), dtype=logits.dtype)
    u, ib, log_z, arg = _block_work(logits)
    total = 0.0
    n_scored = 0
    n_correct = 0
    for lo in range(0, N, _BLOCK):
        hi = min(lo + _BLOCK, N)
        # the block's rows, as rows 0 .. hi-lo-1 of a block-sized array
        _softmax_block(logits[lo:hi], 0, hi - lo, probs, u, ib, log_z, arg)
        for n in range(lo, hi):
            c = targets[n]
            if c < 0:
                continue
            total += log_z[n - lo] - logits[n, c]
            n_scored += 1
            if arg[n - lo] == c:
                n_correct += 1
    return total, n_scored, n_correct


@jit
def softmax_head_rows(
    hf, w, bias, targets, logits, probs, dlogits, nll, launch_flags, launch_idx, launch_value
):
    """A softmax output layer over a block of rows: ``logits = hf w^T + bias`` (``hf``
    (N, D), ``w`` (K, D)), then :func:`softmax_xent_rows`; returns its counts.

    ``launch_flags[launch_idx] = launch_value`` first unless ``launch_flags`` is
    empty (the start of the other thread's block: :func:`seqprop._parallel.run_pair`).
    """
    start_worker(launch_flags, launch_idx, launch_value)
    N, K = logits.shape
    np.dot(hf, w.T, logits)
    for n in range(N):
        for k in range(K):
            logits[n, k] += bias[k]
    return softmax_xent_rows(logits, targets, probs, dlogits, nll)
