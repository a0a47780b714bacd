"""The training step of an MLP, by blocks of frames.

An MLP (Graves & Schmidhuber 2005, section 4: a time window of input frames,
dense layers of tanh or logistic units, a softmax output per frame) computes
every frame alike and independently of the others: the window only reads the
input. So one pass over a block of frames does all of a frame's work: its
window, each layer's output, the softmax, cross-entropy and dE/dlogits, the
errors back down the layers, and the block's contribution to every weight
gradient. Large steps (:func:`seqprop.products.work_worthwhile`, decided from
shapes alone) are split into two blocks, run on two threads when seqprop may
use two and one after the other otherwise: one hand-off per step, each
thread reading mostly what it wrote itself. The weight gradient is then the
first block's plus the second's, and the loss is summed in frame order
afterwards, so results do not depend on the thread count. (The layer-by-layer
passes of :class:`seqprop.network.Network` compute the same step; they sum the
weight gradients over all frames in one product, which rounds differently in
the last bits when the step is split.)
"""

from __future__ import annotations

import numpy as np

from seqprop.products import row_blocks, run_row_blocks, work_worthwhile

__all__ = ["FramewiseStep"]


class FramewiseStep:
    """One training step of a time window, dense layers and the softmax head.

    Parameters
    ----------
    window : TimeWindow or None
        The input window (None: the first dense layer reads the input frames).
    dense : list of (index, Dense, params, grads)
        The dense layers, bottom to top, with their parameter and gradient views.
    head : SoftmaxHead
    out_p, out_g : dict
        The head's parameter and gradient views.
    """

    def __init__(self, window, dense, head, out_p, out_g):
        self.window = window if window is not None and window.window else None
        self.dense = [layer for _, layer, _, _ in dense]
        self.params = [p for _, _, p, _ in dense]
        self.grads = [g for _, _, _, g in dense]
        self.head, self.out_p, self.out_g = head, out_p, out_g

    def __call__(self, x, targets, reduction):
        """Loss, counts (:class:`StepResult`) and the gradient, written into the grads views.

        ``x`` (T, B, I) is zero past each length and ``targets`` (T B,) -1 there
        (:meth:`Network._prepare`). Only frames with a target are computed.
        Callers hold a single-threaded BLAS.
        """
        T, B, I = x.shape
        dtype = x.dtype
        # frames without a target (padding, unlabelled) add nothing to the loss or the
        # gradient (their dE/dlogits is 0): only the scored frames are computed
        scored = targets >= 0
        self.frames = None if scored.all() else np.flatnonzero(scored)
        N = T * B if self.frames is None else self.frames.size
        if self.frames is not None:
            targets = targets[self.frames]
        self.x = x
        if self.window is not None:
            inp = self.window.work.array("out", (N, self.window.output_size), dtype)
        else:
            inp = x.reshape(T * B, I)
            if self.frames is not None:
                inp = inp[self.frames]
        self.ins, self.outs, self.deltas, self.dxs = [], [], [], []
        for k, layer in enumerate(self.dense):
            ws = layer.work
            self.ins.append(self.outs[-1] if self.outs else inp)
            self.outs.append(ws.array("out", (N, layer.output_size), dtype))
            self.deltas.append(ws.array("delta", (N, layer.output_size), dtype))
            self.dxs.append(ws.array("dx", (N, layer.input_size), dtype) if k else None)
        self.inp = inp
        top = self.outs[-1] if self.outs else inp
        self.head_rows = self.head.frame_rows(
            self.out_p, top, targets, reduction, need_dh=bool(self.dense)
        )
        macs = sum(layer.input_size * layer.output_size for layer in self.dense)
        macs = N * (macs + top.shape[1] * self.head.num_classes)
        split = work_worthwhile(N, 3 * macs)  # forward, errors, weight gradients
        self.second = self._second_grads(dtype) if len(row_blocks(N, split)) == 2 else None
        run_row_blocks(self._rows, N, split)
        if self.second is not None:
            for g, part in zip([self.out_g, *self.grads], self.second, strict=True):
                g["W"] += part["W"]
                g["b"] += part["b"]
        return self.head_rows.result()

    def _second_grads(self, dtype):
        """Buffers for the second block's gradients (head first, then the layers)."""
        parts = []
        for name, owner, shapes in [
            ("output", self.head, self.out_g),
            *(("layer", layer, g) for layer, g in zip(self.dense, self.grads, strict=True)),
        ]:
            ws = owner.work
            parts.append(
                {k: ws.array(f"{name}.grad.{k}", shapes[k].shape, dtype) for k in ("W", "b")}
            )
        return parts

    def _rows(self, lo, hi):
        """All of frames ``lo:hi``: forward, loss, errors and their weight gradients."""
        if self.window is not None:
            self.window.window_rows(self.x, self.inp, lo, hi, self.frames)
        for layer, p, h, y in zip(self.dense, self.params, self.ins, self.outs, strict=True):
            layer.forward_rows(p, h, y, lo, hi)
        rows = self.head_rows
        rows(lo, hi)
        first = lo == 0
        grads = [self.out_g, *self.grads] if first else self.second
        rows.param_grads(lo, hi, grads[0])
        dy = rows.dh
        for k in range(len(self.dense) - 1, -1, -1):
            layer = self.dense[k]
            layer.delta_rows(self.outs[k], dy, self.deltas[k], lo, hi)
            if k:
                layer.input_grad_rows(self.params[k], self.deltas[k], self.dxs[k], lo, hi)
                dy = self.dxs[k]
            layer.param_grads_rows(self.ins[k], self.deltas[k], grads[k + 1], lo, hi)
