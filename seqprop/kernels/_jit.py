"""The one place where numba compilation flags are set.

All kernels are compiled with :data:`jit`: ``cache=True`` (compiled code is
reused by later processes), ``nogil=True`` (kernels run concurrently from
Python threads), ``fastmath=False`` (exact IEEE arithmetic, which the gradient
checks rely on) and ``boundscheck=False``. Kernels never validate their
inputs: the Python layer that calls them does, before the call.

Set the environment variable ``SEQPROP_FASTMATH=1`` to compile with fastmath
(faster reductions, not bit-reproducible, not covered by the gradient tests).
"""

import os

import numba

FASTMATH = os.environ.get("SEQPROP_FASTMATH", "0") == "1"

JIT_OPTIONS = dict(
    cache=True, nogil=True, fastmath=FASTMATH, boundscheck=False, error_model="numpy"
)

jit = numba.njit(**JIT_OPTIONS)
"""Decorator for seqprop kernels (``@jit``)."""
