"""Pieces shared by the heads that put an affine output layer on every frame.

Float targets (``docs/HEADS.md``): ``y`` (T, B, K) float; a frame whose row
is all NaN is not scored (as ``-1`` is for class targets), a row partly NaN
is an error, and frames past a sequence's length are ignored whatever they
hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from seqprop.products import frame_grad_matmul, frame_matmul

__all__ = ["FrameTargets", "affine", "affine_backward", "logistic", "prepare_float_targets"]


@dataclass(frozen=True)
class FrameTargets:
    """Float targets of a batch, flattened over frames.

    Attributes
    ----------
    values : (T*B, K) float64 ndarray
        The targets, 0 on frames not scored.
    scored : (T*B,) bool ndarray
        Frames inside their sequence whose row is not all NaN.
    """

    values: np.ndarray
    scored: np.ndarray

    @property
    def n(self) -> int:
        """Number of scored frames."""
        return int(np.count_nonzero(self.scored))


def prepare_float_targets(
    y, valid: np.ndarray, num_outputs: int, *, unit_interval: bool = False
) -> FrameTargets:
    """Check (T, B, K) float targets and flatten them.

    Parameters
    ----------
    y : array_like, shape (T, B, K), floating dtype
    valid : (T, B) bool ndarray
        Frames inside their sequence.
    num_outputs : int
        K.
    unit_interval : bool
        Require every scored value in [0, 1] (the logistic head's targets);
        otherwise only finite.

    Raises
    ------
    ValueError
        Naming ``y`` and, for a bad value, its position ``y[t, b, k]``.
    """
    T, B = valid.shape
    K = num_outputs
    y = np.asarray(y)
    if y.shape != (T, B, K):
        raise ValueError(f"y must have shape (T, B, K) = {(T, B, K)}, got {y.shape}")
    if not np.issubdtype(y.dtype, np.floating):
        raise ValueError(
            f"y must be a float array (a row of NaN = frame not scored), got dtype {y.dtype}"
        )
    v = np.where(valid[:, :, None], y.astype(np.float64, copy=False), np.nan)
    nan = np.isnan(v)
    empty = nan.all(axis=2)
    partial = nan.any(axis=2) & ~empty
    if partial.any():
        t, b = np.argwhere(partial)[0]
        k = int(np.flatnonzero(nan[t, b])[0])
        raise ValueError(
            f"y[{t}, {b}, {k}] is NaN but other outputs of that frame are not: a frame is "
            f"either scored (no NaN) or not scored (all {K} values NaN)"
        )
    scored = ~empty
    ok = np.isfinite(v)
    if unit_interval:
        with np.errstate(invalid="ignore"):
            ok &= (v >= 0.0) & (v <= 1.0)
    bad = scored[:, :, None] & ~ok
    if bad.any():
        t, b, k = np.argwhere(bad)[0]
        want = "in [0, 1]" if unit_interval else "finite"
        raise ValueError(f"y[{t}, {b}, {k}] = {float(y[t, b, k])} is not {want}")
    values = np.where(scored[:, :, None], v, 0.0).reshape(T * B, K)
    return FrameTargets(values=values, scored=scored.reshape(T * B))


def affine(p: Mapping[str, np.ndarray], h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``h W^T + b`` over all frames: (T*B, K_out), and ``h`` flattened to (T*B, D)."""
    T, B, D = h.shape
    hf = h.reshape(T * B, D)
    a = frame_matmul(hf, p["W"].T)
    a += p["b"]
    return a, hf


def affine_backward(
    p: Mapping[str, np.ndarray],
    g: Mapping[str, np.ndarray],
    hf: np.ndarray,
    da: np.ndarray,
    shape: tuple[int, int],
) -> np.ndarray:
    """Write dE/dW and dE/db into ``g`` from dE/da (T*B, K_out); return dE/dh (T, B, D)."""
    T, B = shape
    frame_grad_matmul(da, hf, g["W"], frames=T * B)
    np.sum(da, axis=0, out=g["b"])
    return frame_matmul(da, p["W"]).reshape(T, B, -1)


def logistic(a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``1 / (1 + exp(-a))`` element-wise (exp overflowing to inf gives exactly 0)."""
    out = np.negative(a, out=out)
    with np.errstate(over="ignore"):
        np.exp(out, out=out)
    out += 1.0
    np.reciprocal(out, out=out)
    return out
