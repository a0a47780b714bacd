"""Plain recurrent (tanh) layer kernels, one direction.

    h(t) = tanh(W_ih x(t) + W_hh h(t-1) + b),   h(-1) = 0

Shapes as in :mod:`seqprop.kernels.lstm` with ``G = H``: ``xp`` (T, B, H)
input projections with bias, ``w_hh_t`` (H, H) = ``W_hh`` transposed,
``w_hh`` (H, H), ``out`` (T, B, H), ``d_out`` (T, B, H), ``delta`` (T, B, H),
``order`` the sequence indices by decreasing length. Sequences advance in
lockstep, their recurrent products one BLAS matrix product per step.

``truncated`` (backward) stops the error at the recurrent connection: the
analogue of the LSTM's truncated gradient, with ``h(t-1)`` in ``W_hh h(t-1)``
treated as a constant.
"""

import numpy as np

from seqprop.kernels._jit import jit
from seqprop.kernels.activations import expm1_into


@jit
def rnn_forward(xp, w_hh_t, lengths, order, reverse, out):
    T, B, H = xp.shape
    hbuf = np.zeros((B, H), dtype=xp.dtype)
    zbuf = np.zeros((B, H), dtype=xp.dtype)
    a = np.empty(H, dtype=np.float64)
    u = np.empty(H, dtype=np.float64)
    e = np.empty(H, dtype=np.float64)  # expm1(u): not in place, or the loop does not vectorise
    ib = np.empty(H, dtype=np.int64)
    n_act = order.shape[0]
    L_max = lengths[order[0]] if n_act > 0 else 0
    for k in range(L_max):
        while n_act > 0 and lengths[order[n_act - 1]] <= k:
            n_act -= 1
        if k > 0:
            np.dot(hbuf[:n_act], w_hh_t, zbuf[:n_act])
        for i in range(n_act):
            b = order[i]
            t = lengths[b] - 1 - k if reverse else k
            for m in range(H):
                a[m] = xp[t, b, m] + zbuf[i, m]
                u[m] = -2.0 * abs(a[m])
            expm1_into(u, e, ib)
            for m in range(H):
                v = -e[m] / (2.0 + e[m])
                out[t, b, m] = v if a[m] >= 0.0 else -v
                hbuf[i, m] = out[t, b, m]
    for b in order:
        for t in range(lengths[b], T):
            out[t, b, :] = 0.0


@jit
def rnn_backward(d_out, w_hh, lengths, order, reverse, truncated, out, delta):
    T, B, H = delta.shape
    d_next = np.zeros((B, H), dtype=delta.dtype)
    e_rec = np.zeros((B, H), dtype=delta.dtype)
    n_seq = order.shape[0]
    n_act = 0
    L_max = lengths[order[0]] if n_seq > 0 else 0
    for k in range(L_max - 1, -1, -1):
        while n_act < n_seq and lengths[order[n_act]] > k:
            n_act += 1
        if not truncated:
            np.dot(d_next[:n_act], w_hh, e_rec[:n_act])
        for i in range(n_act):
            b = order[i]
            t = lengths[b] - 1 - k if reverse else k
            for j in range(H):
                h = out[t, b, j]
                delta[t, b, j] = (1.0 - h * h) * (d_out[t, b, j] + e_rec[i, j])
                d_next[i, j] = delta[t, b, j]
    for b in order:
        for t in range(lengths[b], T):
            delta[t, b, :] = 0.0
