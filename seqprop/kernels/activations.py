"""Scalar nonlinearities used inside the kernels, and their derivatives.

Written through ``exp`` rather than ``np.tanh``: numba's build from PyPI has no
vector math library, so ``np.tanh`` costs several times an ``exp``. Every
function is exact to a few ulps (no polynomial approximation) so finite-
difference gradient checks stay meaningful.

Squashing functions of the LSTM cell input (g) and output (h) are selected by
an integer code (see :data:`SQUASH_CODES`):

- ``0`` -- ``tanh``,
- ``1`` -- the 2005 paper's logistic scaled to [-2, 2]: ``4 * logistic(x) - 2``.

Derivatives are written in terms of the function's *output* ``y``, which is
what the forward pass keeps.
"""

import math

from seqprop.kernels._jit import jit

SQUASH_CODES = {"tanh": 0, "logistic2": 1}


@jit
def logistic(x):
    """1 / (1 + exp(-x)), without overflow for large |x|."""
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@jit
def tanh(x):
    """tanh(x) through one exp; small |x| uses expm1 to keep full relative accuracy."""
    ax = abs(x)
    if ax > 22.0:
        r = 1.0
    elif ax > 0.5:
        r = 1.0 - 2.0 / (math.exp(2.0 * ax) + 1.0)
    else:
        e = math.expm1(2.0 * ax)
        r = e / (e + 2.0)
    return r if x >= 0.0 else -r


@jit
def squash(x, code):
    """Cell squashing function selected by ``code`` (0: tanh, 1: 4*logistic(x)-2)."""
    if code == 0:
        return tanh(x)
    return 4.0 * logistic(x) - 2.0


@jit
def squash_deriv(y, code):
    """Derivative of :func:`squash` expressed through its output ``y``."""
    if code == 0:
        return 1.0 - y * y
    return 1.0 - 0.25 * y * y
