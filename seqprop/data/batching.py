"""Variable-length batches: padding and batch orders (pure numpy).

A batch of ``B`` sequences of lengths ``T_1 .. T_B`` is laid out time-major,
as the networks expect (``docs/FORMAT.md`` describes the arrays):

* ``x``: (T, B, I) float, ``T = max(T_b)``; zeros past each sequence's length;
* ``y``: (T, B) int32, class index per frame, ``-1`` past each length (and
  wherever a frame has no target);
* ``lengths``: (B,) int64.

:func:`pad_sequences` is the one place that lays a batch out; the dataset
reader, the trainer's prepared splits and prediction all call it.

Shape legend: T = frames of the longest sequence in the batch, B = sequences
in the batch, I = input features per frame, N = sequences in the dataset.

:func:`batch_order` decides which sequences go together and in what order:
plain shuffling (the paper shuffles the training sequences every epoch,
Graves & Schmidhuber 2005, section 5), or length buckets, where sequences of
similar length share a batch so little of a padded batch is wasted.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from seqprop.data.targets import pad_targets

__all__ = ["Batch", "as_rng", "batch_order", "pad_sequences"]


@dataclass
class Batch:
    """A padded, time-major batch of sequences of a dataset.

    Attributes
    ----------
    x : (T, B, I) float32 ndarray
        Inputs, zeros past each sequence's length.
    y : (T, B) int32 ndarray
        Targets, -1 past each sequence's length (and on unlabelled frames).
    lengths : (B,) int64 ndarray
        Frames of each sequence.
    indices : (B,) int64 ndarray
        Index of each sequence in the dataset.
    """

    x: np.ndarray
    y: np.ndarray
    lengths: np.ndarray
    indices: np.ndarray

    @property
    def batch_size(self) -> int:
        """B, the number of sequences."""
        return int(self.lengths.shape[0])

    @property
    def n_frames(self) -> int:
        """Frames in the batch, padding excluded."""
        return int(self.lengths.sum())


def as_rng(rng: np.random.Generator | int | None, name: str = "rng") -> np.random.Generator:
    """Return a ``numpy.random.Generator`` from a generator, an integer seed or ``None``.

    ``None`` gives a freshly seeded (non-reproducible) generator.

    Raises
    ------
    ValueError
        If ``rng`` is of another type or a negative seed.
    """
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        if int(rng) < 0:
            raise ValueError(f"{name} must be a non-negative integer seed, got {rng}")
        return np.random.default_rng(int(rng))
    raise ValueError(
        f"{name} must be a numpy.random.Generator, an integer seed or None, "
        f"got {type(rng).__name__}"
    )


def _check_positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def pad_sequences(
    xs: Sequence[np.ndarray],
    ys: Sequence[np.ndarray] | None,
    dtype: np.dtype | type = np.float32,
    *,
    copy: bool = True,
    check: bool = True,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Pad variable-length sequences into one time-major batch.

    Parameters
    ----------
    xs : sequence of B arrays, each (T_b, I)
        Input sequences; all must have the same number of features I.
    ys : sequence of B arrays, or None
        Targets of one kind (:mod:`seqprop.data.targets`): each (T_b,)
        integer (-1 = unlabelled), (T_b, K) float (a NaN row = not scored) or
        0-d integer (a class per sequence). ``None`` gives ``y = None``.
    dtype : numpy dtype, default float32
        Floating dtype of the padded inputs.
    copy : bool, default True
        False: a batch of one sequence that is already of ``dtype`` (and
        int32 targets) needs no padding and is returned as views of the given
        arrays, (T, 1, I) and (T, 1), instead of a copy.
    check : bool, default True
        False: skip the checks of the arrays (for callers whose sequences are
        known to fit: 2-D numpy arrays of one feature count, integer targets
        as long as their inputs). Garbage in, garbage out.

    Returns
    -------
    x : (T, B, I) ndarray of ``dtype``
        Zeros past each sequence's length.
    y : ndarray or None
        (T, B) int32 with ``-1`` past each sequence's length, (T, B, K)
        float32 with NaN rows there, or (B,) int32 (a class per sequence).
    lengths : (B,) int64 ndarray

    Raises
    ------
    ValueError
        Naming the argument and the index of the offending sequence when the
        arguments do not fit together (empty batch, wrong rank, different
        feature counts, target length differing from input length,
        non-integer targets).
    """
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise ValueError(f"dtype must be a floating dtype, got {dtype}")
    xs = list(xs)
    if not xs:
        raise ValueError("xs must hold at least one sequence")
    if ys is not None:
        ys = list(ys)
        if len(ys) != len(xs):
            raise ValueError(f"ys has {len(ys)} sequences but xs has {len(xs)}")
    if check:
        arrays = _check_inputs(xs)
        targets = None if ys is None else _check_targets(ys, arrays)
    else:
        arrays, targets = xs, ys
    lengths = np.array([a.shape[0] for a in arrays], dtype=np.int64)
    if (
        not copy
        and len(arrays) == 1
        and arrays[0].dtype == dtype
        and (targets is None or targets[0].dtype in (np.int32, np.float32))
    ):
        y0 = None if targets is None else targets[0]
        y0 = None if y0 is None else (y0.reshape(1) if y0.ndim == 0 else y0[:, None])
        return arrays[0][:, None, :], y0, lengths
    n_t = int(lengths.max())
    out_x = np.zeros((n_t, len(arrays), arrays[0].shape[1]), dtype=dtype)
    for b, a in enumerate(arrays):
        out_x[: a.shape[0], b, :] = a
    if targets is None:
        return out_x, None, lengths
    return out_x, pad_targets(targets, n_t), lengths


def _check_inputs(xs: list) -> list[np.ndarray]:
    """The inputs as 2-D numeric arrays with one feature count."""
    arrays = []
    n_in = None
    for b, x in enumerate(xs):
        if type(x) is not np.ndarray:
            x = np.asarray(x)
        if x.ndim != 2:
            raise ValueError(f"xs[{b}] must be 2-D (T, I), got shape {x.shape}")
        if x.dtype.kind not in "fiub":
            raise ValueError(f"xs[{b}] must be numeric, got dtype {x.dtype}")
        if n_in is None:
            n_in = x.shape[1]
        elif x.shape[1] != n_in:
            raise ValueError(f"xs[{b}] has {x.shape[1]} features but xs[0] has {n_in}")
        arrays.append(x)
    return arrays


def _check_targets(ys: list, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """The targets, all of the form of ``ys[0]``: (T_b,) integer, (T_b, K) float with T_b
    as long as the inputs, or 0-d integer."""
    out = []
    first = np.asarray(ys[0])
    for b, y in enumerate(ys):
        if type(y) is not np.ndarray:
            y = np.asarray(y)
        n = arrays[b].shape[0]
        if first.ndim == 0:
            if y.ndim != 0 or y.dtype.kind not in "iu":
                raise ValueError(
                    f"ys[{b}] must be one integer class like ys[0], got {y.dtype} shape {y.shape}"
                )
        elif first.ndim == 2:
            if y.ndim != 2 or y.shape != (n, first.shape[1]) or y.dtype.kind != "f":
                raise ValueError(
                    f"ys[{b}] must be float ({n}, {first.shape[1]}) to match xs[{b}] and ys[0], "
                    f"got {y.dtype} shape {y.shape}"
                )
            y = y.astype(np.float32, copy=False)
        else:
            if y.ndim != 1 or y.shape[0] != n:
                raise ValueError(f"ys[{b}] must have shape ({n},) to match xs[{b}], got {y.shape}")
            if y.size and y.dtype.kind not in "iu":
                raise ValueError(f"ys[{b}] must be integer, got dtype {y.dtype}")
        out.append(y)
    return out


def batch_order(
    lengths: Sequence[int] | np.ndarray,
    batch_size: int,
    *,
    rng: np.random.Generator | int | None = None,
    shuffle: bool = True,
    sort_by_length: bool = False,
    drop_last: bool = False,
) -> list[np.ndarray]:
    """Group sequence indices into batches.

    Parameters
    ----------
    lengths : (N,) int array-like
        Frames per sequence (non-negative).
    batch_size : int
        Sequences per batch (>= 1); the last batch may be smaller.
    rng : numpy.random.Generator, int seed or None
        Source of randomness; the same seed gives the same order. ``None``
        draws a fresh seed.
    shuffle : bool
        Without ``sort_by_length``: batches are consecutive chunks of a random
        permutation (``batch_size=1`` gives a permutation of ``range(N)``).
        When false, batches follow file order.
    sort_by_length : bool
        Length buckets: sequences are sorted by length (ties broken at random
        when ``shuffle``) and cut into consecutive batches, so each batch holds
        sequences of similar length; with ``shuffle`` the order of the batches
        is then shuffled. Without ``shuffle`` the batches run shortest first.
    drop_last : bool
        Leave out the final batch when it holds fewer than ``batch_size``
        sequences (with buckets this is the chunk cut last in length order,
        i.e. some of the longest sequences).

    Returns
    -------
    list of (B,) int64 arrays
        Sequence indices of each batch; every index appears at most once (exactly
        once unless ``drop_last`` dropped a batch).

    Raises
    ------
    ValueError
        Naming the argument: ``lengths`` not a 1-D array of non-negative
        integers, ``batch_size`` not a positive integer, ``rng`` of a wrong type.
    """
    lengths = np.asarray(lengths)
    if lengths.ndim != 1:
        raise ValueError(f"lengths must be 1-D, got shape {lengths.shape}")
    if lengths.size and lengths.dtype.kind not in "iu":
        raise ValueError(f"lengths must be integers, got dtype {lengths.dtype}")
    if lengths.size and lengths.min() < 0:
        bad = int(np.flatnonzero(lengths < 0)[0])
        raise ValueError(f"lengths must be non-negative, lengths[{bad}] = {lengths[bad]}")
    batch_size = _check_positive_int(batch_size, "batch_size")
    n = lengths.shape[0]
    if shuffle or rng is not None:
        gen = as_rng(rng)
    if sort_by_length:
        if shuffle:
            perm = gen.permutation(n)
            order = perm[np.argsort(lengths[perm], kind="stable")]
        else:
            order = np.argsort(lengths, kind="stable")
    else:
        order = gen.permutation(n) if shuffle else np.arange(n)
    order = order.astype(np.int64, copy=False)
    batches = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    if drop_last and batches and len(batches[-1]) < batch_size:
        batches.pop()
    if sort_by_length and shuffle and batches:
        batches = [batches[j] for j in gen.permutation(len(batches))]
    return batches
