"""The lockstep schedule shared by the recurrent kernels (LSTM and plain RNN).

A batch's sequences advance in lockstep: at step ``k`` every sequence longer
than ``k`` is at its k-th frame in processing order, so the recurrent products
of all of them are one BLAS matrix product per step (see ``docs/EQUATIONS.md``
for the recurrences themselves). ``order`` lists the sequences by
decreasing length; the ones that have a step ``k`` are then always a prefix
``order[:active[k]]``, and each keeps its row ``i`` of the kernels' per-step
buffers for as long as it is active:

- forward in time (``k = 0, 1, ...``) the prefix shrinks from its end as the
  shortest sequences finish;
- backward in time (``k = L_max-1, ..., 0``) it grows at its end, each
  sequence joining at its own last step with the zero rows the buffers were
  allocated with.

Every kernel also writes zeros into its output arrays past each sequence's
length, so that callers may sum over all frames of a padded batch.
"""

import numpy as np

from seqprop.kernels._jit import jit


@jit
def lockstep_schedule(lengths, order):
    """Number of active sequences at each step.

    ``lengths`` (B,) frames per sequence; ``order`` (S,) sequence indices sorted
    by decreasing length. Returns ``active`` (L_max,) int64, L_max the longest
    length in ``order`` (0 when ``order`` is empty): ``active[k]`` is the number
    of sequences in ``order`` longer than ``k``, which are ``order[:active[k]]``.
    """
    n = order.shape[0]
    L_max = lengths[order[0]] if n > 0 else 0
    active = np.empty(L_max, dtype=np.int64)
    for k in range(L_max):
        while n > 0 and lengths[order[n - 1]] <= k:
            n -= 1
        active[k] = n
    return active


@jit
def step_frame(length, k, reverse):
    """Frame processed at step ``k`` of a sequence of ``length`` frames.

    ``k`` itself, or ``length - 1 - k`` when the sequence is read from its
    own last frame to its first (``reverse``).
    """
    return length - 1 - k if reverse else k


@jit
def zero_past_lengths(arr, lengths, order):
    """``arr[t, b, :] = 0`` for every sequence ``b`` in ``order`` and ``t >= lengths[b]``."""
    T = arr.shape[0]
    for b in order:
        for t in range(lengths[b], T):
            arr[t, b, :] = 0.0


@jit
def copy_frames(x, lengths, out):
    """``out[t, b] = x[t, b]`` for ``t < lengths[b]``, zero past each length.

    ``x`` (T, B, I) any real dtype, ``out`` (T, B, I) float. Returns the first
    (frame, sequence) whose copied row holds a NaN or an infinity, or (-1, -1).
    """
    T, B, I = x.shape
    bad_t = -1
    bad_b = -1
    for t in range(T):
        for b in range(B):
            if t < lengths[b]:
                finite = True
                for i in range(I):
                    out[t, b, i] = x[t, b, i]
                    finite &= np.isfinite(out[t, b, i])
                if not finite and bad_t < 0:
                    bad_t = t
                    bad_b = b
            else:
                for i in range(I):
                    out[t, b, i] = 0.0
    return bad_t, bad_b


@jit
def recurrent_product(hbuf, w_hh, w_hh_t, zbuf, n_act):
    """``zbuf[:n_act] = hbuf[:n_act] W_hh^T``: a step's recurrent product, forward.

    One matrix product with ``w_hh_t`` (H_in, G), except for a single float64
    sequence: there the matrix-vector product with ``w_hh``'s rows (G, H_in) is
    faster (10-25 % for the paper's sizes on the machine of issue 14), while in
    float32 the product with ``w_hh_t`` is (up to 1.7x).
    """
    if n_act == 1 and hbuf.itemsize == 8:
        np.dot(w_hh, hbuf[0], zbuf[0])
    else:
        np.dot(hbuf[:n_act], w_hh_t, zbuf[:n_act])
