"""Evaluation: scores over whole splits, reports per head, posteriors and predictions files.

:func:`score` sums a network's loss and its head's metric counts over a
split (what the trainer's validation uses); :func:`evaluate` builds the full
report of a model on a dataset by feeding every sequence's outputs to the
head's evaluator (``net.head.evaluator``: for the paper's softmax head
:class:`FrameConfusion`, giving frame accuracy, per-class accuracy, the
confusion matrix and, for TIMIT's 61 phones, the accuracy after folding to
39); :func:`iter_posteriors` and :func:`write_predictions` run a model over a
dataset. Inputs reach the network through the same preprocessing as in
training (normalisation, target delay: :mod:`seqprop.data.pipeline`), and
outputs are re-aligned with the sequence's frames (the delay undone).

Shape legend: T = frames of a sequence, I = input features, K = classes,
N = sequences, B = sequences in a batch.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from seqprop.ctc import best_path_decode
from seqprop.data import Preprocessor, check_dataset_matches, delay_sequence, sequence_where
from seqprop.errors import ConfigError, DataError
from seqprop.heads import StepResult, TargetKind

__all__ = [
    "ConfusionSummary",
    "EvaluationResult",
    "FrameConfusion",
    "confusion_summary",
    "Preprocessor",
    "check_dataset_matches",
    "delay_sequence",
    "evaluate",
    "iter_posteriors",
    "score",
    "timit_folding",
    "write_predictions",
]


def _eval_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Batches of similar length (stable sort), for cheap padded evaluation."""
    order = np.argsort(lengths, kind="stable")
    return [order[i : i + batch_size] for i in range(0, order.size, batch_size)]


def score(
    net: Any,
    sequences: Any,
    *,
    batch_size: int = 16,
) -> StepResult:
    """The summed loss and the head's metric counts over a whole split.

    Parameters
    ----------
    net : Network
    sequences : object with ``lengths`` (N,) and ``batch(indices) -> (x, y, lengths)``
        Already preprocessed sequences (as the trainer keeps them).
    batch_size : int

    Returns
    -------
    StepResult
        ``loss_sum`` (= ``loss``) and ``n_scored`` over all sequences, and
        the sums of the head's counts (``net.head.metrics`` turns them into
        metrics).
    """
    total, n_scored = 0.0, 0
    counts = dict.fromkeys(net.head.count_names, 0)
    for idx in _eval_batches(sequences.lengths, batch_size):
        x, y, lengths = sequences.batch(idx)
        r = net.score(x, y, lengths)
        total += r.loss_sum
        n_scored += r.n_scored
        for k, v in r.counts.items():
            counts[k] += v
    return StepResult(total, total, n_scored, counts)


def iter_posteriors(
    net: Any,
    dataset: Any,
    preprocessor: Preprocessor,
    *,
    batch_size: int = 16,
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Yield ``(index, outputs, targets)`` for every sequence.

    ``outputs`` are the head's :meth:`~seqprop.heads.Head.predict_proba` for
    the sequence: (T_i, K) per frame (softmax posteriors, logistic
    probabilities, squared-error values in the data's units), or (K,) for a
    head with one output per sequence (the sequence head's posteriors).
    ``targets`` are the dataset's for the sequence, in the form of its
    target kind ((T_i,) int, (T_i, K) float or a 0-d int).

    Sequences are batched by length for speed; they are yielded batch by
    batch (not in file order). The delay is undone: row ``t`` of per-frame
    outputs is the network's output for frame ``t`` of the sequence.
    """
    d = preprocessor.delay
    for idx in _eval_batches(np.asarray(dataset.lengths), batch_size):
        raw = [dataset[int(i)] for i in idx]
        wheres = [sequence_where(dataset, i) for i in idx]
        x, lengths = preprocessor.batch([x for x, _ in raw], wheres)
        proba = net.predict_proba(x, lengths)
        per_frame = proba.ndim == 3
        for b, i in enumerate(idx):
            n = raw[b][0].shape[0]
            yield int(i), (proba[d : d + n, b, :] if per_frame else proba[b]), raw[b][1]


def timit_folding(class_names: Sequence[str]) -> tuple[np.ndarray, tuple[str, ...]] | None:
    """The 61 -> 39 TIMIT phone folding as a lookup table, if ``class_names`` are TIMIT's.

    Returns
    -------
    (K + 1,) int64 ndarray, tuple of 39 str
        ``lut[k]`` is the folded class of class ``k`` (-1 for ``q``, which
        has none; ``lut[-1] = -1`` for unlabelled frames), and the folded
        class names. None when the classes are not the 61 TIMIT phones.
    """
    try:
        from seqprop.corpora.timit import phones as timit
    except ImportError:  # pragma: no cover - recipe data missing
        return None
    phones = timit.phones61()
    if sorted(class_names) != sorted(phones):
        return None
    mapping = timit.fold_map(39)
    folded = timit.folded_phones(39)
    index = {p: i for i, p in enumerate(folded)}
    lut = np.array(
        [index[mapping[c]] if mapping[c] is not None else -1 for c in class_names] + [-1],
        dtype=np.int64,
    )
    return lut, folded


@dataclass
class EvaluationResult:
    """Framewise scores of a model on a dataset.

    Attributes
    ----------
    n_sequences, n_frames : int
        Sequences, and labelled frames scored.
    loss : float
        Cross-entropy per labelled frame (nats).
    frame_accuracy : float
        Fraction of labelled frames whose most probable class is the target.
    class_names : list of K str
    class_frames : (K,) int ndarray
        Labelled frames per target class.
    class_accuracy : (K,) float ndarray
        Accuracy per target class (NaN for a class with no frames).
    confusion : (K, K) int ndarray
        ``confusion[target, predicted]`` frame counts.
    majority_accuracy : float
        Accuracy of always answering the most frequent class (a baseline).
    folded : dict or None
        For TIMIT: ``{"classes": 39, "frame_accuracy": ..., "n_frames": ...}``
        after folding targets and predictions to the 39 classes (frames of
        ``q`` left out).
    """

    n_sequences: int
    n_frames: int
    loss: float
    frame_accuracy: float
    class_names: list[str]
    class_frames: np.ndarray
    class_accuracy: np.ndarray
    confusion: np.ndarray
    majority_accuracy: float
    folded: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def frame_error(self) -> float:
        return 1.0 - self.frame_accuracy

    @property
    def class_averaged_accuracy(self) -> float:
        """Mean over the classes with labelled frames of their frame accuracy
        (every class counts once, however rare; NaN with no labelled frame).

        The figure a class-weighted error trades frame accuracy for
        (Graves & Schmidhuber 2005, section 5.3).
        """
        acc = np.asarray(self.class_accuracy, dtype=np.float64)
        present = np.asarray(self.class_frames) > 0
        return float(acc[present].mean()) if present.any() else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary (NaN per-class accuracies become null)."""
        return {
            "n_sequences": self.n_sequences,
            "n_frames": self.n_frames,
            "loss": self.loss,
            "frame_accuracy": self.frame_accuracy,
            "frame_error": self.frame_error,
            "class_averaged_accuracy": self.class_averaged_accuracy,
            "majority_accuracy": self.majority_accuracy,
            "class_names": list(self.class_names),
            "class_frames": [int(v) for v in self.class_frames],
            "class_accuracy": [None if np.isnan(v) else float(v) for v in self.class_accuracy],
            "confusion": self.confusion.tolist(),
            "folded": self.folded,
            **self.extra,
        }


def evaluate(
    net: Any,
    dataset: Any,
    preprocessor: Preprocessor,
    *,
    class_names: Sequence[str],
    batch_size: int = 16,
    decoder: str | None = None,
    beam_width: int = 16,
) -> Any:
    """Score a model on a dataset: the head's full report, or label sequences decoded.

    Without ``decoder``: a framewise model's frame accuracy, per-class accuracy,
    confusion matrix (and TIMIT 39-class accuracy) as an :class:`EvaluationResult`;
    a ``ctc`` model's label error rate of best path decoding as a
    :class:`~seqprop.heads.ctc.LabelSequenceResult`. With ``decoder``
    (:data:`seqprop.heads.ctc.DECODERS`): ``"best_path"`` or ``"beam"`` (prefix beam search of
    ``beam_width``) for a ``ctc`` model, ``"framewise"`` for a framewise model
    (the most probable class per frame, repeats merged, scored against the
    dataset's label sequences: the phone error rate of a framewise TIMIT
    model, on the scale of a CTC model's). Label sequences are scored on the
    61 TIMIT phones and on their 39-phone fold. The other heads' reports:
    :class:`~seqprop.heads.sequence.SequenceEvaluationResult` (sequence head),
    :class:`~seqprop.heads.logistic.MultiLabelResult` (logistic),
    :class:`~seqprop.heads.squared_error.RegressionResult` (squared_error);
    each has ``to_dict()``.

    Parameters
    ----------
    net : Network
    dataset : SequenceDataset
        Raw (unnormalised) sequences, opened with the head's target kind;
        checked against the network first.
    preprocessor : Preprocessor
        The model's normalisation and delay.
    class_names : sequence of K str
        The model's classes.
    batch_size : int
    decoder : str, optional
    beam_width : int

    Raises
    ------
    DataError
        The dataset's feature size or classes do not match the model, or
        label sequences are needed and the dataset has none.
    ConfigError
        A decoder that does not apply to the model's head.
    """
    check_dataset_matches(dataset, input_size=net.input_size, class_names=class_names)
    evaluator, kind = _evaluator(net, list(class_names), decoder, beam_width)
    if kind is TargetKind.LABEL_SEQUENCE:
        dataset.require_labels()
    for i, outputs, targets in iter_posteriors(net, dataset, preprocessor, batch_size=batch_size):
        evaluator.add(
            outputs, targets if kind is not TargetKind.LABEL_SEQUENCE else dataset.labels(i)
        )
    return evaluator.result(n_sequences=len(dataset))


def _evaluator(
    net: Any, class_names: list[str], decoder: str | None, beam_width: int
) -> tuple[Any, TargetKind]:
    """The evaluator for ``decoder`` and the kind of targets it is fed."""
    from seqprop.heads.ctc import DECODERS, LabelErrorCounter

    head = net.head
    if decoder is None:
        return head.evaluator(class_names), head.target_kind
    if decoder not in DECODERS:
        raise ConfigError(f"decoder must be one of {DECODERS}, got {decoder!r}")
    if isinstance(beam_width, bool) or not isinstance(beam_width, int) or beam_width < 1:
        raise ConfigError(f"beam width must be a positive integer, got {beam_width!r}")
    framewise = head.target_kind is TargetKind.FRAME_CLASS
    ctc = head.target_kind is TargetKind.LABEL_SEQUENCE
    if (decoder == "framewise" and not framewise) or (decoder != "framewise" and not ctc):
        want = "a framewise classifier (head softmax)" if decoder == "framewise" else "a ctc model"
        raise ConfigError(f"decoder {decoder!r} applies to {want}, not to head {head.name!r}")
    counter = LabelErrorCounter(class_names, decoder=decoder, beam_width=beam_width)
    return counter, TargetKind.LABEL_SEQUENCE


class FrameConfusion:
    """Accumulates framewise classification scores into an :class:`EvaluationResult`.

    The softmax head's evaluator: :meth:`add` takes one sequence's class
    probabilities (T, K) and targets (T,) (-1 = unlabelled).
    """

    def __init__(self, class_names: Sequence[str]) -> None:
        self.class_names = list(class_names)
        k = len(self.class_names)
        self.confusion = np.zeros((k, k), dtype=np.int64)
        self.loss = 0.0

    def add(self, proba: np.ndarray, y: np.ndarray) -> None:
        k = len(self.class_names)
        mask = y >= 0
        if not mask.any():
            return
        t = y[mask].astype(np.int64)
        p = proba[mask]
        pred = p.argmax(axis=1)
        self.confusion += np.bincount(t * k + pred, minlength=k * k).reshape(k, k)
        tiny = np.finfo(np.float64).tiny
        self.loss -= float(
            np.log(np.maximum(p[np.arange(t.size), t].astype(np.float64), tiny)).sum()
        )

    def result(self, n_sequences: int) -> EvaluationResult:
        c = confusion_summary(self.confusion)
        return EvaluationResult(
            n_sequences=n_sequences,
            n_frames=c.n,
            loss=self.loss / c.n if c.n else float("nan"),
            frame_accuracy=c.accuracy,
            class_names=self.class_names,
            class_frames=c.per_class,
            class_accuracy=c.class_accuracy,
            confusion=self.confusion,
            majority_accuracy=c.majority_accuracy,
            folded=_folded_accuracy(self.confusion, self.class_names),
        )


@dataclass(frozen=True)
class ConfusionSummary:
    """What a confusion matrix ``confusion[target, predicted]`` says (NaN with nothing scored).

    Attributes
    ----------
    n : int
        Scored units (frames, sequences).
    per_class : (K,) int ndarray
        Scored units per target class.
    class_accuracy : (K,) float ndarray
        Accuracy per target class (NaN for a class with none).
    accuracy, majority_accuracy : float
        Overall accuracy, and that of always answering the most frequent class.
    """

    n: int
    per_class: np.ndarray
    class_accuracy: np.ndarray
    accuracy: float
    majority_accuracy: float


def confusion_summary(confusion: np.ndarray) -> ConfusionSummary:
    """Accuracies of a confusion matrix: the classification evaluators' shared arithmetic."""
    n = int(confusion.sum())
    per_class = confusion.sum(axis=1)
    correct = np.diag(confusion)
    with np.errstate(invalid="ignore", divide="ignore"):
        class_acc = np.where(per_class > 0, correct / np.maximum(per_class, 1), np.nan)
    return ConfusionSummary(
        n=n,
        per_class=per_class,
        class_accuracy=class_acc,
        accuracy=float(correct.sum() / n) if n else float("nan"),
        majority_accuracy=float(per_class.max() / n) if n else float("nan"),
    )


def _folded_accuracy(confusion: np.ndarray, class_names: Sequence[str]) -> dict[str, Any] | None:
    """For TIMIT's 61 phones: frame accuracy after folding targets and predictions to 39."""
    fold = timit_folding(class_names)
    if fold is None or not confusion.sum():
        return None
    lut, names = fold
    # fold the confusion matrix: rows (targets) and columns (predictions)
    t_idx, p_idx = np.nonzero(confusion)
    counts = confusion[t_idx, p_idx]
    ft, fp = lut[t_idx], lut[p_idx]
    keep = ft >= 0
    total = int(counts[keep].sum())
    # a prediction of q (no folded class) counts as wrong
    ok = int(counts[keep & (ft == fp)].sum())
    return {
        "classes": len(names),
        "n_frames": total,
        "frame_accuracy": ok / total if total else float("nan"),
    }


def _write_decoded(f: Any, decoded: list[np.ndarray], class_names: Sequence[str]) -> None:
    """``decoded``, ``decoded_lengths`` and ``decoded_text`` of a predictions file."""
    import h5py

    flat = np.concatenate(decoded) if decoded else np.zeros(0, np.int64)
    f.create_dataset("decoded", data=flat.astype(np.int32))
    f.create_dataset("decoded_lengths", data=np.array([d.size for d in decoded], np.int64))
    text = [" ".join(class_names[int(c)] for c in d) for d in decoded]
    f.create_dataset(
        "decoded_text", data=np.array(text, dtype=object), dtype=h5py.string_dtype("utf-8")
    )


def _prediction_layout(net: Any, dataset: Any) -> tuple[bool, dict[str, tuple[tuple, Any]]]:
    """Whether a predictions file has a row per frame (else per sequence), and its
    datasets' shapes and dtypes (from the outputs for one frame)."""
    probe = dataset[0]
    x, lengths = Preprocessor(net.dtype, delay=0).batch([probe[0][:1]])
    out = net.predict_proba(x, lengths)
    per_frame = out.ndim == 3
    rows = int(np.sum(dataset.lengths)) if per_frame else len(dataset)
    k = out.shape[-1]
    head = net.head
    layout = {head.output_name: ((rows, k), np.float32)}
    decided = head.decide(out[0] if per_frame else out)
    if decided is not None:
        layout["labels"] = ((rows, *decided.shape[1:]), decided.dtype)
    y = np.asarray(probe[1])
    layout["targets"] = ((rows, *y.shape[1:]), np.float32 if y.dtype.kind == "f" else np.int32)
    return per_frame, layout


def write_predictions(
    path: str | os.PathLike[str],
    net: Any,
    dataset: Any,
    preprocessor: Preprocessor,
    *,
    class_names: Sequence[str],
    batch_size: int = 16,
    model_path: str | None = None,
) -> Path:
    """Write the head's outputs and decisions for every sequence to HDF5, atomically.

    Layout (root), rows in the input dataset's order (``docs/HEADS.md``):

    * per-frame heads: one row per frame (sequences back to back as in the
      input): ``posteriors`` (N_frames, K) float32 and ``labels``
      (N_frames,) int32 (argmax) for the softmax head; ``posteriors``
      (probabilities) and ``labels`` (N_frames, K) bool (> 0.5) for the
      logistic head; ``values`` (N_frames, K) float32 in the data's units
      for the squared-error head;
    * the sequence head: one row per sequence: ``posteriors`` (N, K) float32
      and ``labels`` (N,) int32;
    * ``targets`` copied from the input in the same rows ((N_frames,) int32,
      (N_frames, K) float32 or (N,) int32; -1 / NaN = not scored);
    * ``seq_lengths`` (N,) int64 and ``seq_tags`` (N,) str; attrs ``format
      = "seqprop.predictions"``, ``format_version = 1``, ``head``,
      ``class_names``, ``dataset`` and ``model`` (source paths).

    A ``ctc`` model's posteriors have K + 1 columns, the blank last (a frame's
    ``labels`` entry is K where the blank wins), and the file also holds each
    sequence's best path decoding: ``decoded`` (N_decoded,) int32 label
    sequences back to back, ``decoded_lengths`` (N,) int64, and
    ``decoded_text`` (N,) str, the class names of each sequence's labels
    separated by single spaces (``docs/FORMAT.md``).

    Raises
    ------
    DataError
        The dataset does not match the model.
    """
    import h5py

    from seqprop.checkpoint import atomic_output, h5_file

    check_dataset_matches(dataset, input_size=net.input_size, class_names=class_names)
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path} is a directory; give the output file's name")
    if not path.parent.is_dir():
        raise DataError(f"{path}: directory {path.parent} does not exist")
    lengths = np.asarray(dataset.lengths, dtype=np.int64)
    per_frame, layout = _prediction_layout(net, dataset)
    offsets = (
        np.concatenate([[0], np.cumsum(lengths)]) if per_frame else np.arange(len(lengths) + 1)
    )
    head = net.head
    decode = head.target_kind is TargetKind.LABEL_SEQUENCE
    decoded: list[np.ndarray] = [np.zeros(0, np.int64)] * len(lengths)
    str_t = h5py.string_dtype("utf-8")
    with atomic_output(path) as tmp, h5_file(tmp, path) as f:
        out = {name: f.create_dataset(name, shape=s, dtype=t) for name, (s, t) in layout.items()}
        for i, outputs, y in iter_posteriors(net, dataset, preprocessor, batch_size=batch_size):
            a, b = int(offsets[i]), int(offsets[i + 1])
            out[head.output_name][a:b] = outputs.astype(np.float32)
            if "labels" in out:
                out["labels"][a:b] = head.decide(outputs)
            out["targets"][a:b] = y
            if decode:
                decoded[i] = best_path_decode(outputs[:, None, :], [outputs.shape[0]])[0]
        if decode:
            _write_decoded(f, decoded, class_names)
        f.create_dataset("seq_lengths", data=lengths)
        f.create_dataset("seq_tags", data=np.array(list(dataset.tags), dtype=object), dtype=str_t)
        f.attrs["format"] = "seqprop.predictions"
        f.attrs["format_version"] = 1
        f.attrs["head"] = head.name
        f.attrs.create(
            "class_names", np.array([str(c) for c in class_names], dtype=object), dtype=str_t
        )
        f.attrs["dataset"] = str(dataset.path)
        if model_path is not None:
            f.attrs["model"] = str(model_path)
    return path
