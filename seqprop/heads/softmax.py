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
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from seqprop.heads.base import Head, StepResult, TargetKind, register_head
from seqprop.kernels.loss import softmax, softmax_xent, xent_counts
from seqprop.layers import frame_matmul

__all__ = ["SoftmaxHead"]


@register_head
class SoftmaxHead(Head):
    """K softmax units per frame with framewise cross-entropy.

    Parameters: ``W`` (K, D), ``b`` (K,). Counts: ``frames`` (labelled
    frames scored) and ``errors`` (of those, frames misclassified).
    """

    name = "softmax"
    target_kind = TargetKind.FRAME_CLASS
    count_names = ("frames", "errors")
    selection = "frame_error"

    def prepare_targets(self, y, valid: np.ndarray) -> np.ndarray:
        """(T, B) int targets -> (T*B,) int64 with -1 past each length."""
        T, B = valid.shape
        y = np.asarray(y)
        if y.shape != (T, B):
            raise ValueError(f"y must have shape (T, B) = {(T, B)}, got {y.shape}")
        if not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"y must be integers (class index, -1 = no target), got {y.dtype}")
        targets = np.where(valid, y, -1).astype(np.int64)
        bad = (targets < -1) | (targets >= self.num_classes)
        if bad.any():
            t, b = np.argwhere(bad)[0]
            raise ValueError(
                f"y[{t}, {b}] = {int(y[t, b])} is not a class index in "
                f"[0, {self.num_classes}) or -1"
            )
        return targets.reshape(T * B)

    @staticmethod
    def _logits(p: Mapping[str, np.ndarray], h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Logits (T*B, K) and the flattened input (T*B, D)."""
        T, B, D = h.shape
        hf = h.reshape(T * B, D)
        logits = frame_matmul(hf, p["W"].T)
        logits += p["b"]
        return logits, hf

    def loss_and_grad(self, p, g, h, lengths, targets, reduction):
        T, B, _ = h.shape
        logits, hf = self._logits(p, h)
        probs = np.empty_like(logits)
        dlogits = np.empty_like(logits)
        loss_sum, n, n_correct = softmax_xent(logits, targets, probs, dlogits)
        loss = loss_sum
        if reduction == "mean":
            scale = 1.0 / n if n else 0.0
            loss *= scale
            dlogits *= scale
        frame_matmul(dlogits.T, hf, g["W"], frames=T * B)
        np.sum(dlogits, axis=0, out=g["b"])
        dh = frame_matmul(dlogits, p["W"]).reshape(T, B, -1)
        counts = {"frames": int(n), "errors": int(n - n_correct)}
        return StepResult(float(loss), float(loss_sum), int(n), counts), dh

    def score(self, p, h, lengths, targets):
        logits, _ = self._logits(p, h)
        total, n, correct = xent_counts(logits, targets)
        counts = {"frames": int(n), "errors": int(n - correct)}
        return StepResult(float(total), float(total), int(n), counts)

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
