"""The sequence head: one softmax classification per whole sequence.

The top hidden layer ``h`` (T, B, D) is pooled over each sequence's frames
into one vector ``z`` (B, D), and K softmax units over ``z`` give the class
probabilities of the sequence; the loss is the cross-entropy summed over the
labelled sequences (Graves 2012, *Supervised Sequence Labelling with
Recurrent Neural Networks*, section 2.3 on sequence classification;
``docs/HEADS.md``). With ``a = W z + b`` and ``y = softmax(a)`` the gradient
at the softmax input is ``y - onehot(c)``, and it reaches ``h`` only at the
frames pooled (dE/dh is zero elsewhere).

Pooling (option ``pooling``):

``"last"`` (default)
    where each direction of the top layer has read the whole sequence: for a
    bidirectional top layer (output ``concat(fwd, bwd)``, forward first) the
    forward half at the sequence's last frame ``lengths[b] - 1`` and the
    backward half at frame 0; for a unidirectional top layer (or an MLP, or
    no hidden layer) its last frame.
``"mean"``
    the mean of ``h`` over the sequence's frames.

Which half is which comes from the constructor argument ``directions``
(2 for a bidirectional top layer), which ``make_network`` fills in from the
network it builds (:attr:`Head.structure_names`); it is not a user option
and is not stored in ``spec``.

Targets ``y`` are (B,) int, ``-1`` meaning "no target for this sequence";
outputs are (B, K) probabilities. The metric is the sequence error: the
fraction of labelled sequences whose most probable class (the first
maximum) is not the target.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from seqprop.heads.base import Head, StepResult, TargetKind, register_head
from seqprop.kernels.loss import softmax, softmax_xent, xent_counts

__all__ = ["POOLINGS", "SequenceConfusion", "SequenceEvaluationResult", "SequenceHead"]

POOLINGS = ("last", "mean")


@register_head
class SequenceHead(Head):
    """K softmax units per sequence over the top hidden layer pooled over time.

    Parameters: ``W`` (K, D), ``b`` (K,). Counts: ``scored_sequences``
    (labelled sequences) and ``sequence_errors`` (of those, misclassified).

    Parameters
    ----------
    input_size, num_classes : int
        D and K.
    pooling : {"last", "mean"}
        User option (module docstring).
    directions : {1, 2}
        Structure, filled in by ``make_network``: 2 when the top hidden
        layer is bidirectional, its first D/2 values the forward direction.
    """

    name = "sequence"
    target_kind = TargetKind.SEQUENCE_CLASS
    option_names = ("pooling",)
    structure_names = ("directions",)
    count_names = ("scored_sequences", "sequence_errors")
    selection = "sequence_error"

    def __init__(
        self, input_size: int, num_classes: int, *, pooling: str = "last", directions: int = 1
    ) -> None:
        super().__init__(input_size, num_classes)
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if directions not in (1, 2) or self.input_size % directions:
            raise ValueError(
                f"directions must be 1 or 2 and divide input_size={self.input_size}, "
                f"got {directions!r}"
            )
        self.pooling = pooling
        self.directions = int(directions)

    def options(self) -> dict[str, Any]:
        return {"pooling": self.pooling}

    def prepare_targets(self, y, valid: np.ndarray) -> np.ndarray:
        """(B,) int targets -> (B,) int64; -1 = not scored."""
        B = valid.shape[1]
        y = np.asarray(y)
        if y.shape != (B,):
            raise ValueError(
                f"y must have shape (B,) = ({B},), one class per sequence, got {y.shape}"
            )
        if not np.issubdtype(y.dtype, np.integer):
            raise ValueError(
                f"y must be integers (class index per sequence, -1 = no target), got {y.dtype}"
            )
        targets = y.astype(np.int64)
        bad = (targets < -1) | (targets >= self.num_classes)
        if bad.any():
            b = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"y[{b}] = {int(y[b])} is not a class index in [0, {self.num_classes}) or -1"
            )
        empty = (targets >= 0) & ~valid.any(axis=0)
        if empty.any():
            b = int(np.flatnonzero(empty)[0])
            raise ValueError(f"y[{b}] = {int(y[b])} labels sequence {b}, which has no frames")
        return targets

    # -- pooling -----------------------------------------------------------------
    def _split(self) -> int:
        """Values of ``h`` read at the last frame (the rest at frame 0)."""
        return self.input_size // self.directions

    def _pool(self, h: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """``z`` (B, D): ``h`` pooled over each sequence's frames (zeros for an empty one)."""
        T, B, D = h.shape
        cols = np.arange(B)
        if self.pooling == "mean":
            valid = np.arange(T)[:, None] < lengths[None, :]
            z = np.where(valid[:, :, None], h, 0).sum(axis=0, dtype=h.dtype)
            z /= np.maximum(lengths, 1)[:, None].astype(h.dtype)
            return z
        last = np.maximum(lengths - 1, 0)
        z = np.array(h[last, cols])
        f = self._split()
        if f < D:
            z[:, f:] = h[0, :, f:]
        z[lengths == 0] = 0.0
        return z

    def _unpool(self, dz: np.ndarray, lengths: np.ndarray, T: int) -> np.ndarray:
        """dE/dh (T, B, D) from dE/dz (B, D): nonzero only at the frames pooled."""
        B, D = dz.shape
        dh = np.zeros((T, B, D), dtype=dz.dtype)
        if self.pooling == "mean":
            valid = np.arange(T)[:, None] < lengths[None, :]
            share = dz / np.maximum(lengths, 1)[:, None].astype(dz.dtype)
            dh[...] = np.where(valid[:, :, None], share[None], 0)
            return dh
        has = lengths > 0
        cols = np.flatnonzero(has)
        f = self._split()
        dh[lengths[has] - 1, cols, :f] = dz[has, :f]
        dh[0, cols, f:] = dz[has, f:]
        return dh

    def _logits(self, p, h, lengths) -> tuple[np.ndarray, np.ndarray]:
        z = self._pool(h, lengths)
        logits = z @ p["W"].T
        logits += p["b"]
        return logits, z

    # -- passes ------------------------------------------------------------------
    def loss_and_grad(self, p, g, h, lengths, targets, reduction):
        T = h.shape[0]
        logits, z = self._logits(p, h, lengths)
        probs = np.empty_like(logits)
        dlogits = np.empty_like(logits)
        loss_sum, n, n_correct = softmax_xent(logits, targets, probs, dlogits)
        loss = loss_sum
        if reduction == "mean":
            scale = 1.0 / n if n else 0.0
            loss *= scale
            dlogits *= scale
        np.matmul(dlogits.T, z, out=g["W"])
        np.sum(dlogits, axis=0, out=g["b"])
        dh = self._unpool(dlogits @ p["W"], lengths, T)
        counts = {"scored_sequences": int(n), "sequence_errors": int(n - n_correct)}
        return StepResult(float(loss), float(loss_sum), int(n), counts), dh

    def score(self, p, h, lengths, targets):
        logits, _ = self._logits(p, h, lengths)
        total, n, correct = xent_counts(logits, targets)
        counts = {"scored_sequences": int(n), "sequence_errors": int(n - correct)}
        return StepResult(float(total), float(total), int(n), counts)

    def predict_proba(self, p, h, lengths):
        """Class probabilities per sequence, (B, K); a zero row for an empty sequence."""
        logits, _ = self._logits(p, h, lengths)
        probs = np.empty_like(logits)
        softmax(logits, probs)
        probs[lengths == 0] = 0.0
        return probs

    def predict(self, p, h, lengths):
        """Most probable class per sequence, (B,); -1 for an empty sequence."""
        labels = self.predict_proba(p, h, lengths).argmax(axis=1)
        labels[lengths == 0] = -1
        return labels

    def decide(self, outputs):
        """Most probable class (the first maximum), int32."""
        return outputs.argmax(axis=-1).astype(np.int32)

    # -- metrics -----------------------------------------------------------------
    def metrics(self, counts: Mapping[str, float]) -> dict[str, float]:
        n = int(counts.get("scored_sequences", 0))
        error = counts.get("sequence_errors", 0) / n if n else float("nan")
        return {"sequence_error": error, "scored_sequences": n}

    def evaluator(self, class_names: list[str]) -> SequenceConfusion:
        return SequenceConfusion(class_names)


@dataclass
class SequenceEvaluationResult:
    """Whole-sequence classification scores of a model on a dataset.

    Attributes
    ----------
    n_sequences, n_scored : int
        Sequences, and labelled sequences scored.
    loss : float
        Cross-entropy per labelled sequence (nats).
    sequence_accuracy : float
        Fraction of labelled sequences whose most probable class is the target.
    class_names : list of K str
    class_sequences : (K,) int ndarray
        Labelled sequences per target class.
    class_accuracy : (K,) float ndarray
        Accuracy per target class (NaN for a class with no sequence).
    confusion : (K, K) int ndarray
        ``confusion[target, predicted]`` sequence counts.
    majority_accuracy : float
        Accuracy of always answering the most frequent class (a baseline).
    """

    n_sequences: int
    n_scored: int
    loss: float
    sequence_accuracy: float
    class_names: list[str]
    class_sequences: np.ndarray
    class_accuracy: np.ndarray
    confusion: np.ndarray
    majority_accuracy: float

    @property
    def sequence_error(self) -> float:
        return 1.0 - self.sequence_accuracy

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary (NaN per-class accuracies become null)."""
        return {
            "n_sequences": self.n_sequences,
            "n_scored": self.n_scored,
            "loss": self.loss,
            "sequence_accuracy": self.sequence_accuracy,
            "sequence_error": self.sequence_error,
            "majority_accuracy": self.majority_accuracy,
            "class_names": list(self.class_names),
            "class_sequences": [int(v) for v in self.class_sequences],
            "class_accuracy": [None if np.isnan(v) else float(v) for v in self.class_accuracy],
            "confusion": self.confusion.tolist(),
        }


class SequenceConfusion:
    """Accumulates a sequence head's scores into a :class:`SequenceEvaluationResult`.

    :meth:`add` takes one sequence's class probabilities (K,) (a (1, K) row
    is accepted too) and its target class (-1 = unlabelled).
    """

    def __init__(self, class_names: Sequence[str]) -> None:
        self.class_names = list(class_names)
        k = len(self.class_names)
        self.confusion = np.zeros((k, k), dtype=np.int64)
        self.loss = 0.0

    def add(self, proba: np.ndarray, target) -> None:
        k = len(self.class_names)
        proba = np.asarray(proba, dtype=np.float64).reshape(-1)
        if proba.size != k:
            raise ValueError(f"proba must hold {k} class probabilities, got {proba.size}")
        c = int(np.asarray(target).reshape(-1)[0])
        if c < 0:
            return
        if c >= k:
            raise ValueError(f"target {c} is not a class index in [0, {k}) or -1")
        self.confusion[c, int(proba.argmax())] += 1
        self.loss -= float(np.log(max(proba[c], np.finfo(np.float64).tiny)))

    def result(self, n_sequences: int) -> SequenceEvaluationResult:
        from seqprop.evaluation import confusion_summary

        c = confusion_summary(self.confusion)
        return SequenceEvaluationResult(
            n_sequences=n_sequences,
            n_scored=c.n,
            loss=self.loss / c.n if c.n else float("nan"),
            sequence_accuracy=c.accuracy,
            class_names=self.class_names,
            class_sequences=c.per_class,
            class_accuracy=c.class_accuracy,
            confusion=self.confusion.copy(),
            majority_accuracy=c.majority_accuracy,
        )
