"""Softmax output with framewise cross-entropy.

``logits`` (N, K) for N frames, ``targets`` (N,) int with -1 = not scored.
Sums are accumulated in float64 whatever the arrays' precision.
"""

import math

import numpy as np

from seqprop.kernels._jit import jit


@jit
def _softmax_row(z, p):
    """``p = softmax(z)`` for one row; returns (log-partition, index of the first maximum)."""
    K = z.shape[0]
    mx = z[0]
    arg = 0
    for k in range(1, K):
        if z[k] > mx:
            mx = z[k]
            arg = k
    ssum = 0.0
    for k in range(K):
        e = math.exp(z[k] - mx)
        p[k] = e
        ssum += e
    inv = 1.0 / ssum
    for k in range(K):
        p[k] *= inv
    return math.log(ssum) + mx, arg


@jit
def softmax_xent(logits, targets, probs, dlogits):
    """Softmax probabilities, summed cross-entropy and its gradient.

    Fills ``probs`` (N, K) and ``dlogits`` (N, K) = ``probs - onehot`` on scored
    frames, 0 on unscored ones. Returns the cross-entropy summed over scored
    frames, the number of scored frames and the number whose most probable
    class (first maximum) is the target.
    """
    N, K = logits.shape
    total = 0.0
    n_scored = 0
    n_correct = 0
    for n in range(N):
        log_z, arg = _softmax_row(logits[n], probs[n])
        c = targets[n]
        if c < 0:
            for k in range(K):
                dlogits[n, k] = 0.0
            continue
        total += log_z - logits[n, c]
        n_scored += 1
        if arg == c:
            n_correct += 1
        for k in range(K):
            dlogits[n, k] = probs[n, k]
        dlogits[n, c] -= 1.0
    return total, n_scored, n_correct


@jit
def softmax(logits, probs):
    """Row-wise softmax of ``logits`` (N, K) into ``probs``."""
    for n in range(logits.shape[0]):
        _softmax_row(logits[n], probs[n])


@jit
def xent_counts(logits, targets):
    """Summed cross-entropy, number of scored frames and of correct argmax (no gradient)."""
    N, K = logits.shape
    scratch = np.empty(K, dtype=logits.dtype)
    total = 0.0
    n_scored = 0
    n_correct = 0
    for n in range(N):
        c = targets[n]
        if c < 0:
            continue
        log_z, arg = _softmax_row(logits[n], scratch)
        total += log_z - logits[n, c]
        n_scored += 1
        if arg == c:
            n_correct += 1
    return total, n_scored, n_correct
