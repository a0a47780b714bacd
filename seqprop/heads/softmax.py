"""The framewise softmax head: the paper's phoneme classifier.

Graves & Schmidhuber (2005), section 4: K softmax output units per frame,
trained on the cross-entropy summed over the labelled frames of a sequence.
With logits ``a = W h(t) + b`` and probabilities ``y = softmax(a)``, the loss
of a frame with target class ``c`` is ``-ln y_c`` and its gradient at the
softmax input is ``y - onehot(c)`` (``docs/HEADS.md``).

Targets ``y`` are (T, B) int, ``-1`` meaning "no target at this frame";
outputs are (T, B, K) probabilities. The metric is the frame error: the
fraction of labelled frames whose most probable class (the first maximum) is
not the target.

Class weights (optional, ``class_weights``; ``docs/HEADS.md`` section 3.1):
a frame with target ``c`` contributes ``w_c (-ln y_c)`` to the loss and
``w_c (y - onehot(c))`` to the gradient, as in the paper's class-weighted
BLSTM (section 5.3). The frame error and the number of scored frames are
unweighted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from seqprop._parallel import NO_LAUNCH
from seqprop.heads.base import Head, StepResult, TargetKind, register_head
from seqprop.kernels.loss import (
    class_targets,
    ordered_sum,
    softmax,
    softmax_head_rows,
    xent_counts,
)
from seqprop.layers import OutputError
from seqprop.products import frame_grad_matmul, frame_matmul, run_row_blocks, split_worthwhile
from seqprop.workspace import HasWorkspace

__all__ = ["FrameRows", "SoftmaxHead", "inverse_frequency_weights"]


HEAD_SPLIT_ROWS = 128
"""From this many frames on, the softmax head's per-frame work (logits, softmax,
cross-entropy, dE/dlogits) runs as two halves, one per thread (one online sequence
of the paper's nets: 300 frames)."""


@register_head
class SoftmaxHead(HasWorkspace, Head):
    """K softmax units per frame with framewise cross-entropy.

    Parameters: ``W`` (K, D), ``b`` (K,). Counts: ``frames`` (labelled
    frames scored) and ``errors`` (of those, frames misclassified).

    Options
    -------
    class_weights : sequence of K floats, optional
        ``w_c >= 0``, finite: scale the loss and gradient of every frame whose
        target is class ``c`` by ``w_c``. None (default): every weight 1, the
        unweighted loss, computed exactly as without this option.
    """

    name = "softmax"
    option_names = ("class_weights",)
    target_kind = TargetKind.FRAME_CLASS
    count_names = ("frames", "errors")
    selection = "frame_error"

    def __init__(self, input_size: int, num_classes: int, *, class_weights=None) -> None:
        super().__init__(input_size, num_classes)
        self.class_weights = (
            None if class_weights is None else _check_weights(class_weights, self.num_classes)
        )

    def options(self) -> dict[str, Any]:
        """``{"class_weights": [...]}`` when weighted, else nothing (specs stay unchanged)."""
        if self.class_weights is None:
            return {}
        return {"class_weights": [float(w) for w in self.class_weights]}

    def prepare_targets(self, y, valid: np.ndarray) -> np.ndarray:
        """(T, B) int targets -> (T*B,) int64 with -1 past each length."""
        T, B = valid.shape
        y = np.asarray(y)
        if y.shape != (T, B):
            raise ValueError(f"y must have shape (T, B) = {(T, B)}, got {y.shape}")
        if not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"y must be integers (class index, -1 = no target), got {y.dtype}")
        targets = np.empty(T * B, dtype=np.int64)
        t, b = class_targets(y, valid, self.num_classes, targets)
        if t >= 0:
            raise ValueError(
                f"y[{t}, {b}] = {int(y[t, b])} is not a class index in "
                f"[0, {self.num_classes}) or -1"
            )
        return targets

    @staticmethod
    def _logits(p: Mapping[str, np.ndarray], h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Logits (T*B, K) and the flattened input (T*B, D)."""
        T, B, D = h.shape
        hf = h.reshape(T * B, D)
        logits = frame_matmul(hf, p["W"].T)
        logits += p["b"]
        return logits, hf

    def frame_rows(self, p, hf, targets, reduction, *, need_dh=True) -> FrameRows:
        """The per-frame part of :meth:`loss_and_grad` on ``hf`` (N, D), by blocks of frames.

        Call the returned :class:`FrameRows` on blocks of rows covering all N
        (on any threads), then :meth:`FrameRows.result`.
        """
        return FrameRows(self, p, hf, targets, reduction, need_dh)

    defers_output_error = True
    """:meth:`loss_and_grad` can return an :class:`~seqprop.layers.OutputError`."""

    def loss_and_grad(self, p, g, h, lengths, targets, reduction, *, defer=False):
        """See :class:`~seqprop.heads.base.Head`. With ``defer``, dE/dh may come back as an
        :class:`~seqprop.layers.OutputError` (``dlogits`` and ``W``) whose ``finish``
        computes this head's weight gradients: the top layer multiplies out its own
        columns and runs ``finish`` alongside (a bidirectional layer, on its two
        threads). It does when the products are too small to be split over two
        threads here (about one sequence); larger ones are split here instead."""
        T, B, D = h.shape
        N = T * B
        hf = h.reshape(N, D)
        split = split_worthwhile(N, D, self.num_classes)
        # deferred only where this head's products are too small to split over the two
        # threads themselves (one sequence): otherwise dE/dh and the gradients are split
        defer = defer and not split
        rows = self.frame_rows(p, hf, targets, reduction, need_dh=not defer)
        # the per-frame work in two halves, one hand-off (started from the compiled
        # call of this thread's half), from HEAD_SPLIT_ROWS frames on
        run_row_blocks(rows, N, split or N >= HEAD_SPLIT_ROWS, launch=True)

        def finish():
            frame_grad_matmul(rows.dlogits, hf, g["W"], frames=N)
            np.sum(rows.dlogits, axis=0, out=g["b"])

        if defer:

            def finish_bias():
                np.sum(rows.dlogits, axis=0, out=g["b"])

            error = OutputError(
                rows.dlogits, p["W"], (T, B, D), finish, grad_weights=g["W"],
                finish_bias=finish_bias,
            )  # fmt: skip
            return rows.result(), error
        finish()
        return rows.result(), rows.dh.reshape(T, B, D)

    def score(self, p, h, lengths, targets):
        logits, _ = self._logits(p, h)
        total, n, correct = xent_counts(logits, targets)
        if self.class_weights is not None:
            w = self._frame_weights(targets, logits.dtype)
            total = float(np.dot(w, _frame_nll(logits, targets)))
        counts = {"frames": int(n), "errors": int(n - correct)}
        return StepResult(float(total), float(total), int(n), counts)

    def _frame_weights(self, targets: np.ndarray, dtype) -> np.ndarray:
        """(T*B,) weight of each frame's target class, 0 on frames not scored."""
        w = np.zeros(targets.shape[0], dtype=dtype)
        scored = targets >= 0
        w[scored] = self.class_weights[targets[scored]]
        return w

    def predict_proba(self, p, h, lengths):
        """Class probabilities per frame, (T, B, K); zero past each length."""
        T, B, _ = h.shape
        logits, _ = self._logits(p, h)
        probs = np.empty_like(logits)
        softmax(logits, probs)
        probs = probs.reshape(T, B, self.num_classes)
        probs[np.arange(T)[:, None] >= lengths[None, :]] = 0.0
        return probs

    def predict(self, p, h, lengths):
        """Most probable class per frame, (T, B); -1 past each length."""
        labels = self.predict_proba(p, h, lengths).argmax(axis=2)
        labels[np.arange(h.shape[0])[:, None] >= lengths[None, :]] = -1
        return labels

    def decide(self, outputs):
        """Most probable class (the first maximum), int32."""
        return outputs.argmax(axis=-1).astype(np.int32)

    def metrics(self, counts):
        frames = int(counts.get("frames", 0))
        error = counts.get("errors", 0) / frames if frames else float("nan")
        return {"frame_error": error, "frames": frames}

    def evaluator(self, class_names):
        from seqprop.evaluation import FrameConfusion

        return FrameConfusion(class_names)


class FrameRows:
    """Logits, softmax, cross-entropy, dE/dlogits and dE/dh of a softmax head, by row blocks.

    ``rows(lo, hi)`` does frames ``lo:hi`` of ``hf`` (N, D): the arithmetic of
    each frame is the same whatever the blocks, and the loss is summed in
    frame order by :meth:`result`, so results do not depend on how the frames
    were split or on which threads the blocks ran. Buffers come from the
    head's workspace: ``logits``, ``dlogits`` (N, K) and ``dh`` (N, D; None
    without ``need_dh``).
    """

    def __init__(self, head, p, hf, targets, reduction, need_dh):
        N, D = hf.shape
        K, dtype, ws = head.num_classes, hf.dtype, head.work
        self.head, self.p, self.hf, self.targets = head, p, hf, targets
        self.logits = ws.array("logits", (N, K), dtype)
        self.probs = ws.array("probs", (N, K), dtype)
        self.dlogits = ws.array("dlogits", (N, K), dtype)
        self.nll = ws.array("nll", (N,), np.float64)
        self.dh = ws.array("dh", (N, D), dtype) if need_dh else None
        self.weights = None
        if head.class_weights is not None:
            self.weights = head._frame_weights(targets, dtype)
        self.n = int(np.count_nonzero(targets >= 0))
        self.scale = None
        if reduction == "mean":
            self.scale = 1.0 / self.n if self.n else 0.0
        self._correct: dict[int, int] = {}  # correctly classified frames, per block

    def __call__(self, lo, hi, launch=NO_LAUNCH):
        """Frames ``lo:hi``; ``launch`` as in :func:`seqprop._parallel.run_pair`."""
        logits, dlogits, W = self.logits[lo:hi], self.dlogits[lo:hi], self.p["W"]
        _, correct = softmax_head_rows(
            self.hf[lo:hi], W, self.p["b"], self.targets[lo:hi], logits, self.probs[lo:hi],
            dlogits, self.nll[lo:hi], *launch,
        )  # fmt: skip
        self._correct[lo] = correct
        if self.weights is not None:
            dlogits *= self.weights[lo:hi, None]
        if self.scale is not None:
            dlogits *= self.scale
        if self.dh is not None:
            frame_matmul(dlogits, W, self.dh[lo:hi], split=False)

    def param_grads(self, lo, hi, g) -> None:
        """The head's weight and bias gradients from frames ``lo:hi`` alone, into ``g``."""
        dlogits = self.dlogits[lo:hi]
        frame_matmul(dlogits.T, self.hf[lo:hi], g["W"], split=False)
        np.sum(dlogits, axis=0, out=g["b"])

    def result(self) -> StepResult:
        """The loss (summed in frame order) and the counts, once every block is done."""
        if self.weights is None:
            loss_sum = ordered_sum(self.nll)
        else:
            loss_sum = float(np.dot(self.weights, _frame_nll(self.logits, self.targets)))
        loss = loss_sum if self.scale is None else loss_sum * self.scale
        n, n_correct = self.n, sum(self._correct.values())
        counts = {"frames": n, "errors": n - n_correct}
        return StepResult(float(loss), float(loss_sum), n, counts)


def _check_weights(class_weights, num_classes: int) -> np.ndarray:
    """``class_weights`` as a (K,) float64 array; ValueError naming what is wrong."""
    try:
        w = np.asarray(class_weights, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"class_weights must be {num_classes} numbers, got {class_weights!r}"
        ) from None
    if w.shape != (num_classes,):
        raise ValueError(
            f"class_weights must have one weight per class, shape ({num_classes},), "
            f"got shape {w.shape}"
        )
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise ValueError(f"class_weights[{k}] = {w[k]} is not a finite number >= 0")
    return w


def _frame_nll(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(N,) ``-ln softmax(logits)[target]`` per frame (log-sum-exp), 0 where target is -1."""
    m = logits.max(axis=1)
    lse = m + np.log(np.exp(logits - m[:, None]).sum(axis=1))
    scored = targets >= 0
    nll = np.zeros(logits.shape[0], dtype=logits.dtype)
    rows = np.flatnonzero(scored)
    nll[rows] = lse[rows] - logits[rows, targets[rows]]
    return nll


def inverse_frequency_weights(class_counts) -> list[float]:
    """Class weights inversely proportional to class frequency, mean 1 over the frames.

    With ``n_c`` labelled training frames of class ``c``, ``N = sum_c n_c`` and
    ``K'`` the number of classes with ``n_c > 0``: ``w_c = N / (K' n_c)``, and
    ``w_c = 0`` for a class with no training frame (no frame can carry its
    weight in training; a test frame of such a class adds nothing to the
    loss). Then ``sum_c n_c w_c = N``: the mean weight over the training
    frames is 1, so the weighted loss has the scale of the unweighted one
    (``docs/HEADS.md`` section 3.1; Graves & Schmidhuber 2005, section 5.3).

    Parameters
    ----------
    class_counts : (K,) array_like of int >= 0
        Labelled frames per class (e.g. ``Dataset.class_counts()``).

    Returns
    -------
    list of K floats
    """
    n = np.asarray(class_counts, dtype=np.float64)
    if n.ndim != 1 or n.size == 0 or not np.isfinite(n).all() or (n < 0).any():
        raise ValueError(f"class_counts must be a 1-D array of counts >= 0, got {class_counts!r}")
    present = n > 0
    if not present.any():
        raise ValueError("class_counts are all 0: no labelled frame to weight")
    w = np.zeros_like(n)
    w[present] = n.sum() / (np.count_nonzero(present) * n[present])
    return [float(v) for v in w]
