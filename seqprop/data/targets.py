"""How each kind of target is stored in a split, checked, padded and delayed.

A head declares what it is trained on (:class:`~seqprop.heads.TargetKind`);
this module is the one table saying, per kind, which dataset of a split holds
those targets and what shape and dtype it has (``docs/FORMAT.md``):

``FRAME_CLASS`` (softmax head)
    ``targets`` (N_frames,) integer, a class per frame, ``-1`` = unlabelled;
    a sequence's targets are (T,) int32, a batch's (T, B) padded with -1.
``FRAME_VALUES`` (logistic, squared_error heads)
    ``targets`` (N_frames, K) float, K values per frame, a row of all NaN =
    not scored (a row partly NaN, or holding an infinity, is an error); a
    sequence's targets are (T, K) float32, a batch's (T, B, K) padded with NaN.
``SEQUENCE_CLASS`` (sequence head)
    ``seq_targets`` (N_seqs,) integer, a class per sequence, ``-1`` =
    unlabelled; a sequence's target is a 0-d int32 array, a batch's (B,).

The reader (:mod:`seqprop.data.reader`), the writer, :func:`pad_targets` and
the target delay (:func:`delay_targets`) all go through :data:`LAYOUTS`; a
new kind of target is one more entry (and its rules here).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from seqprop.errors import DataError
from seqprop.heads.base import TargetKind

logger = logging.getLogger("seqprop.data")

__all__ = [
    "LAYOUTS",
    "TargetLayout",
    "check_target_values",
    "delay_targets",
    "detect_kind",
    "pad_targets",
    "target_layout",
]


@dataclass(frozen=True)
class TargetLayout:
    """Where and how one :class:`TargetKind` is stored in a split.

    Attributes
    ----------
    kind : TargetKind
    dataset : str
        The dataset holding the targets.
    per_frame : bool
        One row per frame (read with the inputs' frame ranges); else one
        value per sequence (read once when the split is opened).
    class_valued : bool
        Values are class indices in ``[-1, K)`` (``class_names`` required);
        else floats (``target_names`` optional).
    dtype : numpy dtype
        Dtype of the targets as read.
    shape : str
        The dataset's shape, for messages.
    meaning : str
        What the dataset holds, for messages.
    """

    kind: TargetKind
    dataset: str
    per_frame: bool
    class_valued: bool
    dtype: np.dtype
    shape: str
    meaning: str

    def describe(self) -> str:
        """E.g. ``"'seq_targets' (N_seqs,) integer: a class per sequence"``."""
        return f"{self.dataset!r} {self.shape}: {self.meaning}"


LAYOUTS: dict[TargetKind, TargetLayout] = {
    TargetKind.FRAME_CLASS: TargetLayout(
        TargetKind.FRAME_CLASS,
        "targets",
        True,
        True,
        np.dtype(np.int32),
        "(N_frames,) integer",
        "a class per frame, -1 = unlabelled",
    ),
    TargetKind.FRAME_VALUES: TargetLayout(
        TargetKind.FRAME_VALUES,
        "targets",
        True,
        False,
        np.dtype(np.float32),
        "(N_frames, K) float",
        "K values per frame, a row of NaN = not scored",
    ),
    TargetKind.SEQUENCE_CLASS: TargetLayout(
        TargetKind.SEQUENCE_CLASS,
        "seq_targets",
        False,
        True,
        np.dtype(np.int32),
        "(N_seqs,) integer",
        "a class per sequence, -1 = unlabelled",
    ),
}
"""The stored form of every kind of target the data pipeline reads."""


def target_layout(kind: TargetKind) -> TargetLayout:
    """The layout of ``kind``; ValueError for a kind the pipeline does not read."""
    try:
        return LAYOUTS[kind]
    except (KeyError, TypeError):
        known = ", ".join(k.name for k in LAYOUTS)
        raise ValueError(f"target kind must be one of {known}, got {kind!r}") from None


def detect_kind(root: Any) -> TargetKind | None:
    """The kind of target a split holds (first match in :data:`LAYOUTS` order), or None.

    ``targets`` 1-D (or integer) reads as ``FRAME_CLASS``, 2-D float as
    ``FRAME_VALUES``; ``seq_targets`` as ``SEQUENCE_CLASS``.
    """
    if "targets" in root:
        obj = root["targets"]
        shape = getattr(obj, "shape", ())
        kind_char = getattr(getattr(obj, "dtype", None), "kind", "")
        if len(shape) == 2 and kind_char == "f":
            return TargetKind.FRAME_VALUES
        return TargetKind.FRAME_CLASS
    for layout in LAYOUTS.values():
        if layout.dataset in root:
            return layout.kind
    return None


def check_target_structure(
    layout: TargetLayout, dset: Any, n_frames: int, n_seqs: int, where: str
) -> int | None:
    """Dtype and shape of the targets dataset ``dset``; returns K for float targets.

    ``where`` names the dataset (``"<file>: dataset '/targets'"``).
    """
    from seqprop.data.schema import MATLAB_HINT

    shape = tuple(int(s) for s in dset.shape)
    if layout.class_valued:
        rows = n_frames if layout.per_frame else n_seqs
        if dset.dtype.kind not in "iu":
            hint = f" ({MATLAB_HINT}: write int16(y(:)))"
            if layout.kind is TargetKind.FRAME_CLASS and len(shape) == 2 and shape[1] > 1:
                hint = " (float (N_frames, K) targets are for the logistic/squared_error heads)"
            raise DataError(
                f"{where} must be integer (int16/int32; {layout.meaning}), got {dset.dtype} "
                f"shape {shape}{hint}"
            )
        if layout.per_frame and shape in ((rows, 1), (1, rows)) and rows > 1:
            logger.warning(
                "%s has shape %s; read as the 1-D (N_frames,) the format asks for", where, shape
            )
        elif shape != (rows,):
            what = "inputs' frames" if layout.per_frame else "seq_lengths"
            raise DataError(
                f"{where} must have shape ({rows},) like {what}, got {shape} "
                f"({MATLAB_HINT}: create it with a scalar size)"
            )
        return None
    if dset.dtype.kind != "f" or len(shape) != 2 or shape[1] < 1:
        hint = ""
        if dset.dtype.kind in "iu":
            hint = " (it holds integer classes: a file for the softmax head)"
        raise DataError(
            f"{where} must be float (N_frames, K) for {layout.meaning}, got {dset.dtype} "
            f"shape {shape}{hint}"
        )
    if shape[0] != n_frames:
        raise DataError(f"{where} must have {n_frames} rows like inputs' frames, got {shape[0]}")
    return shape[1]


def _sequence_of(offsets: np.ndarray, frame: int) -> int:
    return int(np.searchsorted(offsets, frame, side="right")) - 1


def check_target_values(
    layout: TargetLayout,
    blocks: Iterable[tuple[int, np.ndarray]],
    offsets: np.ndarray,
    num_classes: int,
    tags: Sequence[str],
    where: str,
) -> None:
    """Class targets in ``[-1, K)``; float rows all finite or all NaN.

    ``blocks`` yields (first row, raw block); rows are frames for per-frame
    targets, sequences otherwise.
    """
    from seqprop.data.schema import tag_text

    for start, block in blocks:
        block = np.asarray(block)
        if layout.class_valued:
            bad = (block < -1) | (block >= num_classes)
            if not bad.any():
                continue
            row = start + int(np.flatnonzero(bad)[0])
            value = block[row - start]
            if not layout.per_frame:
                raise DataError(
                    f"{where}: {tag_text(tags, row)} has target {value}, "
                    f"outside [-1, {num_classes})"
                )
            i = _sequence_of(offsets, row)
            raise DataError(
                f"{where}: {tag_text(tags, i)} frame {row - offsets[i]} (file frame {row}) has "
                f"target {value}, outside [-1, {num_classes})"
            )
        with np.errstate(over="ignore", invalid="ignore"):
            values = block.astype(np.float32, copy=False)
        nan = np.isnan(values)
        unscored = nan.all(axis=1)
        bad = ~np.isfinite(values) & ~unscored[:, None]
        if bad.any():
            r, k = (int(v) for v in np.argwhere(bad)[0])
            row = start + r
            i = _sequence_of(offsets, row)
            what = (
                "NaN while other values of the frame are not (a frame is scored, all "
                "values finite, or not scored, all NaN)"
                if nan[r, k]
                else "infinite (in float32)"
            )
            raise DataError(
                f"{where}: {tag_text(tags, i)} frame {row - offsets[i]} (file frame {row}) "
                f"output {k} is {what}"
            )


def pad_targets(ys: Sequence[np.ndarray], n_t: int) -> np.ndarray:
    """One batch's targets from each sequence's, in the form of their kind.

    0-d (a class per sequence) -> (B,) int32; (T_b,) int -> (T, B) int32
    padded with -1; (T_b, K) float -> (T, B, K) float32 padded with NaN.
    """
    first = np.asarray(ys[0])
    if first.ndim == 0:
        return np.array([int(y) for y in ys], dtype=np.int32)
    if first.ndim == 1:
        out = np.full((n_t, len(ys)), -1, dtype=np.int32)
        for b, y in enumerate(ys):
            out[: y.shape[0], b] = y
        return out
    out = np.full((n_t, len(ys), first.shape[1]), np.nan, dtype=np.float32)
    for b, y in enumerate(ys):
        out[: y.shape[0], b] = y
    return out


def delay_targets(y: np.ndarray, delay: int) -> np.ndarray:
    """Targets ``d`` frames later: ``d`` unscored frames (-1 or a NaN row) first.

    A class per sequence has no frames to shift: ValueError.
    """
    y = np.asarray(y)
    if y.ndim == 0:
        raise ValueError(
            "a target delay shifts framewise targets; a class per sequence cannot be delayed"
        )
    if y.ndim == 1:
        out = np.full(y.shape[0] + delay, -1, dtype=np.int32)
    else:
        out = np.full((y.shape[0] + delay, *y.shape[1:]), np.nan, dtype=y.dtype)
    out[delay:] = y
    return out
