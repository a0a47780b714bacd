"""Plain recurrent layer kernels, one direction (a batch of variable-length sequences).

The layer of Graves & Schmidhuber (2005), section 4 (their RNN and BRNN), with
hidden units ``f`` = tanh or the paper's logistic (``docs/EQUATIONS.md``)::

    a(t) = W_ih x(t) + b + W_hh h(t-1),   h(t) = f(a(t)),   h(-1) = 0

The activation is selected by an integer code
(:data:`seqprop.kernels.activations.ACTIVATION_CODES`): 0 = tanh, 1 =
logistic. Both are computed from one :func:`expm1_into` call per step, and
their derivatives from the output ``h``: ``1 - h^2`` and ``h (1 - h)``.

Shapes (``T`` frames, ``B`` sequences, ``H`` units) and the lockstep order of
the sequences are those of :mod:`seqprop.kernels.lstm` with ``G = H``; frames
past each sequence's length are written as zeros. Nothing is validated here:
:mod:`seqprop.layers` does that.
"""

import numpy as np

from seqprop.kernels._jit import jit
from seqprop.kernels.activations import expm1_work
from seqprop.kernels.lockstep import (
    lockstep_schedule,
    recurrent_product,
    step_frame,
    zero_past_lengths,
)
from seqprop.kernels.lstm import typed_constants


@jit
def rnn_forward(xp, bias, w_hh, w_hh_t, lengths, order, reverse, activation, out):
    """Forward recurrence ``h(t) = f(xp(t) + b + W_hh h(t-1))``; fills ``out``.

    Parameters
    ----------
    xp : (T, B, H) float
        Input projections ``W_ih x(t)``, computed by the caller.
    bias : (H,) float
        ``b``, added to ``xp`` as each frame is read (the same arithmetic as
        adding it first, one pass over memory fewer).
    w_hh, w_hh_t : (H, H) float, C-contiguous
        ``W_hh`` and its transpose, so that ``h(t-1) @ w_hh_t = W_hh h(t-1)`` for
        all active sequences at once (one float64 sequence: ``W_hh``'s rows,
        :func:`~seqprop.kernels.lockstep.recurrent_product`).
    lengths : (B,) int64
        Frames per sequence; sequence ``b`` occupies frames ``0 .. lengths[b]-1``.
    order : (S,) int64
        The sequences to process (all of the batch or a share no other thread
        touches), by decreasing length.
    reverse : bool
        Run each sequence from its own last frame to its first (``h(t+1)``
        takes the place of ``h(t-1)``).
    activation : int
        0 = tanh, 1 = logistic.
    out : (T, B, H) float
        Written: ``out[t, b] = h(t)`` for the sequences in ``order``, zero for
        ``t >= lengths[b]``; other sequences' columns are not touched.
    """
    _, B, H = xp.shape
    logistic = activation == 1
    # tanh(a) from expm1(-2|a|), logistic from expm1(-|a|); constants in xp's precision
    zero, one, two, _, inner, _ = typed_constants(xp, 1.0 if logistic else 2.0, 0.0)
    hbuf = np.zeros((B, H), dtype=xp.dtype)  # h(t-1), one row per active sequence
    zbuf = np.zeros((B, H), dtype=xp.dtype)  # W_hh h(t-1)
    a = np.empty(H, dtype=xp.dtype)  # pre-activations
    u = np.empty(H, dtype=xp.dtype)  # arguments of expm1
    e = np.empty(H, dtype=xp.dtype)  # expm1(u): not in place, or the loop does not vectorise
    ib = np.empty(H, dtype=np.int64)
    active = lockstep_schedule(lengths, order)
    for k in range(active.shape[0]):
        n_act = active[k]
        if k > 0:
            recurrent_product(hbuf, w_hh, w_hh_t, zbuf, n_act)
        for i in range(n_act):
            b = order[i]
            t = step_frame(lengths[b], k, reverse)
            for m in range(H):
                a[m] = xp[t, b, m] + bias[m] + zbuf[i, m]
                u[m] = -inner * abs(a[m])
            expm1_work(u, e, ib)
            if logistic:
                for m in range(H):
                    d = one / (two + e[m])
                    out[t, b, m] = d if a[m] >= zero else (one + e[m]) * d
                    hbuf[i, m] = out[t, b, m]
            else:
                for m in range(H):
                    v = -e[m] / (two + e[m])
                    out[t, b, m] = v if a[m] >= zero else -v
                    hbuf[i, m] = out[t, b, m]
    zero_past_lengths(out, lengths, order)


@jit
def rnn_backward(d_out, w_hh, lengths, order, reverse, activation, truncated, out, delta):
    """Backward pass through time; fills ``delta`` = dE/da(t).

    Full gradient (BPTT), ``t + 1`` being the next step in processing order::

        delta(t) = f'(a(t)) * (d_out(t) + W_hh^T delta(t+1)),   delta(L) = 0

    with ``f'`` = ``1 - h(t)^2`` (tanh) or ``h(t) (1 - h(t))`` (logistic).
    ``truncated`` treats ``h(t-1)`` in ``W_hh h(t-1)`` as a constant (the
    analogue of the LSTM's truncated gradient): no error flows back in time,
    ``delta(t) = f'(a(t)) * d_out(t)``. The weight gradients are formed from
    ``delta`` by the caller.

    Parameters
    ----------
    d_out : (T, B, H) float, C-contiguous
        dE/dh(t) from above (the layer's output error at each frame).
    w_hh : (H, H) float, C-contiguous
        ``W_hh``.
    lengths, order, reverse, activation
        As in :func:`rnn_forward`.
    truncated : bool
        Truncated instead of full gradient.
    out : (T, B, H) float
        The outputs ``h(t)`` written by :func:`rnn_forward`.
    delta : (T, B, H) float
        Written: dE/da(t) for the sequences in ``order``, zero for
        ``t >= lengths[b]``; other sequences' columns are not touched.
    """
    _, B, H = delta.shape
    logistic = activation == 1
    d_next = np.zeros((B, H), dtype=delta.dtype)  # delta(t+1), one row per active sequence
    e_rec = np.zeros((B, H), dtype=delta.dtype)  # W_hh^T delta(t+1); stays zero if truncated
    _, one, _, _, _, _ = typed_constants(delta, 0.0, 0.0)  # 1 in delta's precision
    active = lockstep_schedule(lengths, order)
    for k in range(active.shape[0] - 1, -1, -1):
        n_act = active[k]  # a sequence joins at its last step, its d_next row still zero
        if not truncated:
            np.dot(d_next[:n_act], w_hh, e_rec[:n_act])
        for i in range(n_act):
            b = order[i]
            t = step_frame(lengths[b], k, reverse)
            if logistic:
                for j in range(H):
                    h = out[t, b, j]
                    delta[t, b, j] = h * (one - h) * (d_out[t, b, j] + e_rec[i, j])
                    d_next[i, j] = delta[t, b, j]
            else:
                for j in range(H):
                    h = out[t, b, j]
                    delta[t, b, j] = (one - h * h) * (d_out[t, b, j] + e_rec[i, j])
                    d_next[i, j] = delta[t, b, j]
    zero_past_lengths(delta, lengths, order)
