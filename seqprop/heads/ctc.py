"""The CTC head: label sequences without alignment (Graves, Fernandez, Gomez & Schmidhuber 2006).

K + 1 softmax units per frame, the K labels and the blank (the LAST unit,
index K), with logits ``a = W h(t) + b``. The loss of a sequence is
``-ln p(z|x)``, p summed over every frame-level path that collapses to the
target z (repeats merged, then blanks removed), computed by the
forward-backward kernel of :mod:`seqprop.ctc`; its exact gradient at the
softmax input, ``y_k(t) - sum_{s: z'(s) = k} alpha_t(s) beta_t(s) / p``, goes
back through the output layer as the softmax head's does (``docs/HEADS.md``).
The loss is summed over sequences; ``reduction="mean"`` divides by the
number of sequences.

Targets ``y`` are (B, U) int label sequences in [0, K), padded with ``-1``
(each row's label length is its entries before the first -1; an empty target
is allowed). A target longer than its sequence can emit (its length plus its
adjacent repeats exceeds the frames) raises a ValueError naming the sequence.

Outputs: :meth:`CTCHead.predict_proba` gives (T, B, K + 1) probabilities,
:meth:`CTCHead.predict` a list of B label arrays (best path decoding). The
metric is the label error rate of best path decoding, total edit distance /
total reference labels (its counts add up over batches), so training selects
the epoch of least validation label error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from seqprop import ctc
from seqprop.heads.base import Head, StepResult, TargetKind, register_head
from seqprop.heads.framewise import affine, affine_backward
from seqprop.kernels.loss import softmax

__all__ = ["DECODERS", "CTCHead", "LabelErrorCounter", "LabelSequenceResult"]

DECODERS = ("best_path", "beam", "framewise")
"""Label-sequence decoders: CTC best path and prefix beam search (a ``ctc`` model's
outputs), and the framewise merge of a framewise model's most probable class per frame
(:func:`seqprop.ctc.merge_framewise`)."""


@dataclass(frozen=True)
class LabelTargets:
    """A batch's CTC targets: labels (B, U) int64 and label_lengths (B,) int64, validated."""

    labels: np.ndarray
    label_lengths: np.ndarray


def _edit_counts(refs: Sequence[np.ndarray], hyps: Sequence[np.ndarray]) -> dict[str, int]:
    """Summed edit counts of paired sequences (labels may all be empty)."""
    n_ref = int(sum(r.size for r in refs))
    if n_ref:
        r = ctc.label_error_rate(refs, hyps)
        edits, s, d, i = r["edits"], r["substitutions"], r["deletions"], r["insertions"]
    else:  # only empty targets: every decoded label is an insertion
        s = d = 0
        edits = i = int(sum(h.size for h in hyps))
    return {
        "label_edits": int(edits),
        "reference_labels": n_ref,
        "substitutions": int(s),
        "deletions": int(d),
        "insertions": int(i),
    }


@register_head
class CTCHead(Head):
    """K + 1 softmax units per frame (blank last) with the CTC loss.

    Parameters: ``W`` (K + 1, D), ``b`` (K + 1,). Counts: ``ctc_sequences``
    (sequences scored), ``label_edits``, ``reference_labels``,
    ``substitutions``, ``deletions``, ``insertions`` (of best path decoding
    against the targets).
    """

    name = "ctc"
    target_kind = TargetKind.LABEL_SEQUENCE
    count_names = (
        "ctc_sequences",
        "label_edits",
        "reference_labels",
        "substitutions",
        "deletions",
        "insertions",
    )
    selection = "label_error"

    @property
    def output_size(self) -> int:
        """K + 1: the labels and the blank (last)."""
        return self.num_classes + 1

    def prepare_targets(self, y, valid: np.ndarray) -> LabelTargets:
        """(B, U) int labels padded with -1 -> validated :class:`LabelTargets`."""
        B = valid.shape[1]
        y = np.asarray(y)
        if y.ndim != 2 or y.shape[0] != B:
            raise ValueError(f"y must be (B, U) label sequences with B = {B}, got shape {y.shape}")
        if y.size and not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"y must be integers (labels, -1 = padding), got {y.dtype}")
        lengths = valid.sum(axis=0).astype(np.int64)
        labels, label_lengths = ctc.validate_targets(y, None, lengths, self.num_classes)
        return LabelTargets(labels, label_lengths)

    def _counts(self, a: np.ndarray, shape, lengths, targets: LabelTargets) -> dict[str, int]:
        T, B = shape
        hyps = ctc.best_path_decode(a.reshape(T, B, -1), lengths)
        refs = [targets.labels[b, : targets.label_lengths[b]] for b in range(B)]
        return {"ctc_sequences": B, **_edit_counts(refs, hyps)}

    def loss_and_grad(self, p, g, h, lengths, targets, reduction):
        T, B, _ = h.shape
        a, hf = affine(p, h)
        loss, losses, da = ctc.ctc_loss_and_grad(
            a, lengths, targets.labels, targets.label_lengths, reduction=reduction
        )
        loss_sum = loss if reduction == "sum" else math.fsum(losses)
        dh = affine_backward(p, g, hf, da, (T, B))
        counts = self._counts(a, (T, B), lengths, targets)
        return StepResult(float(loss), float(loss_sum), B, counts), dh

    def score(self, p, h, lengths, targets):
        T, B, _ = h.shape
        a, _ = affine(p, h)
        total, _ = ctc.ctc_loss(a, lengths, targets.labels, targets.label_lengths)
        return StepResult(float(total), float(total), B, self._counts(a, (T, B), lengths, targets))

    def predict_proba(self, p, h, lengths):
        """Label and blank probabilities per frame, (T, B, K + 1); zero past each length."""
        T, B, _ = h.shape
        a, _ = affine(p, h)
        probs = np.empty_like(a)
        softmax(a, probs)
        probs = probs.reshape(T, B, self.output_size)
        probs[np.arange(T)[:, None] >= lengths[None, :]] = 0.0
        return probs

    def predict(self, p, h, lengths) -> list[np.ndarray]:
        """Best path decoding: a list of B int64 label arrays."""
        T, B, _ = h.shape
        a, _ = affine(p, h)
        return ctc.best_path_decode(a.reshape(T, B, -1), lengths)

    def decide(self, outputs):
        """The most probable unit per frame (K where the blank wins), int32."""
        return outputs.argmax(axis=-1).astype(np.int32)

    def metrics(self, counts):
        n = int(counts.get("reference_labels", 0))
        out = {"label_error": counts.get("label_edits", 0) / n if n else float("nan")}
        for k in ("substitutions", "deletions", "insertions"):
            out[k] = counts.get(k, 0) / n if n else float("nan")
        out["reference_labels"] = n
        return out

    def evaluator(self, class_names, *, decoder: str = "best_path", beam_width: int = 16):
        return LabelErrorCounter(class_names, decoder=decoder, beam_width=beam_width)


@dataclass
class LabelSequenceResult:
    """Label error rate of decoded sequences against their targets.

    Attributes
    ----------
    n_sequences : int
    decoder : str
        ``"best_path"``, ``"beam"`` (CTC prefix beam search, ``beam_width``)
        or ``"framewise"`` (a framewise model's most probable class per
        frame, repeats merged).
    beam_width : int or None
    scores : dict
        ``label_error_rate``, ``edits``, ``substitutions``, ``deletions``,
        ``insertions``, ``reference_labels`` on the model's classes.
    folded : dict or None
        For TIMIT's 61 phones: the same on the 39-phone fold (every label
        folded, those that fold to nothing dropped).
    loss : float or None
        CTC loss per sequence (nats), for a CTC model.
    """

    n_sequences: int
    decoder: str
    beam_width: int | None
    scores: dict[str, Any]
    folded: dict[str, Any] | None = None
    loss: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def label_error_rate(self) -> float:
        return float(self.scores["label_error_rate"])

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary."""
        return {
            "n_sequences": self.n_sequences,
            "decoder": self.decoder,
            "beam_width": self.beam_width,
            "loss": self.loss,
            **self.scores,
            "folded": self.folded,
            **self.extra,
        }


class LabelErrorCounter:
    """Accumulates decoded label sequences against targets into a :class:`LabelSequenceResult`.

    The CTC head's evaluator: :meth:`add` takes one sequence's outputs
    (T, K + 1) probabilities and its target label sequence. With
    ``decoder="framewise"`` the outputs are a framewise model's (T, K)
    posteriors, merged into a label string by
    :func:`seqprop.ctc.merge_framewise`.
    """

    def __init__(
        self, class_names: Sequence[str], *, decoder: str = "best_path", beam_width: int = 16
    ) -> None:
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
        if decoder == "beam" and (isinstance(beam_width, bool) or int(beam_width) < 1):
            raise ValueError(f"beam width must be a positive integer, got {beam_width!r}")
        self.class_names = list(class_names)
        self.decoder = decoder
        self.beam_width = int(beam_width)
        self.refs: list[np.ndarray] = []
        self.hyps: list[np.ndarray] = []
        self.loss = 0.0
        self._with_loss = decoder != "framewise"

    def decode(self, proba: np.ndarray) -> np.ndarray:
        """One sequence's label string from its outputs (T, C)."""
        if self.decoder == "framewise":
            return ctc.merge_framewise(proba)
        one = np.ascontiguousarray(proba[:, None, :])
        n = np.array([proba.shape[0]])
        if self.decoder == "beam":
            return ctc.prefix_beam_search(one, n, self.beam_width)[0]
        return ctc.best_path_decode(one, n)[0]

    def add(self, proba: np.ndarray, labels: np.ndarray) -> None:
        labels = np.asarray(labels, dtype=np.int64)
        self.refs.append(labels)
        self.hyps.append(self.decode(proba))
        if self._with_loss:
            one = np.log(np.maximum(proba.astype(np.float64), np.finfo(np.float64).tiny))
            self.loss += ctc.ctc_loss(one[:, None, :], [proba.shape[0]], labels[None, :])[0]

    def result(self, n_sequences: int) -> LabelSequenceResult:
        from seqprop.evaluation import timit_folding

        scores = _scores(self.refs, self.hyps)
        folded = None
        fold = timit_folding(self.class_names)
        if fold is not None:
            lut = fold[0][:-1]
            refs = [ctc.fold_labels(r, lut) for r in self.refs]
            hyps = [ctc.fold_labels(h, lut) for h in self.hyps]
            folded = {"classes": len(fold[1]), **_scores(refs, hyps)}
        return LabelSequenceResult(
            n_sequences=n_sequences,
            decoder=self.decoder,
            beam_width=self.beam_width if self.decoder == "beam" else None,
            scores=scores,
            folded=folded,
            loss=self.loss / len(self.refs) if self._with_loss and self.refs else None,
        )


def _scores(refs: list[np.ndarray], hyps: list[np.ndarray]) -> dict[str, Any]:
    c = _edit_counts(refs, hyps)
    n = c["reference_labels"]
    return {
        "label_error_rate": c["label_edits"] / n if n else float("nan"),
        "edits": c["label_edits"],
        "substitutions": c["substitutions"],
        "deletions": c["deletions"],
        "insertions": c["insertions"],
        "reference_labels": n,
    }
