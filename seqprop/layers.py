"""Layers: forward and backward passes over the numba kernels.

Every layer maps a batch ``x`` of shape (T, B, I) with per-sequence
``lengths`` (B,) to an output (T, B, O). Layers hold no weights: the network
owns one flat parameter vector and hands each layer a dict of views into it
(``p``) and into the flat gradient (``g``), keyed by the layer's local
parameter names. ``forward`` returns the output and a cache that ``backward``
consumes; ``backward`` writes the parameter gradients into ``g`` (overwriting)
and returns dE/dx, or ``None`` when ``need_input_grad`` is false.

Shape legend: ``T`` frames (padded), ``B`` sequences, ``I`` input size,
``H`` hidden units/blocks per direction, ``G = 4H``, ``K`` classes.

Inputs are assumed valid and zero past each sequence's length; the network
checks and masks them before the first layer.
"""

from __future__ import annotations

import numpy as np

from seqprop._parallel import NO_LAUNCH, blas_single_thread, run_concurrently, run_pair
from seqprop.kernels.activations import ACTIVATION_CODES, SQUASH_CODES
from seqprop.kernels.dense import logistic_delta, tanh_delta, window_rows
from seqprop.kernels.lstm import (
    ABORT,
    HEAD_READY,
    gather_frame_rows,
    lstm_backward,
    lstm_backward_chunks,
    lstm_chunk_gradients,
    lstm_forward,
    lstm_layer_backward,
    lstm_layer_forward,
    lstm_layer_step,
    project_rows,
)
from seqprop.kernels.rnn import rnn_backward, rnn_forward
from seqprop.kernels.sync import publish, wait_or_abort
from seqprop.options import ACTIVATIONS
from seqprop.products import (
    frame_grad_matmul,
    frame_matmul,
    run_row_blocks,
    split_worthwhile,
    work_worthwhile,
)
from seqprop.workspace import HasWorkspace

"""Hidden unit functions of the RNN and Dense layers: ("tanh", "logistic")."""


def _sub(d: dict, prefix: str) -> dict:
    n = len(prefix)
    return {k[n:]: v for k, v in d.items() if k.startswith(prefix)}


_NO_ERROR = {
    np.dtype(t).char: (np.zeros((0, 0), dtype=t), np.zeros((0, 0), dtype=t))
    for t in (np.float32, np.float64)
}
"""Empty (dlogits, weights) by dtype: "no OutputError" for the compiled backward pass."""
_NO_FRAMES = np.zeros(0, dtype=np.int64)  # TimeWindow.window_rows: every frame, in order
_NOWHERE = {np.dtype(t).char: np.zeros((0, 0, 0), dtype=t) for t in (np.float32, np.float64)}
"""Empty (0, 0, 0) arrays by dtype: "no such array" for the compiled layer passes."""


_NO_ROWS = np.zeros(0, dtype=np.int64)
_NO_FLAGS = np.zeros(0, dtype=np.int64)


def _frame_rows(lengths: np.ndarray, T: int) -> np.ndarray:
    """Flat indices ``t*B + b`` of the frames inside their sequences, increasing."""
    return np.flatnonzero(np.arange(T)[:, None] < lengths[None, :]).astype(np.int64)


def _order(lengths: np.ndarray) -> np.ndarray:
    """Sequence indices by decreasing length (stable): the kernels' lockstep order."""
    return np.argsort(-lengths, kind="stable")


def _run_recurrence(kernel, lengths, split):
    """Call ``kernel(order)`` over the batch's sequences.

    With ``split`` (a one-direction layer) the sequences, by decreasing
    length, are dealt alternately into two shares of about equal work that
    run on two threads when seqprop may use two (one after the other
    otherwise, so results do not depend on the thread count). Kernels touch
    only their own sequences' frames. BLAS is held to one thread throughout.
    """
    order = _order(lengths)
    with blas_single_thread():
        if split and order.size > 1:
            run_pair(lambda: kernel(order[0::2]), lambda: kernel(order[1::2]))
        else:
            kernel(order)


def _prev_pairs(a: np.ndarray, b: np.ndarray, reverse: bool):
    """Pairs (a(t), b(t_prev)) over all frames, flattened to 2-D.

    ``t_prev`` is the previous step in processing order (t-1, or t+1 when
    ``reverse``). The first step of each sequence has no previous step; in
    reverse the "previous" frame of t = L-1 is the padded frame L, which holds
    zeros, so the pairing is exact for variable lengths too.
    """
    if reverse:
        a_, b_ = a[:-1], b[1:]
    else:
        a_, b_ = a[1:], b[:-1]
    return a_.reshape(-1, a.shape[-1]), b_.reshape(-1, b.shape[-1])


def _recurrent_weight_grads(g, delta, x, out, reverse, split):
    """``W_ih``, ``b`` and ``W_hh`` gradients of a recurrent layer, each one matrix product.

    ``delta`` (T, B, G) pre-activation errors, ``x`` (T, B, I) the layer input,
    ``out`` (T, B, H) its output; ``split`` as in :func:`_matmul`. Returns
    ``delta`` flattened to (T*B, G).
    """
    T, B, G = delta.shape
    D = delta.reshape(T * B, G)
    frame_grad_matmul(D, x.reshape(T * B, x.shape[2]), g["W_ih"], split=split, frames=T * B)
    np.sum(D, axis=0, out=g["b"])
    if T > 1:
        d_pairs, h_prev = _prev_pairs(delta, out, reverse)
        frame_grad_matmul(d_pairs, h_prev, g["W_hh"], split=split, frames=T * B)
    else:
        g["W_hh"][...] = 0.0
    return D


def _packed_weight_grads(ws, g, delta, x, out, reverse, lengths):
    """:func:`_recurrent_weight_grads` of a padded batch over the frames inside the
    sequences only: their rows gathered (one compiled pass), then each product
    split by rows as :func:`frame_matmul` decides. Returns ``delta`` flattened."""
    T, B, G = delta.shape
    I, H = x.shape[2], out.shape[2]
    D = delta.reshape(T * B, G)
    rows = _frame_rows(lengths, T)
    N = rows.size
    d_rows = ws.array("d_rows", (N, G), delta.dtype)
    x_rows = ws.array("x_rows", (N, I), delta.dtype)
    h_rows = ws.array("h_rows", (N, H), delta.dtype)
    x2 = x.reshape(T * B, I)
    h = N // 2 if work_worthwhile(N, N * (G + I + H)) else N  # the copy in two halves

    def gather(lo, hi):
        gather_frame_rows(
            D, x2, out, reverse, rows[lo:hi], d_rows[lo:hi], x_rows[lo:hi], h_rows[lo:hi]
        )

    run_pair(lambda: gather(0, h), lambda: gather(h, N))
    frame_grad_matmul(d_rows, x_rows, g["W_ih"], frames=N)
    np.sum(d_rows, axis=0, out=g["b"])
    frame_grad_matmul(d_rows, h_rows, g["W_hh"], frames=N)
    return D


class OutputError:
    """The error at a layer's output given as ``dlogits @ W`` (T*B, D), not yet multiplied.

    A head with an affine output layer (the softmax head) can hand its
    ``dlogits`` (T*B, K) and weights ``W`` (K, D) to the top layer instead
    of dE/dh: each direction of a bidirectional layer then multiplies out
    its own columns on its own thread, and ``finish`` (the head's own
    weight gradients) runs on the calling thread alongside. ``shape`` is
    that of dE/dh, (T, B, D). ``grad_weights`` (K, D), when given, is the head's
    weight gradient, and ``finish_bias`` computes its bias gradient alone: layers
    that write their own columns of ``grad_weights`` (:meth:`Layer.takes_head_columns`)
    leave only ``finish_bias`` to run.
    """

    def __init__(self, dlogits, weights, shape, finish, grad_weights=None, finish_bias=None):
        self.dlogits, self.weights, self.shape, self.finish = dlogits, weights, shape, finish
        self.grad_weights, self.finish_bias = grad_weights, finish_bias

    def columns(self, lo: int, hi: int) -> np.ndarray:
        """dE/dh[:, :, lo:hi] as a C-contiguous (T, B, hi-lo) array."""
        T, B, _ = self.shape
        out = np.matmul(self.dlogits, np.ascontiguousarray(self.weights[:, lo:hi]))
        return out.reshape(T, B, hi - lo)


class Layer(HasWorkspace):
    """Base class. Subclasses define ``param_shapes``, ``forward`` and ``backward``.

    Large outputs and work arrays come from the layer's :class:`Workspace`
    (``self.work``): they stay valid until the layer's next call in the same
    thread.
    """

    input_size: int
    output_size: int
    accepts_output_error = False
    """Whether :meth:`backward` takes an :class:`OutputError` for ``d_out`` (and runs
    its ``finish``): a network's top layer then multiplies out the head's error."""

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {}

    def forward(self, p, x, lengths):
        raise NotImplementedError

    def backward(self, p, g, cache, d_out, need_input_grad=True):
        raise NotImplementedError

    def forward_task(self, p, x, lengths, into=None):
        """:meth:`forward` as a callable returning ``(out, cache)``, for another thread.

        A layer whose pass is mostly compiled code does its Python work (work
        arrays, argument checks) here, on the calling thread, and returns a
        callable that does little but call the kernels: two such callables
        run on two threads without waiting for each other's Python to release
        the GIL. ``into`` = ``(array, col)``: the callable also copies the
        output into ``array[:, :, col:col+O]`` (a bidirectional layer's
        concatenated output), on its own thread. The default defers
        everything to :meth:`forward`.
        """

        def run():
            out, cache = self.forward(p, x, lengths)
            if into is not None:
                into[0][:, :, into[1] : into[1] + out.shape[2]] = out
            return out, cache

        return run

    def can_be_followed(self, batch_size: int) -> bool:
        """Whether :meth:`step_followed` can take a batch of ``batch_size`` sequences."""
        return False

    def takes_head_columns(self, d_out) -> bool:
        """Whether :meth:`backward_task` of ``d_out`` (an :class:`OutputError`), with
        ``col``, also writes the head's weight gradient for the layer's own columns of the
        head's input (``d_out.grad_weights[:, col:col+O]``); the default does not."""
        return False

    def step_followed(self, p, g, x, lengths, follow, need_input_grad=True):
        """Forward and backward pass with the head computed between them on another
        thread, block by block as the output is made (see :meth:`LSTM.step_followed`);
        only where :meth:`can_be_followed`."""
        raise NotImplementedError

    def backward_task(self, p, g, cache, d_out, need_input_grad=True, col=0):
        """:meth:`backward` as a callable returning dE/dx (or None); see :meth:`forward_task`.

        The layer's output error is ``d_out[:, :, col:col+O]`` (``d_out`` may be
        a bidirectional layer's, for both directions).
        """
        if isinstance(d_out, OutputError):
            lo, hi = col, col + self.output_size
            return lambda: self.backward(p, g, cache, d_out.columns(lo, hi), need_input_grad)
        own = d_out[:, :, col : col + self.output_size]
        return lambda: self.backward(p, g, cache, np.ascontiguousarray(own), need_input_grad)


class LSTM(Layer):
    """One direction of LSTM memory blocks, one cell per block.

    Forget gates, peephole connections, logistic gates; cell input and output
    squashing ``tanh`` (default) or the 2005 paper's ``4*logistic(x)-2``
    (``squash="logistic2"``). Equations: ``docs/EQUATIONS.md``; Graves &
    Schmidhuber (2005), section 3.

    Parameters (gate order i, f, g, o): ``W_ih`` (4H, I), ``W_hh`` (4H, H),
    ``b`` (4H,), ``w_peep`` (3, H) with rows p_i, p_f, p_o.

    Parameters
    ----------
    input_size, hidden_size : int
        I and H.
    reverse : bool
        Process each sequence from its own last frame to its first.
    gradient : {"full", "truncated"}
        Full BPTT or the truncated gradient of the original LSTM.
    squash : {"tanh", "logistic2"}
        Cell input and output squashing functions g and h.
    """

    def __init__(self, input_size, hidden_size, *, reverse=False, gradient="full", squash="tanh"):
        self.input_size = int(input_size)
        self.hidden_size = int(hidden_size)
        self.output_size = self.hidden_size
        self.reverse = bool(reverse)
        self.gradient = gradient
        self.squash = squash
        self._squash_code = SQUASH_CODES[squash]
        self.split_batch = True  # cleared inside a Bidirectional layer

    accepts_output_error = True

    def param_shapes(self):
        H, I = self.hidden_size, self.input_size
        return {"W_ih": (4 * H, I), "W_hh": (4 * H, H), "b": (4 * H,), "w_peep": (3, H)}

    def forward(self, p, x, lengths):
        return self.forward_task(p, x, lengths)()

    def backward(self, p, g, cache, d_out, need_input_grad=True):
        return self.backward_task(p, g, cache, d_out, need_input_grad)()

    def takes_head_columns(self, d_out) -> bool:
        # a direction of a bidirectional layer: its compiled backward call writes its
        # columns of the head's weight gradient (lstm_layer_backward)
        return (
            not self.split_batch
            and isinstance(d_out, OutputError)
            and d_out.grad_weights is not None
        )

    def can_be_followed(self, batch_size: int) -> bool:
        # a direction of a bidirectional layer, or a batch, already uses the two threads
        return self.split_batch and batch_size == 1

    def _forward_arrays(self, x):
        """The forward pass's work arrays (from the workspace): ``xp``, ``w_hh_t``, ``cell``,
        ``hcell``, ``out`` (the gates ``act`` are written over ``xp``)."""
        T, B, _ = x.shape
        H = self.hidden_size
        ws = self.work
        xp = ws.array("xp", (T, B, 4 * H), x.dtype)
        w_hh_t = ws.array("w_hh_t", (H, 4 * H), x.dtype, huge=True)  # W_hh^T, this step's
        cell = ws.array("cell", (T, B, H), x.dtype)
        hcell = ws.array("hcell", (T, B, H), x.dtype)
        out = ws.array("out", (T, B, H), x.dtype)
        return xp, w_hh_t, cell, hcell, out

    def step_followed(self, p, g, x, lengths, follow, need_input_grad=True):
        """Forward and backward pass of one sequence in a one-direction layer
        (:meth:`can_be_followed`), the head computed between them on the other thread.

        ``follow(out)`` returns ``(block, dh, finish)``: seqprop's worker thread calls
        ``block(lo, hi)`` on the frames ``lo:hi`` of ``out`` (T, 1, H) as the forward
        recurrence finishes every :data:`PIPELINE_CHUNK` steps, and on the frames past
        the length at the end (each frame exactly once); once every block is done ``dh``
        (T, H) holds dE/dout, the backward recurrence starts on this thread, and the
        worker runs ``finish()`` (the head's own gradients), then follows the recurrence
        with the weight gradients and dE/dx (:func:`lstm_chunk_gradients`). One hand-off
        for the whole step; the recurrences run in one compiled call
        (:func:`lstm_layer_step`). On one thread the same parts run one after the other:
        the same arithmetic. Returns dE/dx, or None without ``need_input_grad``.
        """
        T, B, I = x.shape
        if not self.can_be_followed(B):
            raise ValueError("step_followed takes one sequence, in a one-direction layer")
        H, G, dt, ws = self.hidden_size, 4 * self.hidden_size, x.dtype, self.work
        xp, w_hh_t, cell, hcell, out = self._forward_arrays(x)
        act = xp
        cache = (x, lengths, act, cell, hcell, out, w_hh_t)
        block, dh, finish = follow(out)
        d_out = dh.reshape(T, B, H)
        flags_fwd = ws.array("flags_fwd", (16,), np.int64)
        flags_fwd[...] = 0
        length, chunk, rev, order = int(lengths[0]), PIPELINE_CHUNK, self.reverse, _order(lengths)
        n_chunks = -(-length // chunk)
        x2, w_ih_t, xp2 = x.reshape(T, I), p["W_ih"].T, xp.reshape(T, G)
        forward = (x2, w_ih_t, xp2, p["b"], p["W_hh"], w_hh_t, p["w_peep"], lengths, order,
                   rev, self._squash_code, act, cell, hcell, out)  # fmt: skip
        # the input projections: of the first INPUT_SPLIT_STEPS steps here, the others
        # by the other thread (in one call, the steps from there on waiting for it)
        wait, mine, theirs = 0, (0, T), None
        if length > 2 * INPUT_SPLIT_STEPS:
            wait, split = INPUT_SPLIT_STEPS, length - INPUT_SPLIT_STEPS
            mine, theirs = ((split, length), (0, split)) if rev else ((0, wait), (wait, length))
        backward, gradients, dx, flags_bwd = self._chunked_backward(
            p, g, cache, d_out, finish, need_input_grad
        )

        def blocks():
            """The head's blocks, following the forward recurrence; False if it failed."""
            for n in range(1, n_chunks + 1):
                # the last chunk is announced as n_chunks + 1, the whole pass complete
                if not wait_or_abort(flags_fwd, 0, n + (n == n_chunks), ABORT):
                    return False
                k0, k1 = (n - 1) * chunk, min(n * chunk, length)
                block(*((length - k1, length - k0) if rev else (k0, k1)))
            if length < T:
                if not wait_or_abort(flags_fwd, 0, n_chunks + 1, ABORT):
                    return False
                block(length, T)
            return True

        def recurrences():
            try:
                lstm_layer_step(*forward, flags_fwd, chunk, *mine, wait, *backward, flags_bwd)
            except BaseException:
                publish(flags_fwd, ABORT, 1)  # the other thread stops waiting
                publish(flags_bwd, ABORT, 1)
                raise

        def head_then_gradients():
            try:
                if theirs:
                    project_rows(x2, w_ih_t, xp2, *theirs, flags_fwd)
                if not blocks():
                    return
            except BaseException:
                publish(flags_fwd, ABORT, 1)  # the recurrences stop waiting for dE/dout
                raise
            publish(flags_fwd, HEAD_READY, 1)  # dE/dout: the backward recurrence may start
            gradients()

        with blas_single_thread():
            if run_concurrently(recurrences, head_then_gradients) is None:
                # one thread: forward, head, backward, gradients in turn, the same sums
                no_cat = _NOWHERE[dt.char]
                if theirs:
                    project_rows(x2, w_ih_t, xp2, *theirs, flags_fwd)
                lstm_layer_forward(
                    *forward, no_cat, 0, flags_fwd, chunk, *mine, wait, *NO_LAUNCH
                )  # fmt: skip
                blocks()
                d_out, truncated, delta, g_peep = backward
                g_peep[...] = 0.0
                lstm_backward_chunks(
                    d_out, p["W_hh"], w_hh_t, p["w_peep"], lengths, order, rev,
                    self._squash_code, truncated, act, cell, hcell, delta, g_peep, flags_bwd,
                    chunk,
                )  # fmt: skip
                gradients()
        return dx

    def forward_task(self, p, x, lengths, into=None):
        T, B, I = x.shape
        H = self.hidden_size
        G = 4 * H
        xp, w_hh_t, cell, hcell, out = self._forward_arrays(x)
        act = xp  # the kernel reads each frame's projections before it writes its gates there
        bias, peep, rev, code = p["b"], p["w_peep"], self.reverse, self._squash_code
        x2, w_ih_t, xp2 = x.reshape(T * B, I), p["W_ih"].T, xp.reshape(T * B, G)
        cache = (x, lengths, act, cell, hcell, out, w_hh_t)
        w_hh = p["W_hh"]
        if not self.split_batch or B == 1:  # one compiled call (W_hh^T there too)
            order = _order(lengths)
            cat, col = into if into is not None else (_NOWHERE[x.dtype.char], 0)
            no_flags = _NO_FLAGS

            def run(launch=NO_LAUNCH):
                with blas_single_thread():
                    lstm_layer_forward(
                        x2, w_ih_t, xp2, bias, w_hh, w_hh_t, peep, lengths, order, rev, code,
                        act, cell, hcell, out, cat, col, no_flags, 1, 0, T * B, 0, *launch,
                    )  # fmt: skip
                return out, cache

            run.launches = True
            return run

        def run_split():
            np.copyto(w_hh_t, w_hh.T)
            frame_matmul(x2, w_ih_t, xp2, split=True)
            _run_recurrence(
                lambda order: lstm_forward(
                    xp, bias, w_hh, w_hh_t, peep, lengths, order, rev, code, act, cell, hcell, out
                ),
                lengths,
                True,
            )
            if into is not None:
                into[0][:, :, into[1] : into[1] + H] = out
            return out, cache

        return run_split

    def backward_task(self, p, g, cache, d_out, need_input_grad=True, col=0):
        x, lengths, act, cell, hcell, out, w_hh_t = cache
        T, B, I = x.shape
        H = self.hidden_size
        G = 4 * H
        ws = self.work
        if self.split_batch and B == 1:
            return self._pipelined_task(p, g, cache, d_out, need_input_grad)
        delta = ws.array("delta", (T, B, G), x.dtype)
        dlogits, w_cols = _NO_ERROR[x.dtype.char]
        g_head = w_cols  # empty: no columns of the head's weight gradient to write
        if isinstance(d_out, OutputError) and not self.split_batch:
            # the compiled call multiplies out its own columns of the error, and of the
            # head's weight gradient (takes_head_columns)
            dlogits = d_out.dlogits
            w_cols = np.ascontiguousarray(d_out.weights[:, col : col + H])
            if d_out.grad_weights is not None:
                g_head = d_out.grad_weights
            d_full, d_col = _NOWHERE[x.dtype.char], 0
            d_out = ws.array("d_out", (T, B, H), x.dtype)
        elif isinstance(d_out, OutputError):  # a one-direction top layer: the head's
            d_out.finish()  # gradients are this layer's to run
            d_out = d_out.columns(col, col + H)
            d_full, d_col = _NOWHERE[x.dtype.char], 0
        elif d_out.shape[2] != H and not self.split_batch:
            # the compiled call copies its columns of the (bidirectional) error
            d_full, d_col = np.ascontiguousarray(d_out), col
            d_out = ws.array("d_out", (T, B, H), x.dtype)
        else:
            d_out = np.ascontiguousarray(d_out[:, :, col : col + H])
            d_full, d_col = _NOWHERE[x.dtype.char], 0
        w_hh, peep, rev, code = p["W_hh"], p["w_peep"], self.reverse, self._squash_code
        trunc = self.gradient == "truncated"
        dx = ws.array("dx", (T, B, I), x.dtype) if need_input_grad else None
        if not self.split_batch:  # the whole pass in one compiled call
            order = _order(lengths)
            d_pairs, h_prev = _prev_pairs(delta, out, rev)
            ones = np.ones(T * B, x.dtype)
            dx2 = dx.reshape(T * B, I) if need_input_grad else np.empty((0, I), x.dtype)
            # a padded batch: the weight gradients over the frames inside the sequences only
            n = int(lengths.sum())
            rows = _frame_rows(lengths, T) if n < T * B else _NO_ROWS
            d_rows = ws.array("d_rows", (rows.size, G), x.dtype)
            x_rows = ws.array("x_rows", (rows.size, I), x.dtype)
            h_rows = ws.array("h_rows", (rows.size, H), x.dtype)

            def run(launch=NO_LAUNCH):
                g["w_peep"][...] = 0.0
                with blas_single_thread():
                    lstm_layer_backward(
                        dlogits, w_cols, g_head, col, d_full, d_col, d_out, w_hh, w_hh_t, peep,
                        lengths,
                        order, rev, code,
                        trunc, act, cell, hcell, delta, g["w_peep"], x.reshape(T * B, I),
                        d_pairs.T, h_prev, ones, g["W_ih"], g["W_hh"], g["b"], p["W_ih"], dx2,
                        rows, out, d_rows, x_rows, h_rows, *launch,
                    )  # fmt: skip
                return dx

            run.launches = True
            return run

        def run_split():
            g_peeps = {}  # each share of the batch sums its own peephole gradients

            def kernel(order):
                g_peep = g_peeps[int(order[0])] = np.zeros((3, H), x.dtype)
                lstm_backward(
                    d_out, w_hh, w_hh_t, peep, lengths, order, rev, code, trunc,
                    act, cell, hcell, delta, g_peep,
                )  # fmt: skip

            _run_recurrence(kernel, lengths, True)
            shares = [g_peeps[b] for b in sorted(g_peeps)]  # added in a fixed order
            np.copyto(g["w_peep"], shares[0])
            for share in shares[1:]:
                g["w_peep"] += share
            if int(lengths.sum()) < T * B:  # a padded batch: products over its frames only
                D = _packed_weight_grads(ws, g, delta, x, out, rev, lengths)
            else:
                D = _recurrent_weight_grads(g, delta, x, out, rev, True)
            if need_input_grad:
                frame_matmul(D, p["W_ih"], dx.reshape(T * B, I), split=True)
            return dx

        return run_split

    def _chunked_backward(self, p, g, cache, d_out, finish, need_input_grad):
        """The two halves of a one-sequence backward pass (:meth:`step_followed`,
        :meth:`_pipelined_task`): ``(d_out, truncated, delta, g_peep)`` for the
        recurrence's compiled call, ``gradients()`` for the other thread (``finish()``
        first, unless None, then :func:`lstm_chunk_gradients`), dE/dx (or None) and the
        flags the recurrence announces its chunks in."""
        x, lengths, act, cell, hcell, out, w_hh_t = cache
        T, B, I = x.shape
        H, G, dt, ws = self.hidden_size, 4 * self.hidden_size, x.dtype, self.work
        delta = ws.array("delta", (T, B, G), dt)
        flags = ws.array("flags_bwd", (16,), np.int64)
        flags[...] = 0
        dx = ws.array("dx", (T, B, I), dt) if need_input_grad else None
        dx2 = dx.reshape(T, I) if need_input_grad else np.empty((0, I), dt)
        length, chunk, rev = int(lengths[0]), PIPELINE_CHUNK, self.reverse
        x2, out2, D = x.reshape(T, I), out.reshape(T, H), delta.reshape(T, G)
        truncated = self.gradient == "truncated"

        def gradients():
            if finish is not None:
                finish()
            lstm_chunk_gradients(
                flags, ABORT, chunk, length, rev, D, x2, out2, g["W_ih"], g["W_hh"], g["b"],
                p["W_ih"], dx2,
            )  # fmt: skip

        return (d_out, truncated, delta, g["w_peep"]), gradients, dx, flags

    def _pipelined_task(self, p, g, cache, d_out, need_input_grad):
        """:meth:`backward_task` of a one-direction layer over one sequence, on two threads.

        The calling thread runs the recurrence (:func:`lstm_backward_chunks`),
        announcing every :data:`PIPELINE_CHUNK` steps; seqprop's worker thread
        follows it with those frames' weight gradients and dE/dx
        (:func:`lstm_chunk_gradients`). For a head whose error is dE/dh (the
        softmax head follows the forward pass instead: :meth:`step_followed`);
        an :class:`OutputError` is multiplied out here and its ``finish`` runs on
        the worker first. On one thread the two halves run one after the other:
        the same arithmetic.
        """
        x, lengths, act, cell, hcell, out, w_hh_t = cache
        H = self.hidden_size
        finish = None
        if isinstance(d_out, OutputError):
            finish, d_out = d_out.finish, d_out.columns(0, H)
        else:
            d_out = np.ascontiguousarray(d_out[:, :, :H])
        (d_out, truncated, delta, g_peep), gradients, dx, flags = self._chunked_backward(
            p, g, cache, d_out, finish, need_input_grad
        )
        w_hh, peep, rev, code = p["W_hh"], p["w_peep"], self.reverse, self._squash_code
        order, chunk = _order(lengths), PIPELINE_CHUNK

        def recurrence():
            try:
                g_peep[...] = 0.0
                lstm_backward_chunks(
                    d_out, w_hh, w_hh_t, peep, lengths, order, rev, code, truncated,
                    act, cell, hcell, delta, g_peep, flags, chunk,
                )  # fmt: skip
            except BaseException:
                publish(flags, ABORT, 1)  # the other thread stops waiting
                raise

        def run():
            with blas_single_thread():
                run_pair(recurrence, gradients)
            return dx

        return run


PIPELINE_CHUNK = 32
"""Steps per chunk of a pipelined one-sequence backward pass (:meth:`LSTM._pipelined_task`):
the weight gradients follow the recurrence this many frames at a time. A constant, so
that the sums do not depend on the thread count."""
INPUT_SPLIT_STEPS = 2 * PIPELINE_CHUNK
"""A followed step (:meth:`LSTM.step_followed`) of more than twice this many frames
projects the inputs of its first this many steps itself and leaves the rest to the
other thread, which has them ready before the recurrence gets there (for the paper's
LSTM online: 0.06 ms of projections, 0.24 ms for the recurrence to reach step 64)."""


class RNN(Layer):
    """One direction of a plain recurrent layer of tanh or logistic units.

    ``h(t) = f(W_ih x(t) + W_hh h(t-1) + b)``, ``f`` = tanh or the logistic
    ``1 / (1 + exp(-a))`` of the paper's RNN and BRNN (Graves & Schmidhuber
    2005, section 4; equations in ``docs/EQUATIONS.md``). Parameters ``W_ih``
    (H, I), ``W_hh`` (H, H), ``b`` (H,).

    Parameters
    ----------
    input_size, hidden_size : int
        I and H.
    reverse : bool
        Process each sequence from its own last frame to its first.
    gradient : {"full", "truncated"}
        ``"truncated"`` treats ``h(t-1)`` in ``W_hh h(t-1)`` as a constant, so
        no error flows back in time (the analogue of the LSTM's truncation).
    activation : {"tanh", "logistic"}
        Hidden unit function ``f``.
    """

    def __init__(
        self, input_size, hidden_size, *, reverse=False, gradient="full", activation="tanh"
    ):
        self.input_size = int(input_size)
        self.hidden_size = int(hidden_size)
        self.output_size = self.hidden_size
        self.reverse = bool(reverse)
        self.gradient = gradient
        self.activation = activation
        self._activation_code = ACTIVATION_CODES[activation]
        self.split_batch = True  # cleared inside a Bidirectional layer

    def param_shapes(self):
        H, I = self.hidden_size, self.input_size
        return {"W_ih": (H, I), "W_hh": (H, H), "b": (H,)}

    def forward(self, p, x, lengths):
        T, B, I = x.shape
        H = self.hidden_size
        ws = self.work
        xp = ws.array("xp", (T, B, H), x.dtype)
        frame_matmul(x.reshape(T * B, I), p["W_ih"].T, xp.reshape(T * B, H), split=self.split_batch)
        out = ws.array("out", (T, B, H), x.dtype)
        w_hh_t = ws.array("w_hh_t", (H, H), x.dtype, huge=True)
        np.copyto(w_hh_t, p["W_hh"].T)
        bias, rev, code, w_hh = p["b"], self.reverse, self._activation_code, p["W_hh"]
        _run_recurrence(
            lambda order: rnn_forward(xp, bias, w_hh, w_hh_t, lengths, order, rev, code, out),
            lengths,
            self.split_batch,
        )
        return out, (x, lengths, out)

    def backward(self, p, g, cache, d_out, need_input_grad=True):
        x, lengths, out = cache
        T, B, I = x.shape
        H = self.hidden_size
        delta = self.work.array("delta", (T, B, H), x.dtype)
        d_out = np.ascontiguousarray(d_out)
        w_hh, rev, code = p["W_hh"], self.reverse, self._activation_code
        trunc = self.gradient == "truncated"
        _run_recurrence(
            lambda order: rnn_backward(d_out, w_hh, lengths, order, rev, code, trunc, out, delta),
            lengths,
            self.split_batch,
        )
        D = _recurrent_weight_grads(g, delta, x, out, self.reverse, self.split_batch)
        if not need_input_grad:
            return None
        dx = self.work.array("dx", (T, B, I), x.dtype)
        frame_matmul(D, p["W_ih"], dx.reshape(T * B, I), split=self.split_batch)
        return dx


class Dense(Layer):
    """Fully connected layer applied to every frame: ``y = f(x W^T + b)``.

    Parameters ``W`` (O, I), ``b`` (O,). ``activation`` ``f`` is ``"tanh"``
    or ``"logistic"`` (the MLP's hidden units; output layers belong to the
    heads). Every frame is computed alike, so the work can be done by blocks of
    frames (rows of the (T B, .) flattened arrays): :meth:`forward_rows`,
    :meth:`delta_rows`, :meth:`input_grad_rows` and :meth:`param_grads_rows`
    do one block.
    """

    def __init__(self, input_size, output_size, *, activation="tanh"):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        self.input_size = int(input_size)
        self.output_size = int(output_size)
        self.activation = activation

    def param_shapes(self):
        return {"W": (self.output_size, self.input_size), "b": (self.output_size,)}

    def forward_rows(self, p, x, y, lo, hi):
        """``y[lo:hi] = f(x[lo:hi] W^T + b)`` for ``x`` (N, I), ``y`` (N, O)."""
        yb = y[lo:hi]
        frame_matmul(x[lo:hi], p["W"].T, yb, split=False)
        yb += p["b"]
        if self.activation == "tanh":
            np.tanh(yb, out=yb)
        else:
            # logistic 1 / (1 + exp(-z)), written to avoid overflow warnings for large |z|
            np.negative(yb, out=yb)
            np.exp(np.minimum(yb, 700.0, out=yb), out=yb)
            yb += 1.0
            np.reciprocal(yb, out=yb)

    def delta_rows(self, y, dy, delta, lo, hi):
        """``delta[lo:hi]`` = dE/dz from the outputs ``y`` and their errors ``dy`` (N, O)."""
        kernel = tanh_delta if self.activation == "tanh" else logistic_delta
        kernel(y[lo:hi], dy[lo:hi], delta[lo:hi], y.dtype.type(1.0))

    def input_grad_rows(self, p, delta, dx, lo, hi):
        """``dx[lo:hi]`` = dE/dx = ``delta[lo:hi] W`` (N, I)."""
        frame_matmul(delta[lo:hi], p["W"], dx[lo:hi], split=False)

    def param_grads_rows(self, x, delta, g, lo, hi):
        """``W`` and ``b`` gradients from frames ``lo:hi`` alone into ``g``: ``delta^T x``
        and the column sums of ``delta`` over those rows."""
        Db = delta[lo:hi]
        frame_matmul(Db.T, x[lo:hi], g["W"], split=False)
        np.sum(Db, axis=0, out=g["b"])

    def forward(self, p, x, lengths):
        T, B, I = x.shape
        N, O = T * B, self.output_size
        x2 = x.reshape(N, I)
        y = self.work.array("out", (N, O), x.dtype)
        run_row_blocks(
            lambda lo, hi: self.forward_rows(p, x2, y, lo, hi), N, split_worthwhile(N, I, O)
        )
        out = y.reshape(T, B, O)
        return out, (x, out)

    def backward(self, p, g, cache, d_out, need_input_grad=True):
        x, out = cache
        T, B, I = x.shape
        O = self.output_size
        N = T * B
        y = out.reshape(N, O)
        dy = d_out.reshape(N, O)
        D = self.work.array("delta", (N, O), y.dtype)
        dx = self.work.array("dx", (T, B, I), y.dtype).reshape(N, I) if need_input_grad else None

        def rows(lo, hi):  # D = dE/dz and, when asked, dE/dx for rows lo:hi
            self.delta_rows(y, dy, D, lo, hi)
            if dx is not None:
                self.input_grad_rows(p, D, dx, lo, hi)

        # the input-gradient product decides the split, as frame_matmul would alone
        run_row_blocks(rows, N, need_input_grad and split_worthwhile(N, O, I))
        frame_grad_matmul(D, x.reshape(N, I), g["W"], frames=N)
        np.sum(D, axis=0, out=g["b"])
        if not need_input_grad:
            return None
        return dx.reshape(T, B, I)


class TimeWindow(Layer):
    """Concatenate frames ``t-w .. t+w`` of the input (the MLP's time window).

    Output (T, B, (2w+1) I), blocks ordered from ``t-w`` to ``t+w``; frames
    outside a sequence contribute zeros (the input is zero past each length).
    No parameters. The window is copied from the input by blocks of frames, in
    one compiled pass each (:meth:`window_rows`).
    """

    def __init__(self, input_size, window):
        self.input_size = int(input_size)
        self.window = int(window)
        self.output_size = (2 * self.window + 1) * self.input_size

    def window_rows(self, x, out, lo, hi, frames=None):
        """Rows ``lo:hi`` of the window of ``x`` (T, B, I) into ``out`` (T B, (2w+1) I), in
        one compiled pass (:func:`~seqprop.kernels.dense.window_rows`).

        Row ``t B + b`` is the window of frame ``t`` of sequence ``b``; with ``frames``
        (int64 array), row ``r`` is the window of frame ``frames[r]``.
        """
        picked = _NO_FRAMES if frames is None else frames
        window_rows(x, self.window, picked, lo, hi, out)

    def forward(self, p, x, lengths):
        T, B, I = x.shape
        if self.window == 0:
            return x, (x.shape, lengths)
        out = self.work.array("out", (T, B, self.output_size), x.dtype)
        self.window_rows(x, out.reshape(T * B, -1), 0, T * B)
        return out, (x.shape, lengths)

    def backward(self, p, g, cache, d_out, need_input_grad=True):
        if not need_input_grad:
            return None
        (T, B, I), lengths = cache
        w = self.window
        if w == 0:
            dx = d_out.copy()
        else:
            dx = np.zeros((T, B, I), dtype=d_out.dtype)
            for j, k in enumerate(range(-w, w + 1)):
                lo, hi = max(0, -k), min(T, T - k)
                if lo < hi:
                    dx[lo + k : hi + k] += d_out[lo:hi, :, j * I : (j + 1) * I]
        # the input past each length is a constant zero, not a function of x
        dx[np.arange(T)[:, None] >= lengths[None, :]] = 0.0
        return dx


class Bidirectional(Layer):
    """Two layers over the same input, one forward and one reversed in time.

    Output at frame t is ``concat(fwd(t), bwd(t))`` (forward first), shape
    (T, B, 2H). Parameters are the sublayers', prefixed ``fwd.`` and ``bwd.``.
    The two directions are independent and run on two threads when allowed
    (:func:`seqprop.set_num_threads`).
    """

    accepts_output_error = True

    def __init__(self, fwd: Layer, bwd: Layer):
        if fwd.input_size != bwd.input_size:
            raise ValueError("both directions need the same input size")
        self.fwd = fwd
        self.bwd = bwd
        # the two directions already take the two threads: each runs its batch whole
        fwd.split_batch = bwd.split_batch = False
        self.input_size = fwd.input_size
        self.output_size = fwd.output_size + bwd.output_size

    def param_shapes(self):
        shapes = {f"fwd.{k}": v for k, v in self.fwd.param_shapes().items()}
        shapes.update({f"bwd.{k}": v for k, v in self.bwd.param_shapes().items()})
        return shapes

    def forward(self, p, x, lengths):
        pf, pb = _sub(p, "fwd."), _sub(p, "bwd.")
        # each direction's Python work here; the two threads then run compiled code only
        # and each writes its half of the output on its own thread
        out = self.work.array("out", (*x.shape[:2], self.output_size), x.dtype)
        task_f = self.fwd.forward_task(pf, x, lengths, into=(out, 0))
        task_b = self.bwd.forward_task(pb, x, lengths, into=(out, self.fwd.output_size))
        # a compiled task on this thread starts the worker's from its kernel
        launch = getattr(task_f, "launches", False)
        (_, cf), (_, cb) = run_pair(task_f, task_b, launch=launch)
        return out, (cf, cb)

    def backward(self, p, g, cache, d_out, need_input_grad=True):
        cf, cb = cache
        Hf = self.fwd.output_size
        pf, pb, gf, gb = _sub(p, "fwd."), _sub(p, "bwd."), _sub(g, "fwd."), _sub(g, "bwd.")
        # each direction takes its columns of d_out on its own thread
        task_f = self.fwd.backward_task(pf, gf, cf, d_out, need_input_grad, col=0)
        task_b = self.bwd.backward_task(pb, gb, cb, d_out, need_input_grad, col=Hf)
        # a compiled task on this thread starts the worker's from its kernel
        launch = getattr(task_f, "launches", False)
        if isinstance(d_out, OutputError):  # the head's gradients too, on this thread
            finish = d_out.finish
            if self.fwd.takes_head_columns(d_out) and self.bwd.takes_head_columns(d_out):
                finish = d_out.finish_bias  # each direction writes its weight columns
            own_task = task_f

            def task_f(*token):
                dx = own_task(*token)
                finish()
                return dx

        dxf, dxb = run_pair(task_f, task_b, launch=launch)
        if not need_input_grad:
            return None
        dxf += dxb
        return dxf
