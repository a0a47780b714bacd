"""Frame-wide products and elementwise passes, split over seqprop's two threads when large.

A product over all frames (input projections, weight gradients, an output
layer) is split in two halves that run on the calling thread and seqprop's
worker (:func:`seqprop._parallel.run_pair`) once it is large enough to pay for
the hand-off. Whether it is split is decided from shapes alone, never from the
thread count, and the halves are computed the same way on one thread, so
results do not depend on the thread count.
"""

from __future__ import annotations

import numpy as np

from seqprop._parallel import NO_LAUNCH, blas_single_thread, run_pair

SPLIT_MIN_FRAMES = 2048
"""Frame-wide products over this many frames are split in two (see :func:`frame_matmul`)."""
SPLIT_MIN_MACS = 32_000_000
"""... and so are products of at least this many multiply-adds (the MLP's, online).

Smaller products are not worth the hand-off: splitting the output layer's and a
one-direction layer's products of one 300-frame sequence (3-25 M multiply-adds)
was measured slower or no faster than one thread doing them (issue 14)."""


SPLIT_MIN_BYTES = 512 * 1024
"""Elementwise passes over vectors of this many bytes or more are split in two
(:func:`run_elementwise`).

Measured on the machine of issue 14 with the SGD update after a training step: the
MLP's (609 KB in float32, 1.2 MB in float64) 4-7 % faster steps split; the
one-direction LSTM's (410 KB in float32) 3 % slower, the hand-off costing more than
the half saved; the recurrent nets' in float64 (800-820 KB) within +-2 %."""


def split_worthwhile(rows, inner, cols, frames=None) -> bool:
    """Whether a (rows, inner) @ (inner, cols) product over ``frames`` frames is split.

    Decided from shapes alone, never from the thread count, so that results do
    not depend on it.
    """
    return work_worthwhile(rows if frames is None else frames, rows * inner * cols)


def work_worthwhile(frames, macs) -> bool:
    """Whether work over ``frames`` frames costing ``macs`` multiply-adds is split in two
    (the thresholds of :func:`split_worthwhile`, from shapes alone)."""
    return frames >= SPLIT_MIN_FRAMES or macs >= SPLIT_MIN_MACS


def frame_matmul(a, b, out=None, *, split=True, frames=None, epilogue=None):
    """``a @ b`` for a product over all frames, split in two halves when it is large.

    Large: :func:`split_worthwhile`; below that, handing half to another core
    costs more than it saves. ``frames`` is the number of frames the product
    covers (default: ``a``'s rows). ``epilogue(lo, hi)``, when given, is called
    on each block of rows ``out[lo:hi]`` right after its product, on the same
    thread (an elementwise finish: bias and activation). Returns ``out``
    (allocated when None).
    """
    if out is None:
        out = np.empty((a.shape[0], b.shape[1]), dtype=np.result_type(a, b))
    rows, inner, cols = a.shape[0], a.shape[1], b.shape[1]
    split = split and split_worthwhile(rows, inner, cols, frames)
    _matmul(a, b, out, split, epilogue)
    return out


def frame_grad_matmul(d, x, out, *, split=True, frames=None):
    """``out[...] = d^T @ x``: a weight gradient, summed over the rows (frames) of ``d``
    (N, G) and ``x`` (N, I); ``frames``: the frames it covers (default N).

    When the product is large (:func:`split_worthwhile`, as :func:`frame_matmul`
    decides) it is two products over the halves of the frames, one per thread,
    added in a fixed order (the second half's into the first's): faster than
    halving ``out``'s rows, which gives BLAS strided, short operands (1.35x for
    the softmax head's 61-row gradient at batch 16). Results do not depend on
    the thread count.
    """
    n = d.shape[0]
    frames = n if frames is None else frames
    if not split or n < 2 or not split_worthwhile(out.shape[0], n, out.shape[1], frames):
        np.matmul(d.T, x, out=out)
        return out
    h = n // 2
    part = np.empty_like(out)
    with blas_single_thread():  # the same products on one thread or two
        run_pair(
            lambda: np.matmul(d[:h].T, x[:h], out=out),
            lambda: np.matmul(d[h:].T, x[h:], out=part),
        )
    out += part
    return out


def _matmul(a, b, out, split, epilogue=None):
    """``out[...] = a @ b``; with ``split``, as two products over halves of ``a``'s rows.

    The halves run on two threads when seqprop may use two, one after the
    other otherwise, so the arithmetic is the same whatever the thread count.
    Callers decide ``split`` from shapes alone (never from the thread count).
    ``epilogue(lo, hi)`` follows each block's product (see :func:`frame_matmul`).
    """
    n = a.shape[0]
    if not split or n < 2:
        np.matmul(a, b, out=out)
        if epilogue is not None:
            epilogue(0, n)
        return
    h = n // 2
    run_pair(lambda: _block(a, b, out, 0, h, epilogue), lambda: _block(a, b, out, h, n, epilogue))


def _block(a, b, out, lo, hi, epilogue):
    np.matmul(a[lo:hi], b, out=out[lo:hi])
    if epilogue is not None:
        epilogue(lo, hi)


def run_elementwise(kernel, vectors, scalars=()):
    """``kernel(*vectors, *scalars, *launch)``: an elementwise pass over the equal-length
    1-D ``vectors``, as two halves on the two threads from :data:`SPLIT_MIN_BYTES`.

    Split when the first vector holds that many bytes or more (shapes alone, never the
    thread count), at a multiple of 64 bytes; each entry is computed alike either
    way, so results do not depend on the split. ``launch`` is the
    :func:`seqprop._parallel.run_pair` launch token that the kernel passes first thing
    to :func:`seqprop.kernels.sync.start_worker` (:data:`~seqprop._parallel.NO_LAUNCH`
    for a kernel that starts nothing).
    """
    first = vectors[0]
    n = first.shape[0]
    per_line = max(1, 64 // first.itemsize)
    h = n // 2 // per_line * per_line
    if first.nbytes < SPLIT_MIN_BYTES or h == 0:
        kernel(*vectors, *scalars, *NO_LAUNCH)
        return
    lo = [v[:h] for v in vectors]
    hi = [v[h:] for v in vectors]
    run_pair(
        lambda launch: kernel(*lo, *scalars, *launch),
        lambda: kernel(*hi, *scalars, *NO_LAUNCH),
        launch=True,
    )


def row_blocks(n, split):
    """Row ranges of a split (two halves, as in :func:`_matmul`) or unsplit elementwise pass."""
    if not split or n < 2:
        return ((0, n),)
    return ((0, n // 2), (n // 2, n))


def run_row_blocks(rows, n, split, *, launch=False):
    """``rows(lo, hi)`` over ``n`` rows: two halves (one hand-off) with ``split``, else once.

    With ``launch`` the first half is called as ``rows(lo, hi, launch)`` (see
    :func:`seqprop._parallel.run_pair`)."""
    blocks = row_blocks(n, split)
    if len(blocks) == 2 and launch:
        run_pair(lambda token: rows(*blocks[0], token), lambda: rows(*blocks[1]), launch=True)
    elif len(blocks) == 2:
        run_pair(lambda: rows(*blocks[0]), lambda: rows(*blocks[1]))
    else:
        rows(*blocks[0])
