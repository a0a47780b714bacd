"""Softmax output with framewise cross-entropy.

``logits`` (N, K) for N frames, ``targets`` (N,) int with -1 = not scored.
"""

import math

from seqprop.kernels._jit import jit


@jit
def softmax_xent(logits, targets, probs, dlogits):
    """Softmax probabilities, summed cross-entropy and its gradient.

    Fills ``probs`` (N, K) and ``dlogits`` (N, K) = ``probs - onehot`` on scored
    frames, 0 on unscored ones. Returns the cross-entropy summed over scored
    frames (float64 accumulation), the number of scored frames and the number
    whose most probable class (first maximum) is the target.
    """
    N, K = logits.shape
    total = 0.0
    n_scored = 0
    n_correct = 0
    for n in range(N):
        mx = logits[n, 0]
        arg = 0
        for k in range(1, K):
            if logits[n, k] > mx:
                mx = logits[n, k]
                arg = k
        ssum = 0.0
        for k in range(K):
            e = math.exp(logits[n, k] - mx)
            probs[n, k] = e
            ssum += e
        inv = 1.0 / ssum
        for k in range(K):
            probs[n, k] *= inv
        c = targets[n]
        if c < 0:
            for k in range(K):
                dlogits[n, k] = 0.0
        else:
            total += math.log(ssum) + mx - logits[n, c]
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
    N, K = logits.shape
    for n in range(N):
        mx = logits[n, 0]
        for k in range(1, K):
            if logits[n, k] > mx:
                mx = logits[n, k]
        ssum = 0.0
        for k in range(K):
            e = math.exp(logits[n, k] - mx)
            probs[n, k] = e
            ssum += e
        inv = 1.0 / ssum
        for k in range(K):
            probs[n, k] *= inv


@jit
def xent_counts(logits, targets):
    """Summed cross-entropy, number of scored frames and of correct argmax."""
    N, K = logits.shape
    total = 0.0
    n_scored = 0
    n_correct = 0
    for n in range(N):
        c = targets[n]
        if c < 0:
            continue
        mx = logits[n, 0]
        arg = 0
        for k in range(1, K):
            if logits[n, k] > mx:
                mx = logits[n, k]
                arg = k
        ssum = 0.0
        for k in range(K):
            ssum += math.exp(logits[n, k] - mx)
        total += math.log(ssum) + mx - logits[n, c]
        n_scored += 1
        if arg == c:
            n_correct += 1
    return total, n_scored, n_correct
