"""Kernels of the MLP's layers: the errors at a dense layer's units, and the
rows of a time window.

The error kernels compute, element by element, exactly the float operations of
the numpy expressions they replace (in the arrays' precision, no fused
multiply-add: fastmath is off), in one pass instead of three.
"""

from seqprop.kernels._jit import jit


@jit
def tanh_delta(y, dy, delta, one):
    """``delta = dy * (1 - y*y)`` for ``y = tanh(z)`` (2-D arrays; ``one`` a 1 of their dtype).

    Rounded as ``t = y*y; u = 1 - t; delta = u * dy``.
    """
    for i in range(y.shape[0]):
        for j in range(y.shape[1]):
            v = y[i, j]
            delta[i, j] = (one - v * v) * dy[i, j]


@jit
def logistic_delta(y, dy, delta, one):
    """``delta = dy * (1 - y) y`` for the logistic ``y`` (2-D arrays; ``one`` a 1 of their
    dtype). Rounded as ``u = 1 - y; u = u * y; delta = u * dy``."""
    for i in range(y.shape[0]):
        for j in range(y.shape[1]):
            v = y[i, j]
            delta[i, j] = ((one - v) * v) * dy[i, j]


@jit
def window_rows(x, w, frames, lo, hi, out):
    """Rows ``lo:hi`` of a time window of ``x`` (T, B, I) into ``out`` (N, (2w+1) I).

    Row ``r`` is the window of frame ``f = frames[r]`` (every frame, ``f = r``, when
    ``frames`` is empty), frame ``f`` being ``x[t, b]`` with ``f = t B + b``: its
    block ``j`` is ``x[t + j - w, b]``, zeros where ``t + j - w`` falls outside
    ``0 .. T-1``.
    """
    T, B, I = x.shape
    for r in range(lo, hi):
        f = frames[r] if frames.shape[0] > 0 else r
        t = f // B
        b = f - t * B
        for j in range(2 * w + 1):
            s = t + j - w
            col = j * I
            if 0 <= s < T:
                for i in range(I):
                    out[r, col + i] = x[s, b, i]
            else:
                for i in range(I):
                    out[r, col + i] = 0.0
