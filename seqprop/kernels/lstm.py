"""LSTM recurrence kernels (one direction, a batch of variable-length sequences).

Equations: DESIGN.md section 2 (Graves & Schmidhuber 2005, section 3; forget
gates after Gers et al. 2000, peepholes after Gers et al. 2002). Gate order in
every 4H axis is (i, f, g, o).

Shapes (``T`` frames, ``B`` sequences, ``H`` blocks, ``G = 4H``):

- ``xp``      (T, B, G) input projections ``W_ih x(t) + b``, computed outside
- ``w_hh_t``  (H, G)    transpose of ``W_hh`` (C-contiguous), forward pass
- ``w_hh``    (G, H)    ``W_hh`` (C-contiguous), backward pass
- ``peep``    (3, H)    peephole weights, rows p_i, p_f, p_o
- ``act``     (T, B, G) gate activations b_i, b_f, b_g, b_o
- ``cell``    (T, B, H) cell states s(t)
- ``hcell``   (T, B, H) squashed cell states h(s(t))
- ``out``     (T, B, H) cell outputs b(t)
- ``d_out``   (T, B, H) dE/db(t) from the layer above
- ``delta``   (T, B, G) dE/da for the four pre-activations

Sequence ``b`` occupies frames ``0 .. lengths[b]-1``. With ``reverse`` it is
processed from its own last frame to its first. Every output array is written
for all frames: zero past a sequence's length. Nothing is validated here: the
callers in :mod:`seqprop.layers` do that.

Matrix-vector products are written as axpy loops over a contiguous row
(``z += W^T[j] * h[j]``): they vectorise without fastmath and sum in a fixed
order, so results are bit-for-bit reproducible.
"""

import numpy as np

from seqprop.kernels._jit import jit
from seqprop.kernels.activations import logistic, squash, squash_deriv


@jit
def lstm_forward(xp, w_hh_t, peep, lengths, reverse, squash_code, act, cell, hcell, out):
    """Forward recurrence; fills ``act``, ``cell``, ``hcell`` and ``out``."""
    T, B, G = xp.shape
    H = G // 4
    z = np.empty(G, dtype=xp.dtype)
    for b in range(B):
        L = lengths[b]
        for k in range(L):
            t = L - 1 - k if reverse else k
            tp = t + 1 if reverse else t - 1  # previous step in processing order
            for m in range(G):
                z[m] = xp[t, b, m]
            if k > 0:
                for j in range(H):
                    hj = out[tp, b, j]
                    for m in range(G):
                        z[m] += w_hh_t[j, m] * hj
            for j in range(H):
                s_prev = cell[tp, b, j] if k > 0 else 0.0
                b_i = logistic(z[j] + peep[0, j] * s_prev)
                b_f = logistic(z[H + j] + peep[1, j] * s_prev)
                b_g = squash(z[2 * H + j], squash_code)
                s = b_f * s_prev + b_i * b_g
                b_o = logistic(z[3 * H + j] + peep[2, j] * s)
                h = squash(s, squash_code)
                act[t, b, j] = b_i
                act[t, b, H + j] = b_f
                act[t, b, 2 * H + j] = b_g
                act[t, b, 3 * H + j] = b_o
                cell[t, b, j] = s
                hcell[t, b, j] = h
                out[t, b, j] = b_o * h
        for t in range(L, T):
            for m in range(G):
                act[t, b, m] = 0.0
            for j in range(H):
                cell[t, b, j] = 0.0
                hcell[t, b, j] = 0.0
                out[t, b, j] = 0.0


@jit
def lstm_backward(
    d_out, w_hh, peep, lengths, reverse, squash_code, truncated, act, cell, hcell, delta
):
    """Backward pass through time; fills ``delta``.

    ``truncated`` selects the truncated gradient of DESIGN.md section 2: no
    error through ``W_hh b(t-1)`` and none through the input/forget-gate
    peepholes' ``s(t-1)``; error still flows through the cell state.
    """
    T, B, G = delta.shape
    H = G // 4
    eps_c = np.empty(H, dtype=delta.dtype)
    eps_s = np.zeros(H, dtype=delta.dtype)  # eps_s of the step processed just before (t+1)
    for b in range(B):
        L = lengths[b]
        for k in range(L - 1, -1, -1):
            t = L - 1 - k if reverse else k
            tp = t + 1 if reverse else t - 1  # previous step in processing order
            tn = t - 1 if reverse else t + 1  # next step in processing order
            has_next = k < L - 1
            for j in range(H):
                eps_c[j] = d_out[t, b, j]
            if has_next and not truncated:
                for m in range(G):
                    dm = delta[tn, b, m]
                    for j in range(H):
                        eps_c[j] += w_hh[m, j] * dm
            for j in range(H):
                b_i = act[t, b, j]
                b_f = act[t, b, H + j]
                b_g = act[t, b, 2 * H + j]
                b_o = act[t, b, 3 * H + j]
                h = hcell[t, b, j]
                s_prev = cell[tp, b, j] if k > 0 else 0.0
                d_o = b_o * (1.0 - b_o) * h * eps_c[j]
                e_s = b_o * squash_deriv(h, squash_code) * eps_c[j] + peep[2, j] * d_o
                if has_next:
                    e_s += act[tn, b, H + j] * eps_s[j]
                    if not truncated:
                        e_s += peep[0, j] * delta[tn, b, j] + peep[1, j] * delta[tn, b, H + j]
                delta[t, b, j] = b_i * (1.0 - b_i) * b_g * e_s
                delta[t, b, H + j] = b_f * (1.0 - b_f) * s_prev * e_s
                delta[t, b, 2 * H + j] = b_i * squash_deriv(b_g, squash_code) * e_s
                delta[t, b, 3 * H + j] = d_o
                eps_s[j] = e_s
        for t in range(L, T):
            for m in range(G):
                delta[t, b, m] = 0.0
