"""Label-sequence targets (``TargetKind.LABEL_SEQUENCE``, the ``ctc`` head): read, check, write.

Two optional datasets of a split (``docs/FORMAT.md``) hold one unaligned
label sequence per sequence, back to back like the frames:

* ``labels`` (N_labels,) int, values in [0, K) (K = ``len(class_names)``;
  a label means the same class index as a framewise target);
* ``label_lengths`` (N_seqs,) int64, labels per sequence (0 allowed; their
  sum is N_labels).

Both or neither must be present. A sequence's labels must also fit its
frames: a CTC path emits U labels with a blank between adjacent repeats, so
U plus the number of adjacent repeats must not exceed the sequence's length.
Label sequences are small (a few per second of speech), so they are read
into memory whole when the split is opened.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from seqprop.data.schema import Location, tag_text
from seqprop.errors import DataError

__all__ = [
    "LABEL_DATASETS",
    "LabelSequences",
    "check_labels_for_write",
    "read_label_sequences",
    "write_label_sequences",
]

LABEL_DATASETS = ("labels", "label_lengths")


@dataclass(frozen=True)
class LabelSequences:
    """The label sequences of a split.

    Attributes
    ----------
    labels : (N_labels,) int64 ndarray
    offsets : (N + 1,) int64 ndarray
        Sequence i's labels are ``labels[offsets[i]:offsets[i + 1]]``.
    """

    labels: np.ndarray
    offsets: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        """(N,) labels per sequence."""
        return np.diff(self.offsets)

    def sequence(self, i: int) -> np.ndarray:
        """Sequence ``i``'s labels, (U_i,) int64 (a fresh array)."""
        return self.labels[self.offsets[i] : self.offsets[i + 1]].copy()

    def padded(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """The label sequences of ``indices`` as (B, U) int64, padded with -1."""
        idx = np.asarray(indices, dtype=np.int64)
        n = self.offsets[idx + 1] - self.offsets[idx]
        out = np.full((idx.size, int(n.max(initial=0))), -1, dtype=np.int64)
        for b, i in enumerate(idx.tolist()):
            out[b, : n[b]] = self.labels[self.offsets[i] : self.offsets[i + 1]]
        return out


def _repeats(labels: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Adjacent repeated labels within each sequence, (N,)."""
    same = np.zeros(labels.size, dtype=np.int64)
    if labels.size > 1:
        same[1:] = labels[1:] == labels[:-1]
    starts = offsets[:-1][offsets[:-1] < labels.size]
    same[starts] = 0  # the first label of a sequence repeats nothing
    c = np.concatenate([[0], np.cumsum(same)])
    return c[offsets[1:]] - c[offsets[:-1]]


def check_label_values(
    labels: np.ndarray,
    label_lengths: np.ndarray,
    frame_lengths: np.ndarray,
    num_classes: int,
    tags: list[str] | None,
    where: str,
) -> np.ndarray:
    """Lengths, values and feasibility of label sequences; returns their offsets (N + 1,).

    ``where(name)`` prefixes messages; each names the first offending sequence.
    """
    bad = np.flatnonzero(label_lengths < 0)
    if bad.size:
        i = int(bad[0])
        raise DataError(
            f"{where('label_lengths')}: {tag_text(tags, i)} has {label_lengths[i]} labels"
        )
    offsets = np.zeros(label_lengths.size + 1, dtype=np.int64)
    np.cumsum(label_lengths, out=offsets[1:])
    if offsets[-1] != labels.size:
        raise DataError(
            f"{where('label_lengths')}: sum(label_lengths) = {offsets[-1]} but labels holds "
            f"{labels.size} labels"
        )
    out = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if out.size:
        j = int(out[0])
        i = int(np.searchsorted(offsets, j, side="right")) - 1
        raise DataError(
            f"{where('labels')}: {tag_text(tags, i)} label {j - offsets[i]} is {labels[j]}, "
            f"outside [0, {num_classes})"
        )
    need = label_lengths + _repeats(labels, offsets)
    bad = np.flatnonzero(need > frame_lengths)
    if bad.size:
        i = int(bad[0])
        raise DataError(
            f"{where('labels')}: {tag_text(tags, i)} has {label_lengths[i]} labels needing "
            f"{need[i]} frames (a blank between repeats), but only {frame_lengths[i]} frames"
        )
    return offsets


def read_label_sequences(
    root: Any, loc: Location, frame_lengths: np.ndarray, num_classes: int, tags: list[str]
) -> LabelSequences | None:
    """Read and check a split's ``labels`` / ``label_lengths``; None when it has neither."""
    import h5py

    present = [name for name in LABEL_DATASETS if name in root]
    if not present:
        return None
    if len(present) == 1:
        missing = next(n for n in LABEL_DATASETS if n not in present)
        raise DataError(f"{loc.dataset(missing)} is missing (the split has {present[0]!r})")
    arrays = {}
    for name in LABEL_DATASETS:
        obj = root[name]
        if not isinstance(obj, h5py.Dataset):
            raise DataError(f"{loc.dataset(name)} is not a dataset")
        if obj.dtype.kind not in "iu" or len(obj.shape) != 1:
            raise DataError(
                f"{loc.dataset(name)} must be a 1-D integer dataset, got {obj.dtype} {obj.shape}"
            )
        arrays[name] = obj[()].astype(np.int64)
    lab, lens = arrays["labels"], arrays["label_lengths"]
    if lens.shape != frame_lengths.shape:
        raise DataError(
            f"{loc.dataset('label_lengths')} must have shape ({frame_lengths.size},) like "
            f"seq_lengths, got {lens.shape}"
        )
    offsets = check_label_values(lab, lens, frame_lengths, num_classes, tags, loc.dataset)
    return LabelSequences(lab, offsets)


def check_labels_for_write(
    labels: Any, frame_lengths: np.ndarray, num_classes: int, tags: list[str], where: str
) -> LabelSequences:
    """``write_dataset``'s ``labels`` argument (one int sequence per sequence), checked."""
    try:
        seqs = [np.asarray(s) for s in labels]
    except TypeError:
        raise DataError(f"{where}: labels must be a sequence of integer arrays") from None
    if len(seqs) != frame_lengths.size:
        raise DataError(f"{where}: {len(seqs)} label sequences for {frame_lengths.size} sequences")
    for i, s in enumerate(seqs):
        if s.ndim != 1 or (s.size and s.dtype.kind not in "iu"):
            raise DataError(
                f"{where}: labels, {tag_text(tags, i)}: must be a 1-D integer array, "
                f"got {s.dtype} {s.shape}"
            )
    lens = np.array([s.size for s in seqs], dtype=np.int64)
    flat = np.concatenate([s.astype(np.int64) for s in seqs]) if seqs else np.zeros(0, np.int64)
    offsets = check_label_values(
        flat, lens, frame_lengths, num_classes, tags, lambda name: f"{where}: {name}"
    )
    return LabelSequences(flat, offsets)


def write_label_sequences(root: Any, seqs: LabelSequences, num_classes: int) -> None:
    """Write ``labels`` (int16, or int32 for K >= 32767) and ``label_lengths`` (int64)."""
    dtype = np.int16 if num_classes < 32767 else np.int32
    root.create_dataset("labels", data=seqs.labels.astype(dtype))
    root.create_dataset("label_lengths", data=seqs.lengths.astype(np.int64))
