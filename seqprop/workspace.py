"""Work arrays reused from one call to the next (:class:`Workspace`), and the ``work``
property that gives a layer or a head its own (:class:`HasWorkspace`)."""

from __future__ import annotations

import math
import sys
import threading

import numpy as np

from seqprop._memory import huge_page_empty


def _free_buffer_refs() -> int:
    """``sys.getrefcount`` of a stored buffer nothing else refers to, measured the way
    :meth:`Workspace.array` looks (a dict entry and a local name), so that the
    test does not depend on the interpreter's reference-counting details."""
    store = {"buf": np.empty(1)}
    buf = store.get("buf")
    return sys.getrefcount(buf)


_FREE_REFS = _free_buffer_refs()


class Workspace:
    """Work arrays a layer reuses from one call to the next, one set per thread.

    A training step of a batch writes tens of megabytes of activations and
    errors. Allocated afresh each call, every 4 KiB page of them is a page
    fault on first touch (the kernel zeroes it): about a fifth of a batch-16
    BLSTM step, and the main source of its step-to-step spread. Arrays handed
    out here keep their memory; :meth:`array` returns a view of the first
    ``prod(shape)`` entries of a buffer that grows to the largest size asked.

    A buffer is handed out again only when nothing refers to it any more (no
    view of it is alive: its reference count says so), so outputs and caches
    a caller still holds are never overwritten; a training loop that drops
    each step's arrays before the next gets the same memory back every step.
    Buffers are per thread (two threads never share one). Not copied or
    pickled.
    """

    def __init__(self):
        self._local = threading.local()

    def array(self, name: str, shape: tuple[int, ...], dtype, *, huge=False) -> np.ndarray:
        """An uninitialised C-contiguous array of ``shape`` and ``dtype`` named ``name``.

        ``huge``: in memory the system may back with 2 MiB pages
        (:func:`seqprop._memory.huge_page_empty`), for an array read at every time
        step (a recurrent weight matrix)."""
        store = getattr(self._local, "arrays", None)
        if store is None:
            store = self._local.arrays = {}
        n = math.prod(shape)
        dtype = np.dtype(dtype)
        buf = store.get(name)
        if buf is None or buf.dtype != dtype or buf.size < n or sys.getrefcount(buf) > _FREE_REFS:
            buf = huge_page_empty(n, dtype) if huge else np.empty(n, dtype=dtype)
            store[name] = buf
        return buf[:n].reshape(shape)

    def __getstate__(self):
        return {}

    def __setstate__(self, state):
        self._local = threading.local()

    def __deepcopy__(self, memo):
        return Workspace()


class HasWorkspace:
    """Mixin: a :class:`Workspace` of the object's own, made on first use (``self.work``)."""

    @property
    def work(self) -> Workspace:
        ws = self.__dict__.get("_work")
        if ws is None:
            ws = self.__dict__["_work"] = Workspace()
        return ws
