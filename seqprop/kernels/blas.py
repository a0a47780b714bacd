"""BLAS's general matrix product with an accumulating output, from compiled code.

numpy's ``matmul`` and numba's ``np.dot`` overwrite their output. A weight
gradient summed chunk by chunk (:func:`seqprop.kernels.lstm.lstm_chunk_gradients`)
can instead be added straight into the running sum by BLAS (``C = A B + beta C``
with ``beta = 1``), with no work array and no separate pass over the sum. The
routines are the ``sgemm``/``dgemm`` of the BLAS that scipy ships (the one
numba's ``np.dot`` calls), reached through ``scipy.linalg.cython_blas``.
"""

import llvmlite.binding as llvm
import numpy as np
from numba import types
from numba.extending import get_cython_function_address

from seqprop.kernels._jit import jit

# named symbols rather than ctypes pointers, so that compiled callers can be cached:
# each process registers the addresses before any cached code is loaded
for _name in ("sgemm", "dgemm"):
    llvm.add_symbol(
        f"seqprop_{_name}", get_cython_function_address("scipy.linalg.cython_blas", _name)
    )
# the Fortran BLAS signature: 13 pointers, passed as pointer-sized integers
_GEMM_SIG = types.void(*([types.intp] * 13))
_sgemm = types.ExternalFunction("seqprop_sgemm", _GEMM_SIG)
_dgemm = types.ExternalFunction("seqprop_dgemm", _GEMM_SIG)


@jit
def gemm_tn(d, x, c, beta):
    """``c = d^T x + beta c`` for C-contiguous ``d`` (N, G), ``x`` (N, I) and ``c``
    (G, I) of one float dtype (``beta`` of that dtype): a weight gradient summed
    over the N rows (frames), added to ``c`` with ``beta = 1``.

    In BLAS's column-major terms ``c`` is the (I, G) matrix ``x^T d``:
    ``gemm("N", "T", I, G, N, 1, x, I, d, G, beta, c, I)``. Nothing is checked.
    """
    N, G = d.shape
    I = x.shape[1]
    if N == 0:  # an empty sum
        for g in range(G):
            for i in range(I):
                c[g, i] = beta * c[g, i] if beta != 0 else 0.0
        return
    ints = np.empty(5, dtype=np.int32)  # m, n, k, then the leading dimensions of d and x
    ints[0] = I
    ints[1] = G
    ints[2] = N
    ints[3] = G
    ints[4] = I
    trans = np.empty(2, dtype=np.uint8)
    trans[0] = 78  # "N"
    trans[1] = 84  # "T"
    scalars = np.empty(2, dtype=d.dtype)
    scalars[0] = 1.0
    scalars[1] = beta
    args = (
        trans[0:].ctypes.data, trans[1:].ctypes.data, ints[0:].ctypes.data,
        ints[1:].ctypes.data, ints[2:].ctypes.data, scalars[0:].ctypes.data, x.ctypes.data,
        ints[4:].ctypes.data, d.ctypes.data, ints[3:].ctypes.data, scalars[1:].ctypes.data,
        c.ctypes.data, ints[4:].ctypes.data,
    )  # fmt: skip
    if d.itemsize == 8:
        _dgemm(*args)
    else:
        _sgemm(*args)
