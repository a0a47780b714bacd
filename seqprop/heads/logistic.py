"""The logistic head: K independent logistic outputs per frame (multi-label).

Each output k estimates the probability that attribute k is present at the
frame, ``y_k = logistic(a_k)`` with ``a = W h(t) + b``; the loss of a scored
frame is the binary cross-entropy summed over the K outputs (Bishop 1995,
*Neural Networks for Pattern Recognition*, chapter 6; Graves 2012,
*Supervised Sequence Labelling with Recurrent Neural Networks*, section 3.1;
``docs/HEADS.md``)::

    E = sum_k -t_k ln y_k - (1 - t_k) ln(1 - y_k) = sum_k softplus(a_k) - t_k a_k

computed in the softplus form, which never takes the log of a rounded-off
probability; its gradient at the output's input is ``y_k - t_k``.

Targets ``y`` are (T, B, K) float in [0, 1] (soft targets allowed); a frame
whose row is all NaN is not scored. Outputs are (T, B, K) probabilities;
decisions are ``probability > 0.5``, and a target counts as positive when it
is above 0.5.

Metrics: F1 per output and micro-averaged over all outputs (true/false
positives and false negatives pooled; an output with no positive target and
no positive decision has F1 = 1), and the exact-match rate (frames whose K
decisions all equal their targets'). Training selects on ``f1_error`` =
1 - micro-averaged F1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from seqprop.heads.base import Head, StepResult, TargetKind, register_head
from seqprop.heads.framewise import (
    FrameTargets,
    affine,
    affine_backward,
    logistic,
    prepare_float_targets,
)

__all__ = ["LogisticHead", "MultiLabelResult", "MultiLabelScores"]


def _f1(tp, fp, fn):
    """F1 = 2 tp / (2 tp + fp + fn), 1 where there is nothing to find and nothing found."""
    tp, fp, fn = (np.asarray(v, dtype=np.float64) for v in (tp, fp, fn))
    den = 2.0 * tp + fp + fn
    return np.where(den > 0, 2.0 * tp / np.where(den > 0, den, 1.0), 1.0)


def _decision_counts(probs: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per-output tp, fp, fn (K,) and the number of exact matches, over scored rows."""
    pred = probs > 0.5
    truth = targets > 0.5
    tp = np.count_nonzero(pred & truth, axis=0)
    fp = np.count_nonzero(pred & ~truth, axis=0)
    fn = np.count_nonzero(~pred & truth, axis=0)
    exact = np.count_nonzero((pred == truth).all(axis=1))
    return tp, fp, fn, exact


@register_head
class LogisticHead(Head):
    """K logistic units per frame with binary cross-entropy (multi-label).

    Parameters: ``W`` (K, D), ``b`` (K,). Counts (all additive over
    batches): ``frames`` (scored), ``exact_matches``, and per output k
    ``tp_k``, ``fp_k``, ``fn_k``.
    """

    name = "logistic"
    target_kind = TargetKind.FRAME_VALUES
    selection = "f1_error"

    def __init__(self, input_size: int, num_classes: int) -> None:
        super().__init__(input_size, num_classes)
        K = range(self.num_classes)
        self.count_names = (
            "frames",
            "exact_matches",
            *(f"tp_{k}" for k in K),
            *(f"fp_{k}" for k in K),
            *(f"fn_{k}" for k in K),
        )

    def prepare_targets(self, y, valid: np.ndarray) -> FrameTargets:
        """(T, B, K) float targets in [0, 1], all-NaN rows not scored."""
        return prepare_float_targets(y, valid, self.num_classes, unit_interval=True)

    def _counts(self, probs: np.ndarray, targets: FrameTargets) -> dict[str, int]:
        s = targets.scored
        tp, fp, fn, exact = _decision_counts(probs[s], targets.values[s])
        counts = {"frames": targets.n, "exact_matches": int(exact)}
        for k in range(self.num_classes):
            counts[f"tp_{k}"] = int(tp[k])
            counts[f"fp_{k}"] = int(fp[k])
            counts[f"fn_{k}"] = int(fn[k])
        return counts

    @staticmethod
    def _loss_sum(a: np.ndarray, targets: FrameTargets) -> float:
        s = targets.scored
        a_s = a[s]
        t_s = targets.values[s].astype(a.dtype, copy=False)
        bce = np.logaddexp(0.0, a_s)
        bce -= t_s * a_s
        return float(bce.sum(dtype=np.float64))

    def loss_and_grad(self, p, g, h, lengths, targets, reduction):
        T, B, _ = h.shape
        a, hf = affine(p, h)
        probs = logistic(a)
        loss_sum = self._loss_sum(a, targets)
        da = probs - targets.values.astype(a.dtype, copy=False)
        da[~targets.scored] = 0.0
        n = targets.n
        loss = loss_sum
        if reduction == "mean":
            scale = 1.0 / n if n else 0.0
            loss *= scale
            da *= scale
        dh = affine_backward(p, g, hf, da, (T, B))
        return StepResult(float(loss), loss_sum, n, self._counts(probs, targets)), dh

    def score(self, p, h, lengths, targets):
        a, _ = affine(p, h)
        loss_sum = self._loss_sum(a, targets)
        return StepResult(loss_sum, loss_sum, targets.n, self._counts(logistic(a), targets))

    def predict_proba(self, p, h, lengths):
        """Probability of each output per frame, (T, B, K); zero past each length."""
        T, B, _ = h.shape
        a, _ = affine(p, h)
        probs = logistic(a, out=a).reshape(T, B, self.num_classes)
        probs[np.arange(T)[:, None] >= lengths[None, :]] = 0.0
        return probs

    def predict(self, p, h, lengths):
        """Decisions ``probability > 0.5``, (T, B, K) bool; False past each length."""
        return self.predict_proba(p, h, lengths) > 0.5

    def decide(self, outputs):
        """Decisions ``probability > 0.5`` (bool)."""
        return outputs > 0.5

    def metrics(self, counts: Mapping[str, float]) -> dict[str, float]:
        K = self.num_classes
        n = int(counts.get("frames", 0))
        tp = np.array([counts.get(f"tp_{k}", 0) for k in range(K)])
        fp = np.array([counts.get(f"fp_{k}", 0) for k in range(K)])
        fn = np.array([counts.get(f"fn_{k}", 0) for k in range(K)])
        nan = float("nan")
        micro = float(_f1(tp.sum(), fp.sum(), fn.sum())) if n else nan
        per_output = _f1(tp, fp, fn) if n else np.full(K, nan)
        return {
            "f1_error": 1.0 - micro,
            "micro_f1": micro,
            "exact_match": counts.get("exact_matches", 0) / n if n else nan,
            "frames": n,
            **{f"f1_{k}": float(per_output[k]) for k in range(K)},
        }

    def evaluator(self, class_names: list[str]) -> MultiLabelScores:
        return MultiLabelScores(class_names)


@dataclass
class MultiLabelResult:
    """Scores of a logistic-head model on a dataset.

    Attributes
    ----------
    n_sequences, n_frames : int
        Sequences, and frames scored.
    loss : float
        Binary cross-entropy per scored frame, summed over the outputs (nats).
    micro_f1 : float
        F1 over the pooled decisions of every output.
    exact_match : float
        Fraction of scored frames whose K decisions are all right.
    class_names : list of K str
        The outputs' names.
    true_positives, false_positives, false_negatives : (K,) int ndarray
    precision, recall, f1 : (K,) float ndarray
        Per output (precision/recall NaN where undefined; F1 1 for an
        output never positive in targets nor decisions).
    """

    n_sequences: int
    n_frames: int
    loss: float
    micro_f1: float
    exact_match: float
    class_names: list[str]
    true_positives: np.ndarray
    false_positives: np.ndarray
    false_negatives: np.ndarray

    @property
    def f1(self) -> np.ndarray:
        return _f1(self.true_positives, self.false_positives, self.false_negatives)

    @property
    def precision(self) -> np.ndarray:
        den = self.true_positives + self.false_positives
        return np.where(den > 0, self.true_positives / np.maximum(den, 1), np.nan)

    @property
    def recall(self) -> np.ndarray:
        den = self.true_positives + self.false_negatives
        return np.where(den > 0, self.true_positives / np.maximum(den, 1), np.nan)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary (undefined values become null)."""

        def floats(v):
            return [None if np.isnan(x) else float(x) for x in v]

        return {
            "n_sequences": self.n_sequences,
            "n_frames": self.n_frames,
            "loss": self.loss,
            "micro_f1": self.micro_f1,
            "f1_error": 1.0 - self.micro_f1,
            "exact_match": self.exact_match,
            "class_names": list(self.class_names),
            "true_positives": [int(v) for v in self.true_positives],
            "false_positives": [int(v) for v in self.false_positives],
            "false_negatives": [int(v) for v in self.false_negatives],
            "precision": floats(self.precision),
            "recall": floats(self.recall),
            "f1": floats(self.f1),
        }


class MultiLabelScores:
    """Accumulates a logistic head's scores into a :class:`MultiLabelResult`.

    :meth:`add` takes one sequence's output probabilities (T, K) and targets
    (T, K) float (a row of NaN = frame not scored).
    """

    def __init__(self, class_names: Sequence[str]) -> None:
        self.class_names = list(class_names)
        K = len(self.class_names)
        self.tp = np.zeros(K, dtype=np.int64)
        self.fp = np.zeros(K, dtype=np.int64)
        self.fn = np.zeros(K, dtype=np.int64)
        self.exact = 0
        self.frames = 0
        self.loss = 0.0

    def add(self, proba: np.ndarray, targets: np.ndarray) -> None:
        targets = np.asarray(targets, dtype=np.float64)
        scored = ~np.isnan(targets).all(axis=1)
        if not scored.any():
            return
        prob = np.asarray(proba, dtype=np.float64)[scored]
        t = targets[scored]
        tp, fp, fn, exact = _decision_counts(prob, t)
        self.tp += tp
        self.fp += fp
        self.fn += fn
        self.exact += int(exact)
        self.frames += int(scored.sum())
        tiny = np.finfo(np.float64).tiny
        self.loss -= float(
            (
                t * np.log(np.maximum(prob, tiny)) + (1 - t) * np.log(np.maximum(1 - prob, tiny))
            ).sum()
        )

    def result(self, n_sequences: int) -> MultiLabelResult:
        n = self.frames
        nan = float("nan")
        micro = float(_f1(self.tp.sum(), self.fp.sum(), self.fn.sum())) if n else nan
        return MultiLabelResult(
            n_sequences=n_sequences,
            n_frames=n,
            loss=self.loss / n if n else nan,
            micro_f1=micro,
            exact_match=self.exact / n if n else nan,
            class_names=self.class_names,
            true_positives=self.tp.copy(),
            false_positives=self.fp.copy(),
            false_negatives=self.fn.copy(),
        )
