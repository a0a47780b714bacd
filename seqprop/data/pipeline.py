"""Input preprocessing shared by training, evaluation and prediction.

What the network sees is a dataset's features after two transforms, applied
identically when training, validating, evaluating and predicting:

1. normalisation, ``(x - mean) / std`` with the training set's statistics
   (stored with the model), computed in float64 and rounded to the network's
   dtype; a value the network's dtype cannot hold (a feature constant in the
   training set, std floored at 1e-8, meets a large value elsewhere) is refused
   with a :class:`~seqprop.errors.DataError` naming the file, the sequence's
   own index and tag, the frame and the feature, never passed on as inf;
2. the target delay ``d`` (Graves & Schmidhuber 2005, section 5.2): the
   network must output frame ``t``'s class when it sees frame ``t + d``, so a
   unidirectional net gets ``d`` frames of future context. Each sequence is
   extended by ``d`` frames of zero input and its targets shifted ``d`` frames
   later (:func:`delay_sequence`); every original frame is still scored,
   and the outputs for the original frames are ``out[d : d + T]``.

:class:`Preprocessor` applies both to one sequence; :class:`PreparedSplit`
serves a dataset's preprocessed sequences as padded batches
(:func:`~seqprop.data.pad_sequences`); :func:`open_split` opens a configured
split and :func:`check_dataset_matches` checks a dataset against a model.

Shape legend: T = frames of a sequence, I = input features, K = classes,
N = sequences, B = sequences in a batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seqprop.data.batching import pad_sequences
from seqprop.data.normalise import apply_normalisation
from seqprop.data.reader import SequenceDataset, list_groups, open_dataset
from seqprop.data.schema import tag_text
from seqprop.data.targets import delay_targets
from seqprop.errors import DataError
from seqprop.heads.base import TargetKind

__all__ = [
    "PreparedSplit",
    "Preprocessor",
    "check_dataset_matches",
    "delay_sequence",
    "open_split",
    "same_split",
    "sequence_where",
    "split_spec",
]


def sequence_where(dataset: Any, i: int) -> str:
    """``"<file> [group 'g']: sequence i (tag 't')"``: a dataset's own sequence, for errors."""
    where = f"{dataset.path}" + (f" group {dataset.group!r}" if dataset.group else "")
    return f"{where}: {tag_text(list(dataset.tags), int(i))}"


def _check_cast(x: np.ndarray, xn: np.ndarray, pre: Preprocessor, where: str | None) -> None:
    """DataError when the normalised ``xn`` (float64) overflowed in ``x`` (the network's dtype)."""
    if np.isfinite(x).all():
        return
    r, c = (int(v) for v in np.argwhere(~np.isfinite(x))[0])
    raise DataError(
        f"{where or 'input'}: frame {r} feature {c} normalises to {xn[r, c]:.3g} "
        f"((x - mean) / std with the training set's mean {pre.mean[c]:.3g}, std "
        f"{pre.std[c]:.3g}), beyond the range of the network's {pre.dtype}; the feature is "
        "(nearly) constant in the training set but not here"
    )


def delay_sequence(
    x: np.ndarray, y: np.ndarray | None, delay: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """Delay the targets of one sequence by ``delay`` frames.

    Parameters
    ----------
    x : (T, I) ndarray
        Inputs.
    y : (T,) int or (T, K) float ndarray, or None
        Per-frame targets (-1 / a NaN row = not scored). A class per
        sequence (0-d) cannot be delayed: ValueError.
    delay : int
        d >= 0.

    Returns
    -------
    x_d : (T + d, I) ndarray
        ``x`` followed by ``d`` frames of zeros (same dtype).
    y_d : (T + d,) int32 or (T + d, K) float ndarray, or None
        ``-1`` (a NaN row) for the first ``d`` frames, then ``y``: ``y_d[t + d] = y[t]``,
        so the network's output at frame ``t + d`` is scored against the
        class of frame ``t``, having seen inputs up to frame ``t + d``.

    With ``delay = 0`` the arrays are returned unchanged.
    """
    if delay < 0:
        raise ValueError(f"delay must be >= 0, got {delay}")
    if delay == 0:
        return x, y
    x_d = np.zeros((x.shape[0] + delay, *x.shape[1:]), dtype=x.dtype)
    x_d[: x.shape[0]] = x
    if y is None:
        return x_d, None
    return x_d, delay_targets(y, delay)


@dataclass
class Preprocessor:
    """Normalisation and target delay, turning dataset sequences into network input.

    Attributes
    ----------
    dtype : numpy dtype
        The network's dtype.
    mean, std : (I,) float64 ndarray or None
        Normalisation; None = inputs used as stored.
    delay : int
        Target delay in frames.
    """

    dtype: np.dtype
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    delay: int = 0

    def __post_init__(self) -> None:
        self.dtype = np.dtype(self.dtype)
        if (self.mean is None) != (self.std is None):
            raise ValueError("give both mean and std, or neither")
        if self.mean is not None:
            self.mean = np.asarray(self.mean, dtype=np.float64)
            self.std = np.asarray(self.std, dtype=np.float64)

    def __call__(
        self, x: np.ndarray, y: np.ndarray | None = None, where: str | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Transform one sequence: x (T, I) -> (T + d, I) in ``dtype``; per-frame targets
        y (T, ...) -> (T + d, ...) (classes as int32, values as float32); a class per
        sequence is kept as it is.

        ``where`` names the sequence (file and index, :func:`sequence_where`)
        in the :class:`DataError` raised when a normalised value does not fit
        the network's dtype.
        """
        if self.mean is not None:
            xn = apply_normalisation(np.asarray(x, dtype=np.float64), self.mean, self.std)
            with np.errstate(over="ignore"):
                x = xn.astype(self.dtype, copy=False)
            _check_cast(x, xn, self, where)
        else:
            x = np.asarray(x, dtype=self.dtype)
        if y is not None:
            y = np.asarray(y)
            y = y.astype(np.int32 if y.dtype.kind in "iu" else np.float32, copy=False)
            if y.ndim == 0:
                return (x if self.delay == 0 else delay_sequence(x, None, self.delay)[0]), y
        return delay_sequence(x, y, self.delay)

    def batch(
        self, xs: Sequence[np.ndarray], wheres: Sequence[str] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Preprocess raw inputs (T_b, I) and pad them: x (T + d, B, I), lengths (B,) int64.

        ``wheres`` name the sequences for errors (see :meth:`__call__`).
        """
        names = wheres if wheres is not None else [None] * len(xs)
        prepared = [self(x, where=w)[0] for x, w in zip(xs, names, strict=True)]
        x, _, lengths = pad_sequences(prepared, None, self.dtype, copy=False)
        return x, lengths


class PreparedSplit:
    """A dataset's sequences as the network sees them (normalised, delayed), in padded batches.

    Parameters
    ----------
    dataset : SequenceDataset
        Raw (unnormalised) sequences.
    pre : Preprocessor
    cache : bool
        Preprocess every sequence once, up front, and keep them in memory;
        otherwise read and preprocess on demand. A dataset already in memory
        is never cached again: its sequences are preprocessed batch by batch
        (the same values), so the run holds one copy of the inputs, not two
        (``benchmarks/bench_memory.py`` measures the peak memory of a run).
    target_kind : TargetKind
        What :meth:`batch` gives as ``y`` (the head's ``target_kind``):
        ``FRAME_CLASS`` the framewise targets (T, B); ``LABEL_SEQUENCE`` the
        split's label sequences (B, U) padded with -1 (the split must have
        ``labels``; no target delay).

    Attributes
    ----------
    lengths : (N,) int64
        Frames per sequence after the delay (T_i + d).
    tags : list of N str
    """

    def __init__(
        self,
        dataset: Any,
        pre: Preprocessor,
        cache: bool,
        target_kind: TargetKind = TargetKind.FRAME_CLASS,
    ) -> None:
        self.dataset = dataset
        self.pre = pre
        self.target_kind = target_kind
        self._labels = None
        if target_kind is TargetKind.LABEL_SEQUENCE:
            if pre.delay:
                raise ValueError(
                    f"a target delay ({pre.delay} frames) applies to framewise targets; "
                    "label-sequence targets take none"
                )
            self._labels = dataset.require_labels()
        self.lengths = np.asarray(dataset.lengths, dtype=np.int64) + pre.delay
        self.tags = list(dataset.tags)
        self._xs: list[np.ndarray] | None = None
        self._ys: list[np.ndarray] | None = None
        if cache and not getattr(dataset, "in_memory", False):
            self._xs, self._ys = [], []
            for i, (x, y) in enumerate(dataset):
                xd, yd = pre(x, y, sequence_where(dataset, i))
                self._xs.append(np.ascontiguousarray(xd))
                self._ys.append(yd)

    def __len__(self) -> int:
        return int(self.lengths.shape[0])

    def sequence(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Sequence ``i`` preprocessed: x (T_i + d, I) in the network's dtype and its targets
        (per-frame ones delayed too)."""
        if self._xs is not None:
            return self._xs[i], self._ys[i]
        x, y = self.dataset[int(i)]
        return self.pre(x, y, sequence_where(self.dataset, i))

    def batch(self, indices: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray, Any]:
        """Padded batch: x (T, B, I), y in the head's form ((T, B) int32, (T, B, K)
        float32 or (B,) int32; :mod:`seqprop.data.targets`), lengths (B,) int64.

        For label-sequence targets y is (B, U) int64 padded with -1. A batch
        of one sequence is a view of it (no copy).
        """
        pairs = [self.sequence(int(i)) for i in indices]
        if self._labels is not None:
            x, _, lengths = pad_sequences([p[0] for p in pairs], None, self.pre.dtype, copy=False)
            return x, self._labels.padded(indices), lengths
        return pad_sequences(
            [p[0] for p in pairs], [p[1] for p in pairs], self.pre.dtype, copy=False
        )


def split_spec(spec: str) -> tuple[str, str | None]:
    """``"FILE:GROUP"`` -> ``(FILE, GROUP)``; ``"FILE"`` (or a path that exists as written) ->
    ``(FILE, None)``. GROUP may be nested (``"corpus.h5:eval/core"``)."""
    if ":" not in spec or Path(spec).exists():
        return spec, None
    path, _, group = spec.rpartition(":")
    if not path or not group.strip("/"):
        return spec, None
    return path, group.strip("/")


def open_split(
    spec: str,
    group: str | None,
    in_memory: bool,
    role: str,
    target_kind: TargetKind | None = None,
) -> SequenceDataset:
    """Open the configured split ``data.<role>`` with the targets of ``target_kind``.

    ``spec`` is a file, or ``FILE:GROUP`` naming the split's group in it
    (``data.validation = "corpus.h5:dev"``). Without a group of its own,
    ``group`` (``data.group``) applies; without either, in a file of several
    splits, the one named ``role`` (``"train"``, ``"validation"``,
    ``"test"``) when there is one, else a :class:`DataError` that says how
    to name one.
    """
    path, own = split_spec(spec)
    if own is not None:
        group = own
    if not Path(path).exists():
        raise DataError(f"data.{role} = {spec}: no such file")
    if group is None:
        groups = list_groups(path)
        if len(groups) > 1:
            if role not in groups:
                raise DataError(
                    f"data.{role} = {spec}: the file holds several splits ({', '.join(groups)}); "
                    f'name one as data.{role} = "{path}:GROUP"'
                )
            group = role
    return open_dataset(path, group=group, in_memory=in_memory, target_kind=target_kind)


def same_split(a: SequenceDataset, b: SequenceDataset) -> bool:
    """True when two open datasets are the same split of the same file."""
    if (a.group or None) != (b.group or None):
        return False
    try:
        return Path(a.path).samefile(b.path)
    except OSError:
        return Path(a.path).absolute() == Path(b.path).absolute()


def check_dataset_matches(
    dataset: Any, *, input_size: int, class_names: Sequence[str], what: str = "the model"
) -> None:
    """Raise :class:`DataError` unless ``dataset`` has the given feature size and classes."""
    where = f"{dataset.path}" + (f" group {dataset.group!r}" if dataset.group else "")
    if dataset.input_size != input_size:
        raise DataError(
            f"{where}: {dataset.input_size} features per frame, {what} expects {input_size}"
        )
    names = list(dataset.class_names)
    if len(names) != len(class_names):
        raise DataError(f"{where}: {len(names)} classes, {what} has {len(class_names)}")
    if names != list(class_names):
        k = next(i for i, (a, b) in enumerate(zip(names, class_names, strict=True)) if a != b)
        raise DataError(
            f"{where}: class names differ from {what}'s (class {k} is {names[k]!r} here, "
            f"{class_names[k]!r} there)"
        )
