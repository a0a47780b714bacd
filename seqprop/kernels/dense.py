"""Kernels of the MLP's layers: the errors at a dense layer's units, and the
rows of a time window picked by frame.

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
def gather_rows(src, rows, out):
    """``out[r] = src[rows[r]]`` for 3-D ``src`` of any strides (a time window's view)."""
    for r in range(rows.shape[0]):
        s = rows[r]
        for j in range(src.shape[1]):
            for i in range(src.shape[2]):
                out[r, j, i] = src[s, j, i]
