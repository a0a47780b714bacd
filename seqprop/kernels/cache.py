"""Whether numba's on-disk cache already holds seqprop's compiled kernels.

The first process on a machine compiles every kernel it calls (a few
seconds); later ones load the cached machine code (see
:mod:`seqprop.kernels._jit`). Commands use :func:`cache_is_cold` to say so
before a slow first step, rather than leave a user wondering.
"""

from __future__ import annotations

import importlib
import os

from numba.core.registry import CPUDispatcher

KERNEL_MODULES = ("seqprop.kernels.lstm", "seqprop.kernels.rnn", "seqprop.kernels.loss")


def cache_is_cold() -> bool:
    """True when some kernel of :data:`KERNEL_MODULES` has no cache index on disk yet."""
    for name in KERNEL_MODULES:
        module = importlib.import_module(name)
        for obj in vars(module).values():
            if not isinstance(obj, CPUDispatcher) or obj.__module__ != name:
                continue
            try:
                index = obj._cache._cache_file._index_path
            except AttributeError:  # numba's cache layout changed: cannot tell
                return False
            if not os.path.exists(index):
                return True
    return False
