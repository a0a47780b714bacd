"""The squared-error head: K real outputs per frame (regression).

Outputs ``y = f(a)`` with ``a = W h(t) + b`` and ``f`` the
``output_activation``: ``"identity"`` (default), ``"logistic"`` or
``"tanh"``. The loss is the sum-of-squares error of back-propagation
(Rumelhart, Hinton & Williams 1986; Bishop 1995, *Neural Networks for
Pattern Recognition*, chapter 6; ``docs/HEADS.md``)::

    E = 1/2 sum over scored frames and outputs k of (y_k - t_k)^2

with gradient ``(y_k - t_k) f'(a_k)`` at the output's input, where ``f'`` is
1, ``y (1 - y)`` or ``1 - y^2``.

Targets ``y`` are (T, B, K) float; a frame whose row is all NaN is not
scored.

Target normalisation (optional): with ``target_mean`` and ``target_std``
(K values each, typically the training set's statistics) the network is
trained on ``(t - target_mean) / target_std``: the loss and its gradient
are in those normalised units, while predictions (:meth:`predict_proba`,
:meth:`predict`) are mapped back, ``y * target_std + target_mean``, and the
metrics are computed in the data's own units. Both are stored in the
network's ``spec`` (as lists), so a saved model predicts in the data's
units. Without them the targets are used as given.

Metrics, from additive counts: RMSE per output and over all outputs, and the
coefficient of determination R^2 = 1 - SSE / SST per output and overall
(pooled SSE over pooled SST). Training selects on ``rmse``.
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

__all__ = ["OUTPUT_ACTIVATIONS", "RegressionResult", "RegressionScores", "SquaredErrorHead"]

OUTPUT_ACTIVATIONS = ("identity", "logistic", "tanh")


def _statistic(value, name: str, K: int, *, positive: bool) -> np.ndarray:
    try:
        out = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be {K} numbers, got {value!r}") from None
    if out.shape != (K,):
        raise ValueError(f"{name} must be {K} numbers (one per output), got shape {out.shape}")
    bad = ~np.isfinite(out) | ((out <= 0) if positive else False)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        want = "finite and > 0" if positive else "finite"
        raise ValueError(f"{name}[{k}] = {out[k]} must be {want}")
    return out


def _regression_metrics(n, sse, shifted_sum, shifted_sq) -> dict[str, Any]:
    """RMSE and R^2 per output and overall from additive counts (arrays of K)."""
    K = sse.size
    nan = float("nan")
    if not n:
        return {"rmse": nan, "r2": nan, "rmse_k": np.full(K, nan), "r2_k": np.full(K, nan)}
    sst = np.maximum(shifted_sq - shifted_sum * shifted_sum / n, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2_k = np.where(sst > 0, 1.0 - sse / np.where(sst > 0, sst, 1.0), nan)
    total_sst = sst.sum()
    return {
        "rmse": float(np.sqrt(sse.sum() / (n * K))),
        "r2": float(1.0 - sse.sum() / total_sst) if total_sst > 0 else nan,
        "rmse_k": np.sqrt(sse / n),
        "r2_k": r2_k,
    }


@register_head
class SquaredErrorHead(Head):
    """K real outputs per frame with the squared error (regression).

    Parameters: ``W`` (K, D), ``b`` (K,).

    Options
    -------
    output_activation : {"identity", "logistic", "tanh"}
    target_mean, target_std : sequence of K float, or None
        Target normalisation (module docstring); give both or neither.

    Counts (additive over batches), in the data's units: ``frames`` (scored),
    and per output k ``sse_k`` (sum of squared errors), ``sum_k`` and
    ``sumsq_k`` (sums of ``t_k - target_mean_k`` and of its square; the
    shift by the mean, 0 without normalisation, keeps SST accurate).
    """

    name = "squared_error"
    target_kind = TargetKind.FRAME_VALUES
    output_name = "values"
    option_names = ("output_activation", "target_mean", "target_std")
    selection = "rmse"

    def __init__(
        self,
        input_size: int,
        num_classes: int,
        *,
        output_activation: str = "identity",
        target_mean=None,
        target_std=None,
    ) -> None:
        super().__init__(input_size, num_classes)
        if output_activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(
                f"output_activation must be one of {OUTPUT_ACTIVATIONS}, got {output_activation!r}"
            )
        if (target_mean is None) != (target_std is None):
            raise ValueError("give both target_mean and target_std, or neither")
        self.output_activation = output_activation
        K = self.num_classes
        self.target_mean = None
        self.target_std = None
        if target_mean is not None:
            self.target_mean = _statistic(target_mean, "target_mean", K, positive=False)
            self.target_std = _statistic(target_std, "target_std", K, positive=True)
        self._shift = self.target_mean if self.target_mean is not None else np.zeros(K)
        self._scale = self.target_std if self.target_std is not None else np.ones(K)
        ks = range(K)
        self.count_names = (
            "frames",
            *(f"sse_{k}" for k in ks),
            *(f"sum_{k}" for k in ks),
            *(f"sumsq_{k}" for k in ks),
        )

    def options(self) -> dict[str, Any]:
        """Options as ``make_network`` takes them; statistics as lists (JSON)."""
        return {
            "output_activation": self.output_activation,
            "target_mean": None if self.target_mean is None else self.target_mean.tolist(),
            "target_std": None if self.target_std is None else self.target_std.tolist(),
        }

    def prepare_targets(self, y, valid: np.ndarray) -> FrameTargets:
        """(T, B, K) finite float targets in the data's units, all-NaN rows not scored."""
        return prepare_float_targets(y, valid, self.num_classes)

    # -- passes ------------------------------------------------------------------
    def _outputs(self, p, h) -> tuple[np.ndarray, np.ndarray]:
        """Outputs in normalised units (T*B, K), computed in place of ``a``; and ``h`` flat."""
        a, hf = affine(p, h)
        if self.output_activation == "logistic":
            logistic(a, out=a)
        elif self.output_activation == "tanh":
            np.tanh(a, out=a)
        return a, hf

    def _errors(self, out: np.ndarray, targets: FrameTargets) -> np.ndarray:
        """``y - t`` in normalised units (T*B, K), zero on unscored frames."""
        tn = (targets.values - self._shift) / self._scale
        diff = out - tn.astype(out.dtype, copy=False)
        diff[~targets.scored] = 0.0
        return diff

    def _result(self, diff: np.ndarray, targets: FrameTargets) -> StepResult:
        """The summed loss and the counts, from the errors of :meth:`_errors`."""
        d = diff.astype(np.float64) * self._scale  # errors in the data's units
        s = targets.scored
        shifted = targets.values[s] - self._shift
        sse = np.einsum("nk,nk->k", d, d)
        counts: dict[str, float] = {"frames": targets.n}
        for name, values in (
            ("sse", sse),
            ("sum", shifted.sum(axis=0)),
            ("sumsq", (shifted * shifted).sum(axis=0)),
        ):
            counts.update({f"{name}_{k}": float(v) for k, v in enumerate(values)})
        loss_sum = 0.5 * float(np.einsum("nk,nk->", diff, diff, dtype=np.float64))
        return StepResult(loss_sum, loss_sum, targets.n, counts)

    def loss_and_grad(self, p, g, h, lengths, targets, reduction):
        T, B, _ = h.shape
        out, hf = self._outputs(p, h)
        diff = self._errors(out, targets)
        result = self._result(diff, targets)
        da = diff
        if self.output_activation == "logistic":
            da = diff * out * (1.0 - out)
        elif self.output_activation == "tanh":
            da = diff * (1.0 - out * out)
        if reduction == "mean":
            scale = 1.0 / result.n_scored if result.n_scored else 0.0
            da *= scale
            result = StepResult(
                result.loss_sum * scale, result.loss_sum, result.n_scored, result.counts
            )
        dh = affine_backward(p, g, hf, da, (T, B))
        return result, dh

    def score(self, p, h, lengths, targets):
        out, _ = self._outputs(p, h)
        return self._result(self._errors(out, targets), targets)

    def predict_proba(self, p, h, lengths):
        """Outputs in the data's units (T, B, K); zero past each length."""
        T, B, _ = h.shape
        out, _ = self._outputs(p, h)
        if self.target_mean is not None:
            out *= self._scale.astype(out.dtype)
            out += self._shift.astype(out.dtype)
        out = out.reshape(T, B, self.num_classes)
        out[np.arange(T)[:, None] >= lengths[None, :]] = 0.0
        return out

    def predict(self, p, h, lengths):
        """The same values as :meth:`predict_proba` (T, B, K)."""
        return self.predict_proba(p, h, lengths)

    # -- metrics -----------------------------------------------------------------
    def _count_arrays(self, counts: Mapping[str, float]) -> tuple[np.ndarray, ...]:
        K = self.num_classes
        return tuple(
            np.array([float(counts.get(f"{name}_{k}", 0.0)) for k in range(K)])
            for name in ("sse", "sum", "sumsq")
        )

    def metrics(self, counts: Mapping[str, float]) -> dict[str, float]:
        n = int(counts.get("frames", 0))
        m = _regression_metrics(n, *self._count_arrays(counts))
        return {
            "rmse": m["rmse"],
            "r2": m["r2"],
            "frames": n,
            **{f"rmse_{k}": float(v) for k, v in enumerate(m["rmse_k"])},
            **{f"r2_{k}": float(v) for k, v in enumerate(m["r2_k"])},
        }

    def evaluator(self, class_names: list[str]) -> RegressionScores:
        return RegressionScores(class_names, shift=self._shift, scale=self._scale)


@dataclass
class RegressionResult:
    """Scores of a squared-error model on a dataset, in the data's units.

    Attributes
    ----------
    n_sequences, n_frames : int
        Sequences, and frames scored.
    loss : float
        The training loss per scored frame, 1/2 sum_k (y_k - t_k)^2 in
        normalised units (the data's units without normalisation).
    rmse, r2 : float
        Over all outputs (R^2 = 1 - pooled SSE / pooled SST; NaN when the
        targets do not vary).
    class_names : list of K str
        The outputs' names.
    rmse_per_output, r2_per_output : (K,) float ndarray
    """

    n_sequences: int
    n_frames: int
    loss: float
    rmse: float
    r2: float
    class_names: list[str]
    rmse_per_output: np.ndarray
    r2_per_output: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary (undefined values become null)."""

        def floats(v):
            return [None if np.isnan(x) else float(x) for x in v]

        return {
            "n_sequences": self.n_sequences,
            "n_frames": self.n_frames,
            "loss": self.loss,
            "rmse": self.rmse,
            "r2": self.r2,
            "class_names": list(self.class_names),
            "rmse_per_output": floats(self.rmse_per_output),
            "r2_per_output": floats(self.r2_per_output),
        }


class RegressionScores:
    """Accumulates a squared-error head's scores into a :class:`RegressionResult`.

    :meth:`add` takes one sequence's outputs (T, K) in the data's units (as
    :meth:`SquaredErrorHead.predict_proba` gives them) and targets (T, K)
    float (a row of NaN = frame not scored). ``shift`` and ``scale`` are
    the head's target normalisation (0 and 1 without).
    """

    def __init__(self, class_names: Sequence[str], *, shift=None, scale=None) -> None:
        self.class_names = list(class_names)
        K = len(self.class_names)
        self.shift = np.zeros(K) if shift is None else np.asarray(shift, dtype=np.float64)
        self.scale = np.ones(K) if scale is None else np.asarray(scale, dtype=np.float64)
        self.frames = 0
        self.sse = np.zeros(K)
        self.sum = np.zeros(K)
        self.sumsq = np.zeros(K)

    def add(self, outputs: np.ndarray, targets: np.ndarray) -> None:
        targets = np.asarray(targets, dtype=np.float64)
        scored = ~np.isnan(targets).all(axis=1)
        if not scored.any():
            return
        t = targets[scored]
        err = np.asarray(outputs, dtype=np.float64)[scored] - t
        shifted = t - self.shift
        self.frames += int(scored.sum())
        self.sse += (err * err).sum(axis=0)
        self.sum += shifted.sum(axis=0)
        self.sumsq += (shifted * shifted).sum(axis=0)

    def result(self, n_sequences: int) -> RegressionResult:
        n = self.frames
        m = _regression_metrics(n, self.sse, self.sum, self.sumsq)
        loss = 0.5 * float((self.sse / self.scale**2).sum()) / n if n else float("nan")
        return RegressionResult(
            n_sequences=n_sequences,
            n_frames=n,
            loss=loss,
            rmse=m["rmse"],
            r2=m["r2"],
            class_names=self.class_names,
            rmse_per_output=np.asarray(m["rmse_k"]),
            r2_per_output=np.asarray(m["r2_k"]),
        )
