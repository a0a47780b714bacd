"""Input normalisation: ``(x - mean) / std`` per feature.

A ``seqprop.sequences`` file may store per-feature ``mean`` and ``std``
attributes (float64, (I,), ``std > 0``; ``docs/FORMAT.md``): the statistics a
reader should normalise with, usually the training split's from
:func:`compute_normalisation`. The stored ``inputs`` are never normalised by
them. This module computes the statistics, checks stored or given ones, and
applies them (:func:`apply_normalisation`, the one implementation every reader
and the network's preprocessing use).

Shape legend: I = input features, T = frames.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from seqprop.errors import DataError

__all__ = [
    "apply_normalisation",
    "check_statistics",
    "compute_normalisation",
    "normalisation_pair",
]


def apply_normalisation(
    x: np.ndarray, mean: np.ndarray, std: np.ndarray, out: np.ndarray | None = None
) -> np.ndarray:
    """``(x - mean) / std`` elementwise, in numpy's result dtype of ``x`` and the statistics.

    Parameters
    ----------
    x : (..., I) ndarray
    mean, std : (I,) ndarrays
        Their dtype sets the arithmetic's precision (float32 statistics on
        float32 inputs: float32; float64 statistics: float64).
    out : ndarray, optional
        Where to write the result (may be ``x`` itself, or a view of it, to
        normalise in place). Default: a new array.

    Returns
    -------
    ndarray
        ``out`` (or the new array).
    """
    out = np.subtract(x, mean, out=out)
    return np.divide(out, std, out=out)


def check_statistics(
    values: Mapping[str, Any], n_in: int, where: Callable[[str], str]
) -> dict[str, np.ndarray]:
    """Validate optional per-feature ``mean``/``std`` (None = absent) as float64 arrays.

    Each must be ``n_in`` finite numbers, ``std`` positive. ``where(name)``
    gives the message prefix naming the file's attribute or the argument.

    Returns
    -------
    dict
        ``{"mean": (I,) float64, "std": (I,) float64}``, with only the names given.
    """
    stats = {}
    for name, value in values.items():
        if value is None:
            continue
        a = np.asarray(value)
        if a.dtype.kind not in "fiu" or a.shape != (n_in,):
            raise DataError(
                f"{where(name)} must be {n_in} numbers (one per feature), "
                f"got dtype {a.dtype} shape {a.shape}"
            )
        a = a.astype(np.float64)
        if not np.all(np.isfinite(a)):
            raise DataError(f"{where(name)} holds NaN or infinite values")
        stats[name] = a
    if "std" in stats and np.any(stats["std"] <= 0):
        j = int(np.flatnonzero(stats["std"] <= 0)[0])
        raise DataError(f"{where('std')}[{j}] = {stats['std'][j]}; std must be positive")
    return stats


def normalisation_pair(dataset: Any, normalise: Any) -> tuple[np.ndarray, np.ndarray]:
    """The float32 (mean, std) a dataset applies for ``open_dataset(..., normalise=...)``.

    ``normalise`` is True (the file's stored statistics) or a (mean, std) pair
    of (I,) arrays.

    Raises
    ------
    DataError
        ``True`` but the file stores no statistics.
    ValueError
        A pair of the wrong shape, not finite, or with ``std <= 0``.
    """
    if normalise is True:
        if dataset.mean is None or dataset.std is None:
            raise DataError(
                f"{dataset.path}: normalise=True but the file stores no 'mean'/'std' attributes"
            )
        mean, std = dataset.mean, dataset.std
    else:
        try:
            mean, std = normalise
        except (TypeError, ValueError):
            raise ValueError("normalise must be a bool or a (mean, std) pair") from None
    mean = np.asarray(mean, dtype=np.float64)
    std = np.asarray(std, dtype=np.float64)
    n_in = dataset.input_size
    for name, a in (("mean", mean), ("std", std)):
        if a.shape != (n_in,):
            raise ValueError(f"normalise {name} must have shape ({n_in},), got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"normalise {name} must be finite")
    if np.any(std <= 0):
        raise ValueError("normalise std must be positive")
    return mean.astype(np.float32), std.astype(np.float32)


_ROWS_BYTES = 1 << 22  # float64 temporaries of about 4 MiB


def _sequential_sum(block: np.ndarray, transform: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``transform(block as float64).sum(axis=0)``, bit for bit, with bounded temporaries.

    numpy sums a C-ordered array along axis 0 row after row; carrying the
    running sum as the first row of the next group of rows keeps that order
    exactly, so the result equals the one-shot sum while only a group of
    rows is ever converted to float64.
    """
    n, n_in = block.shape
    rows = max(1, _ROWS_BYTES // (8 * max(1, n_in)))
    acc = np.zeros((1, n_in), dtype=np.float64)
    for start in range(0, n, rows):
        part = transform(np.asarray(block[start : start + rows], dtype=np.float64))
        acc = np.add.reduce(np.concatenate([acc, part]), axis=0, keepdims=True)
    return acc[0]


def _block_statistics(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sum of squared deviations of a (rows, I) block, in float64, without
    converting the whole block at once (an in-memory split is one block)."""
    n = block.shape[0]
    mean = _sequential_sum(block, lambda b: b) / n

    def squared(b: np.ndarray) -> np.ndarray:
        np.subtract(b, mean, out=b)
        return np.multiply(b, b, out=b)

    return mean, _sequential_sum(block, squared)


def compute_normalisation(dataset: Any, *, eps: float = 1e-8) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation over every frame of a dataset.

    One streaming pass over the raw (unnormalised) inputs, block by block
    (:meth:`~seqprop.data.SequenceDataset.raw_blocks`), accumulating in
    float64 and merging block statistics with Chan et al.'s pairwise update
    (no catastrophic cancellation). The standard deviation is the population
    one (divide by N_frames), floored at ``eps`` so that constant features do
    not divide by zero.

    Parameters
    ----------
    dataset : SequenceDataset
    eps : float
        Lower bound for ``std`` (> 0).

    Returns
    -------
    mean, std : (I,) float64 ndarrays
    """
    if not (isinstance(eps, float | int) and eps > 0 and math.isfinite(eps)):
        raise ValueError(f"eps must be a positive number, got {eps!r}")
    n_in = dataset.input_size
    count = 0
    mean = np.zeros(n_in, dtype=np.float64)
    m2 = np.zeros(n_in, dtype=np.float64)
    blocks: Iterable[tuple[int, np.ndarray]] = dataset.raw_blocks("inputs")
    for _, block in blocks:
        nb = block.shape[0]
        if nb == 0:
            continue
        bmean, bm2 = _block_statistics(block)
        total = count + nb
        delta = bmean - mean
        mean = mean + delta * (nb / total)
        m2 = m2 + bm2 + delta**2 * (count * nb / total)
        count = total
    std = np.sqrt(m2 / max(count, 1))
    return mean, np.maximum(std, eps)
