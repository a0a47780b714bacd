"""Plain recurrent (tanh) layer kernels, one direction.

    h(t) = tanh(W_ih x(t) + W_hh h(t-1) + b),   h(-1) = 0

Shapes as in :mod:`seqprop.kernels.lstm` with ``G = H``: ``xp`` (T, B, H)
input projections with bias, ``w_hh_t`` (H, H) = ``W_hh`` transposed,
``w_hh`` (H, H), ``out`` (T, B, H), ``d_out`` (T, B, H), ``delta`` (T, B, H).

``truncated`` (backward) stops the error at the recurrent connection: the
analogue of the LSTM's truncated gradient, with ``h(t-1)`` in ``W_hh h(t-1)``
treated as a constant.
"""

import numpy as np

from seqprop.kernels._jit import jit
from seqprop.kernels.activations import tanh


@jit
def rnn_forward(xp, w_hh_t, lengths, reverse, out):
    T, B, H = xp.shape
    z = np.empty(H, dtype=xp.dtype)
    for b in range(B):
        L = lengths[b]
        for k in range(L):
            t = L - 1 - k if reverse else k
            tp = t + 1 if reverse else t - 1
            for m in range(H):
                z[m] = xp[t, b, m]
            if k > 0:
                for j in range(H):
                    hj = out[tp, b, j]
                    for m in range(H):
                        z[m] += w_hh_t[j, m] * hj
            for m in range(H):
                out[t, b, m] = tanh(z[m])
        for t in range(L, T):
            for m in range(H):
                out[t, b, m] = 0.0


@jit
def rnn_backward(d_out, w_hh, lengths, reverse, truncated, out, delta):
    T, B, H = delta.shape
    eps = np.empty(H, dtype=delta.dtype)
    for b in range(B):
        L = lengths[b]
        for k in range(L - 1, -1, -1):
            t = L - 1 - k if reverse else k
            tn = t - 1 if reverse else t + 1
            for j in range(H):
                eps[j] = d_out[t, b, j]
            if k < L - 1 and not truncated:
                for m in range(H):
                    dm = delta[tn, b, m]
                    for j in range(H):
                        eps[j] += w_hh[m, j] * dm
            for j in range(H):
                h = out[t, b, j]
                delta[t, b, j] = (1.0 - h * h) * eps[j]
        for t in range(L, T):
            for m in range(H):
                delta[t, b, m] = 0.0
