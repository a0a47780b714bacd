"""Connectionist temporal classification: loss, gradient, decoding and label error rate.

CTC (Graves, Fernandez, Gomez & Schmidhuber 2006) trains a network with K + 1
softmax outputs per frame, the K labels and a blank (the LAST output, index K),
on label sequences without any alignment: the loss of a sequence is
-ln p(z|x), p summed over every frame-level path that collapses to z (repeats
merged, then blanks removed). The equations, as seqprop computes them, are in
the project's ``docs/HEADS.md``; the numba kernels are in
:mod:`seqprop.kernels.ctc`. Every function here validates its input first and
raises ``ValueError`` with a one-line message naming the offending sequence.

Shape legend: T = frames (padded), B = sequences, C = K + 1 outputs,
U = the longest label sequence (padded with -1).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from seqprop._parallel import get_num_threads, run_pair
from seqprop.kernels import ctc as _k
from seqprop.options import REDUCTIONS

__all__ = [
    "best_path_decode",
    "ctc_loss",
    "ctc_loss_and_grad",
    "edit_distance",
    "fold_labels",
    "label_error_rate",
    "merge_framewise",
    "prefix_beam_search",
    "validate_targets",
]

_MIN_SPLIT_WORK = 200_000  # below this (frames x (outputs + cells)), one thread


def _int_array(a, name: str, ndim: int) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {a.shape}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name} must hold integers, got dtype {a.dtype}")
    return np.ascontiguousarray(a, dtype=np.int64)


def _lengths(lengths, n_frames: int) -> np.ndarray:
    lengths = _int_array(lengths, "lengths", 1)
    if lengths.size == 0:
        raise ValueError("lengths is empty: a batch needs at least one sequence")
    bad = np.flatnonzero((lengths < 1) | (lengths > n_frames))
    if bad.size:
        b = int(bad[0])
        raise ValueError(f"sequence {b}: length {lengths[b]} is not in [1, {n_frames}]")
    return lengths


def _frames(x, lengths, name: str, *, min_outputs: int = 2):
    """(T, B, C) float view of ``x`` (3-D, or 2-D (T * B, C)) and the validated lengths."""
    x = np.asarray(x)
    shape = x.shape
    if x.dtype not in (np.float32, np.float64):
        raise ValueError(f"{name} must be float32 or float64, got dtype {x.dtype}")
    n_seq = np.asarray(lengths).size
    if x.ndim == 2 and n_seq and x.shape[0] % n_seq == 0:
        x = x.reshape(x.shape[0] // n_seq, n_seq, x.shape[1])
    if x.ndim != 3 or x.shape[1] != n_seq:
        raise ValueError(
            f"{name} must be (T, B, C) or (T * B, C) with B = {n_seq} sequences, got shape {shape}"
        )
    if x.shape[2] < min_outputs:
        raise ValueError(f"{name} has {x.shape[2]} outputs; CTC needs the labels and a blank")
    lengths = _lengths(lengths, x.shape[0])
    if not np.isfinite(x).all():
        valid = np.arange(x.shape[0])[:, None] < lengths[None, :]
        bad = ~np.isfinite(x).all(axis=2) & valid
        if bad.any():
            t, b = np.argwhere(bad)[0]
            raise ValueError(f"sequence {b}: {name} at frame {t} is not finite")
    return np.ascontiguousarray(x), lengths


def validate_targets(labels, label_lengths, lengths, num_labels: int):
    """Check CTC targets against their sequences; returns (labels, label_lengths) as int64.

    Parameters
    ----------
    labels : (B, U) int
        Row b's first ``label_lengths[b]`` entries are its target, each in
        [0, num_labels); the rest is padding (-1 by convention, never read).
    label_lengths : (B,) int or None
        None: each row's target is its entries before the first -1, and every
        entry after it must be -1 too.
    lengths : (B,) int
        Frames per sequence.
    num_labels : int
        K, the number of labels (the blank, index K, is not a label).

    Raises
    ------
    ValueError
        Naming the first offending sequence: a label out of range, a label
        length outside [0, U], or an infeasible target (its length plus its
        number of adjacent repeated labels exceeds the frames; p(z|x) = 0).
    """
    labels = _int_array(labels, "labels", 2)
    lengths = np.asarray(lengths, dtype=np.int64)
    B, U = labels.shape
    if B != lengths.size:
        raise ValueError(f"labels has {B} rows for {lengths.size} sequences")
    pos = np.arange(U)[None, :]
    if label_lengths is None:
        neg = labels < 0
        first = neg.argmax(axis=1) if U else np.zeros(B, dtype=np.int64)  # U = 0: all empty
        label_lengths = np.where(neg.any(axis=1), first, U).astype(np.int64)
        stray = (pos >= label_lengths[:, None]) & (labels != -1)
        if stray.any():
            b = int(np.flatnonzero(stray.any(axis=1))[0])
            raise ValueError(
                f"sequence {b}: labels after the first -1 must all be -1 (or give label_lengths)"
            )
    label_lengths = _int_array(label_lengths, "label_lengths", 1)
    if label_lengths.size != B:
        raise ValueError(f"label_lengths has {label_lengths.size} entries for {B} sequences")
    bad = np.flatnonzero((label_lengths < 0) | (label_lengths > U))
    if bad.size:
        b = int(bad[0])
        raise ValueError(f"sequence {b}: label length {label_lengths[b]} is not in [0, {U}]")
    used = pos < label_lengths[:, None]
    out = used & ((labels < 0) | (labels >= num_labels))
    if out.any():
        b, u = np.argwhere(out)[0]
        raise ValueError(
            f"sequence {b}: label {labels[b, u]} at position {u} is not in [0, {num_labels})"
        )
    repeats = (used[:, 1:] & (labels[:, 1:] == labels[:, :-1])).sum(axis=1)
    need = label_lengths + repeats
    bad = np.flatnonzero(need > lengths)
    if bad.size:
        b = int(bad[0])
        raise ValueError(
            f"sequence {b}: a target of {label_lengths[b]} labels with {repeats[b]} adjacent "
            f"repeats needs at least {need[b]} frames, the sequence has {lengths[b]}"
        )
    return labels, label_lengths


def _prepare(logits, lengths, labels, label_lengths, reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    x, lengths = _frames(logits, lengths, "logits")
    labels, label_lengths = validate_targets(labels, label_lengths, lengths, x.shape[2] - 1)
    return x, lengths, labels, label_lengths


def ctc_loss_and_grad(
    logits, lengths, labels, label_lengths=None, *, reduction: str = "sum", out=None
):
    """CTC loss of a padded batch and its exact gradient at the softmax input.

    Parameters
    ----------
    logits : (T, B, C) or (T * B, C) float32 / float64
        Softmax inputs (row ``t * B + b`` of the 2-D form is frame t of
        sequence b); output C - 1 is the blank. Frames at or past a
        sequence's length are never read.
    lengths : (B,) int
        Frames per sequence, in [1, T].
    labels : (B, U) int
        Target label sequences in [0, C - 1), padded (entries past each label
        length are never read).
    label_lengths : (B,) int or None
        Labels per sequence (0 allowed: p is then the product of the blank
        probabilities). None: taken from the -1 padding.
    reduction : {"sum", "mean"}
        Total over sequences, or divided by the number of sequences B
        (the gradient likewise).
    out : ndarray, optional
        Array for the gradient, same shape, dtype and C-order as ``logits``.

    Returns
    -------
    loss : float
        Sum (or mean) over sequences of -ln p(z|x).
    losses : (B,) float64
        -ln p(z|x) of each sequence (never reduced).
    dlogits : ndarray, shape and dtype of ``logits``
        d loss / d logits: ``y_k(t) - sum over s with z'(s) = k of
        alpha_t(s) beta_t(s) / p`` (scaled by 1 / B for the mean), zero at
        frames past each length.

    Raises
    ------
    ValueError
        Bad shapes, dtypes or values, non-finite logits within a sequence,
        or an infeasible target, naming the sequence.
    """
    x, lengths, labels, label_lengths = _prepare(logits, lengths, labels, label_lengths, reduction)
    shape = np.shape(logits)
    if out is None:
        out = np.empty(shape, dtype=x.dtype)
    elif out.shape != shape or out.dtype != x.dtype or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous {x.dtype} array of shape {shape}")
    dx = out.reshape(x.shape)
    scale = 1.0 if reduction == "sum" else 1.0 / x.shape[1]
    losses = _run(x, lengths, labels, label_lengths, scale, dx)
    return _reduce(losses, reduction), losses, out


def ctc_loss(logits, lengths, labels, label_lengths=None, *, reduction: str = "sum"):
    """CTC loss without the gradient (forward pass only); see :func:`ctc_loss_and_grad`.

    Returns
    -------
    loss : float
    losses : (B,) float64
    """
    x, lengths, labels, label_lengths = _prepare(logits, lengths, labels, label_lengths, reduction)
    losses = _run(x, lengths, labels, label_lengths, 1.0, None)
    return _reduce(losses, reduction), losses


def _run(x, lengths, labels, label_lengths, scale, dx) -> np.ndarray:
    """Call the kernel, on two threads (two halves of the batch) when that pays.

    Each sequence is computed by the same arithmetic whichever thread runs
    it, so the results do not depend on the number of threads.
    """
    B, C = x.shape[1], x.shape[2]
    losses = np.empty(B, dtype=np.float64)
    with_grad = dx is not None
    if dx is None:
        dx = np.empty((1, 1, 1), dtype=x.dtype)

    def part(b0: int, b1: int):
        args = (x, lengths, labels, label_lengths, b0, b1, scale, with_grad, False, losses, dx)
        return lambda: _k.ctc_loss_grad(*args)

    work = np.cumsum(lengths * (C + 6 * label_lengths + 3))
    if B >= 2 and work[-1] >= _MIN_SPLIT_WORK and get_num_threads() >= 2:
        half = int(np.clip(np.searchsorted(work, work[-1] / 2) + 1, 1, B - 1))
        run_pair(part(0, half), part(half, B))
    else:
        part(0, B)()
    return losses


def _reduce(losses: np.ndarray, reduction: str) -> float:
    total = 0.0
    for v in losses:  # fixed order, float64
        total += float(v)
    return total if reduction == "sum" else total / losses.size


# --------------------------------------------------------------------------- decoding


def _sequences(x: np.ndarray, lengths: np.ndarray, seq_len: np.ndarray) -> list[np.ndarray]:
    return [x[b, : seq_len[b]].copy() for b in range(lengths.size)]


def best_path_decode(probs_or_logits, lengths) -> list[np.ndarray]:
    """Best path decoding: the most probable output per frame, repeats merged, blanks removed.

    Parameters
    ----------
    probs_or_logits : (T, B, C) float32 / float64
        Probabilities or softmax inputs (the per-frame argmax is the same;
        ties go to the lower index). Output C - 1 is the blank.
    lengths : (B,) int

    Returns
    -------
    list of B int64 ndarrays
        The label sequence of each sequence (Graves et al. 2006, section 3.2).
    """
    x, lengths = _frames(probs_or_logits, lengths, "probs_or_logits")
    blank = x.shape[2] - 1
    best = x.argmax(axis=2)  # (T, B)
    out = []
    for b in range(lengths.size):
        path = best[: lengths[b], b]
        keep = path != blank
        keep[1:] &= path[1:] != path[:-1]
        out.append(path[keep].astype(np.int64))
    return out


def prefix_beam_search(
    probs, lengths, beam_width: int = 16, *, return_log_probs: bool = False
) -> list[np.ndarray] | tuple[list[np.ndarray], np.ndarray]:
    """CTC prefix beam search (Graves et al. 2006, section 3.2, with a beam).

    Each prefix in the beam carries the probability of the paths that emit it
    and end in a blank and of those that end in its last label; at each frame
    every prefix stays (blank, or its last label repeated) or is extended by
    one label (after a blank only, if the label repeats the last one), equal
    prefixes are merged and the ``beam_width`` most probable are kept. With a
    beam wider than the number of distinct prefixes the search is exact.

    Parameters
    ----------
    probs : (T, B, C) float32 / float64
        Softmax outputs (non-negative), blank last.
    lengths : (B,) int
    beam_width : int
        Prefixes kept per frame (>= 1).
    return_log_probs : bool
        Also return, per sequence, ln of the best prefix's probability as
        accumulated in the beam (a lower bound of its p(z|x)).

    Returns
    -------
    list of B int64 ndarrays [, (B,) float64 ndarray]
    """
    if isinstance(beam_width, bool) or not isinstance(beam_width, int | np.integer):
        raise ValueError(f"beam_width must be a positive integer, got {beam_width!r}")
    if beam_width < 1:
        raise ValueError(f"beam_width must be a positive integer, got {beam_width}")
    x, lengths = _frames(probs, lengths, "probs")
    valid = np.arange(x.shape[0])[:, None] < lengths[None, :]
    neg = (x < 0).any(axis=2) & valid
    if neg.any():
        t, b = np.argwhere(neg)[0]
        raise ValueError(f"sequence {b}: probs at frame {t} are negative (pass probabilities)")
    T, B, _ = x.shape
    labels = np.zeros((B, T), dtype=np.int64)
    seq_len = np.zeros(B, dtype=np.int64)
    log_probs = np.zeros(B, dtype=np.float64)
    _k.prefix_beam_search(x, lengths, int(beam_width), labels, seq_len, log_probs)
    seqs = _sequences(labels, lengths, seq_len)
    return (seqs, log_probs) if return_log_probs else seqs


def merge_framewise(labels_per_frame) -> np.ndarray:
    """Decode a framewise classifier into a label string: repeats merged.

    Parameters
    ----------
    labels_per_frame : (T,) int or (T, K) float
        The class of each frame, or per-frame posteriors / scores (their
        most probable class is taken, ties to the lower index). Frames with
        class -1 (unlabelled) are removed BEFORE merging, so they do not
        separate two runs of the same class.

    Returns
    -------
    (n,) int64 ndarray
        E.g. frames ``[3, 3, 5, 5, 5, 3]`` give ``[3, 5, 3]``.
    """
    a = np.asarray(labels_per_frame)
    if a.ndim == 2:
        if not np.issubdtype(a.dtype, np.floating) or not np.isfinite(a).all():
            raise ValueError("merge_framewise: (T, K) posteriors must be finite floats")
        a = a.argmax(axis=1)
    a = _int_array(a, "labels_per_frame", 1)
    a = a[a >= 0]
    if a.size == 0:
        return a
    keep = np.ones(a.size, dtype=bool)
    keep[1:] = a[1:] != a[:-1]
    return a[keep]


def fold_labels(labels, mapping, *, merge_repeats: bool = False) -> np.ndarray:
    """Map a label sequence through a class mapping, e.g. TIMIT's 61 phones to 39.

    Parameters
    ----------
    labels : (n,) int
        Label values in [0, len(mapping)).
    mapping : (M,) int
        ``mapping[k]`` is the folded class of label k, or -1 for a label that
        has none (it is dropped, like TIMIT's glottal stop ``q``); the table of
        :func:`seqprop.evaluation.timit_folding` is accepted as is.
    merge_repeats : bool
        Off by default: each label is mapped and nothing else changes, so two
        neighbours folding to one class (e.g. ``pau h#`` -> ``sil sil``) stay
        two labels and are scored as such. On: such runs become one label.

    Returns
    -------
    (m,) int64 ndarray
    """
    labels = _int_array(labels, "labels", 1)
    mapping = _int_array(mapping, "mapping", 1)
    bad = np.flatnonzero((labels < 0) | (labels >= mapping.size))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"fold_labels: label {labels[i]} at position {i} is not in [0, {mapping.size})"
        )
    out = mapping[labels]
    out = out[out >= 0]
    if merge_repeats and out.size:
        keep = np.ones(out.size, dtype=bool)
        keep[1:] = out[1:] != out[:-1]
        out = out[keep]
    return out


# --------------------------------------------------------------------------- scoring


def _concat(seqs: Sequence, name: str) -> tuple[np.ndarray, np.ndarray]:
    arrays = []
    for i, s in enumerate(seqs):
        a = np.asarray(s)
        if a.ndim != 1 or (a.size and not np.issubdtype(a.dtype, np.integer)):
            raise ValueError(
                f"{name} {i} must be a 1-D sequence of integers, got {a.dtype} {a.shape}"
            )
        arrays.append(a.astype(np.int64))
    offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([a.size for a in arrays])
    flat = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)
    return flat, offsets


def _edit_counts(refs: Sequence, hyps: Sequence) -> np.ndarray:
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} reference sequences but {len(hyps)} hypotheses")
    r, ro = _concat(refs, "reference")
    h, ho = _concat(hyps, "hypothesis")
    out = np.zeros((len(refs), 4), dtype=np.int64)
    _k.edit_distances(r, ro, h, ho, out)
    return out


def edit_distance(ref, hyp) -> tuple[int, int, int, int]:
    """Levenshtein distance from ``ref`` to ``hyp``, with its edit counts.

    Returns
    -------
    (distance, substitutions, deletions, insertions) : tuple of int
        distance = S + D + I. A deletion is a reference label missing from the
        hypothesis, an insertion an extra hypothesis label. Among the optimal
        alignments the backtrace (from the end) prefers a match or
        substitution, then a deletion, then an insertion.
    """
    d = _edit_counts([ref], [hyp])[0]
    return int(d[0]), int(d[1]), int(d[2]), int(d[3])


def label_error_rate(refs: Sequence, hyps: Sequence) -> dict[str, float | int]:
    """Label error rate: total edit distance / total reference length (Graves et al. 2006).

    Parameters
    ----------
    refs, hyps : sequences of 1-D int sequences, paired in order

    Returns
    -------
    dict
        ``label_error_rate``, ``edits``, ``substitutions``, ``deletions``,
        ``insertions``, ``reference_labels``, ``sequences``.

    Raises
    ------
    ValueError
        Different numbers of sequences, or references holding no label at all.
    """
    counts = _edit_counts(refs, hyps)
    n_ref = int(sum(np.asarray(r).size for r in refs))
    if n_ref == 0:
        raise ValueError("label_error_rate: the references hold no labels")
    total = counts.sum(axis=0)
    return {
        "label_error_rate": float(total[0]) / n_ref,
        "edits": int(total[0]),
        "substitutions": int(total[1]),
        "deletions": int(total[2]),
        "insertions": int(total[3]),
        "reference_labels": n_ref,
        "sequences": len(refs),
    }
