"""Nonlinearities used inside the kernels, and their derivatives.

numba's build from PyPI has no vector math library: ``math.exp`` costs 4-6 ns
a call and a loop over it does not vectorise. :func:`expm1_into` is a
vectorisable ``expm1`` written from arithmetic alone (Cody-Waite range
reduction, a degree-13 Taylor polynomial, the power of two assembled from its
exponent bits); its worst error is 2 ulp (see :func:`expm1_into` for what is
measured), so finite-difference gradient checks stay meaningful, and it runs
at about 1.5 ns an element.

The logistic and the squashing functions are built on it:

- ``logistic(a) = 1 / (1 + exp(-a))``, from ``e = expm1(-|a|)``:
  ``1 / (2 + e)`` for a >= 0, ``(1 + e) / (2 + e)`` for a < 0;
- ``tanh(a) = sign(a) * (-e) / (2 + e)`` with ``e = expm1(-2|a|)``, exact in
  relative terms for small |a| too;
- the 2005 paper's cell squashing ``4 logistic(a) - 2 = 2 tanh(a / 2)``.

Squashing functions of the LSTM cell input (g) and output (h) are selected by
an integer code (:data:`SQUASH_CODES`): 0 = ``tanh``, 1 = ``4*logistic(x)-2``;
the hidden units of the plain recurrent layer by :data:`ACTIVATION_CODES`:
0 = ``tanh``, 1 = ``logistic``. Derivatives are written in terms of the
function's *output* ``y``, which is what the forward pass keeps (the kernels
write them inline, in the arrays' precision). Equations:
``docs/EQUATIONS.md``; Graves & Schmidhuber (2005), sections 3-4.
"""

import numpy as np
from numba import types
from numba.extending import overload

from seqprop.kernels._jit import JIT_OPTIONS, jit
from seqprop.options import Activation, Squash

SQUASH_CODES = {Squash.TANH: 0, Squash.LOGISTIC2: 1}
"""LSTM cell squashing function -> kernel code."""
ACTIVATION_CODES = {Activation.TANH: 0, Activation.LOGISTIC: 1}
"""Plain recurrent layer hidden-unit function -> kernel code."""

_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # high bits of ln 2: k * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10


@jit
def expm1_into(x, out, ibuf):
    """``out[j] = expm1(x[j])`` for the first ``n = x.shape[0]`` entries.

    ``x`` and ``out`` are float64 vectors; ``ibuf`` an int64 work vector of at
    least n entries. Pass distinct arrays: in place (``out is x``) the loops
    do not vectorise and the call is three times slower. Arguments are clamped to
    [-700, 700] (beyond that expm1 is -1 or overflows anyway).

    Accuracy, measured by ``tests/test_kernels.py`` over a dense sweep against
    numpy's ``expm1``: at most 1 ulp on [-700, 0] (the only arguments the
    kernels pass) and 2 ulp on [0, 700] in float64; rounded to float32, the
    results are at most 2 float32 ulp from numpy's float32 ``expm1`` (whose own
    error accounts for that: they are within 1 ulp of float64 ``expm1``
    rounded to float32).
    """
    _finish_f64(out, ibuf, _reduce_f64(x, out, ibuf), 1.0)


@jit
def exp_into(x, out, ibuf):
    """``out[j] = exp(x[j])``: :func:`expm1_into`'s reduction and polynomial, with
    ``2**k (exp(r) - 1) + 2**k`` as the last step (relative error of a few ulp)."""
    _finish_f64(out, ibuf, _reduce_f64(x, out, ibuf), 0.0)


@jit
def _reduce_f64(x, out, ibuf):
    """``out[j] = exp(r) - 1`` and ``ibuf[j]`` = the bits of ``2**k``, with
    ``x[j] = k ln 2 + r``; returns n."""
    n = x.shape[0]
    for j in range(n):
        v = min(max(x[j], -700.0), 700.0)
        k = np.floor(v * _LOG2E + 0.5)
        r = (v - k * _LN2_HI) - k * _LN2_LO  # |r| <= ln(2)/2
        q = 1.0 / 6227020800.0
        q = q * r + 1.0 / 479001600.0
        q = q * r + 1.0 / 39916800.0
        q = q * r + 1.0 / 3628800.0
        q = q * r + 1.0 / 362880.0
        q = q * r + 1.0 / 40320.0
        q = q * r + 1.0 / 5040.0
        q = q * r + 1.0 / 720.0
        q = q * r + 1.0 / 120.0
        q = q * r + 1.0 / 24.0
        q = q * r + 1.0 / 6.0
        q = q * r + 0.5
        q = q * r + 1.0
        out[j] = q * r  # exp(r) - 1
        ibuf[j] = (np.int64(k) + 1023) << 52  # bits of the float64 2**k
    return n


@jit
def _finish_f64(out, ibuf, n, minus):
    """``out = 2**k (exp(r) - 1) + 2**k - minus``: expm1 (``minus`` 1) or exp (0)."""
    scale = ibuf[:n].view(np.float64)
    for j in range(n):
        s = scale[j]
        out[j] = s * out[j] + (s - minus)


_LN2_HI_F32 = np.float32(0.693145751953125)  # 16 significant bits: k * _LN2_HI_F32 is exact
_LN2_LO_F32 = np.float32(1.428606765330187045e-06)


@jit
def expm1_into_f32(x, out, ibuf):
    """``out[j] = expm1(x[j])`` in float32 arithmetic, for float32 ``x`` and ``out``.

    The float32 counterpart of :func:`expm1_into` (``ibuf`` an int32 work
    vector): the same Cody-Waite reduction with a split ``ln 2`` of 16 + 24
    bits, a degree-8 Taylor polynomial (truncation below 2e-9 relative on
    ``|r| <= ln(2)/2``), the power of two from float32 exponent bits. Every
    operation is a float32 one, so the loops run 16 lanes wide on AVX-512.
    Arguments are clamped to [-87, 88] (``expm1(-87)`` is -1 in float32).
    Accuracy, measured by ``tests/test_kernels.py``: at most 2 float32 ulp from
    float64 ``expm1`` rounded to float32 on [-87, 0].
    """
    _finish_f32(out, ibuf, _reduce_f32(x, out, ibuf), np.float32(1.0))


@jit
def exp_into_f32(x, out, ibuf):
    """``out[j] = exp(x[j])`` in float32 arithmetic (see :func:`exp_into`)."""
    _finish_f32(out, ibuf, _reduce_f32(x, out, ibuf), np.float32(0.0))


@jit
def _reduce_f32(x, out, ibuf):
    """float32 :func:`_reduce_f64` (``ibuf`` int32)."""
    n = x.shape[0]
    lo = np.float32(-87.0)
    hi = np.float32(88.0)
    log2e = np.float32(_LOG2E)
    half = np.float32(0.5)
    one = np.float32(1.0)
    c2 = np.float32(1.0 / 2.0)
    c3 = np.float32(1.0 / 6.0)
    c4 = np.float32(1.0 / 24.0)
    c5 = np.float32(1.0 / 120.0)
    c6 = np.float32(1.0 / 720.0)
    c7 = np.float32(1.0 / 5040.0)
    c8 = np.float32(1.0 / 40320.0)
    for j in range(n):
        v = min(max(x[j], lo), hi)
        k = np.floor(v * log2e + half)
        r = (v - k * _LN2_HI_F32) - k * _LN2_LO_F32
        q = c8 * r + c7
        q = q * r + c6
        q = q * r + c5
        q = q * r + c4
        q = q * r + c3
        q = q * r + c2
        q = q * r + one
        out[j] = q * r
        ibuf[j] = (np.int32(k) + np.int32(127)) << np.int32(23)
    return n


@jit
def _finish_f32(out, ibuf, n, minus):
    """float32 :func:`_finish_f64`."""
    scale = ibuf[:n].view(np.float32)
    for j in range(n):
        s = scale[j]
        out[j] = s * out[j] + (s - minus)


def expm1_work(x, out, ibuf):
    """``expm1`` of a float32 or float64 vector in its own precision (kernels only).

    Resolves at compile time to :func:`expm1_into` (float64, int64 ``ibuf``)
    or :func:`expm1_into_f32` (float32, int32 ``ibuf``); callable from numba
    code only. ``ibuf`` is an int64 work vector of at least n entries (the
    float32 version uses it as 2n int32 entries).
    """
    raise NotImplementedError("expm1_work is called from numba kernels only")


@overload(expm1_work, jit_options=JIT_OPTIONS)
def _expm1_work_overload(x, out, ibuf):
    if isinstance(x, types.Array) and x.dtype == types.float32:
        return lambda x, out, ibuf: expm1_into_f32(x, out, ibuf.view(np.int32))
    return lambda x, out, ibuf: expm1_into(x, out, ibuf)


@jit
def squash_scale(code):
    """(inner, outer): ``squash(a) = outer * tanh(inner * a / 2)``, from ``e = expm1(-inner |a|)``."""
    if code == 0:
        return 2.0, 1.0  # tanh(a): e = expm1(-2|a|)
    return 1.0, 2.0  # 2 tanh(a/2): e = expm1(-|a|)


def exp_work(x, out, ibuf):
    """``exp`` of a float32 or float64 vector in its own precision (kernels only);
    :func:`exp_into` or :func:`exp_into_f32`, as :func:`expm1_work` chooses."""
    raise NotImplementedError("exp_work is called from numba kernels only")


@overload(exp_work, jit_options=JIT_OPTIONS)
def _exp_work_overload(x, out, ibuf):
    if isinstance(x, types.Array) and x.dtype == types.float32:
        return lambda x, out, ibuf: exp_into_f32(x, out, ibuf.view(np.int32))
    return lambda x, out, ibuf: exp_into(x, out, ibuf)
