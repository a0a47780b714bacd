"""Gradient check: analytic gradients against central finite differences.

``gradcheck(net, x, y, lengths)`` perturbs every entry of the flat parameter
vector (or a random subset per array, for big networks) by ``+-eps``, takes
the central difference ``(E(w + eps) - E(w - eps)) / (2 eps)`` of the loss and
compares it with :meth:`Network.loss_and_grad`. Run it in float64.

Error measure, per parameter array: the worst over its checked entries of

    |analytic - numeric| / max(|analytic|, |numeric|, floor)

with ``floor = 1e-3 * max |numeric|`` over the whole array (plus 1e-12), so
that entries whose gradient is tiny next to the array's scale are judged on
the array's scale instead of their own (their finite difference is dominated
by rounding error).

The module itself is callable: ``seqprop.gradcheck(net, ...)`` and
``from seqprop.gradcheck import gradcheck`` are the same function.
"""

from __future__ import annotations

import sys
import types

import numpy as np

from seqprop.errors import GradientCheckError


def gradcheck(
    net,
    x,
    y,
    lengths,
    *,
    eps: float = 1e-5,
    rtol: float = 1e-5,
    reduction: str = "sum",
    max_entries: int | None = None,
    random_state=None,
    raise_on_failure: bool = True,
) -> dict[str, float]:
    """Compare ``net.loss_and_grad`` with central finite differences.

    Parameters
    ----------
    net : Network
        Checked in place; its parameters are restored afterwards. Should be
        float64 (float32 differences carry ~1e-3 rounding error).
    x : ndarray, shape (T, B, I)
    y : ndarray of int, shape (T, B)
    lengths : ndarray of int, shape (B,)
    eps : float
        Finite-difference step.
    rtol : float
        Largest acceptable error (see module docstring).
    reduction : {"sum", "mean"}
    max_entries : int, optional
        Check at most this many entries per parameter array, drawn with
        ``random_state``; all entries when None.
    raise_on_failure : bool
        Raise :class:`~seqprop.errors.GradientCheckError` when any array's
        error exceeds ``rtol``.

    Returns
    -------
    dict[str, float]
        Worst relative error per parameter array.
    """
    if eps <= 0 or rtol <= 0:
        raise ValueError("eps and rtol must be positive")
    _, grads = net.loss_and_grad(x, y, lengths, reduction=reduction)
    analytic = {k: v.copy() for k, v in grads.items()}
    rng = np.random.default_rng(random_state)
    params = net.parameters()
    errors: dict[str, float] = {}
    for name, p in params.items():
        flat = p.reshape(-1)
        idx = np.arange(flat.size)
        if max_entries is not None and flat.size > max_entries:
            idx = np.sort(rng.choice(flat.size, size=max_entries, replace=False))
        numeric = np.empty(idx.size)
        for n, i in enumerate(idx):
            old = flat[i]
            flat[i] = old + eps
            lp = net.loss(x, y, lengths, reduction=reduction)
            flat[i] = old - eps
            lm = net.loss(x, y, lengths, reduction=reduction)
            flat[i] = old
            numeric[n] = (lp - lm) / (2 * eps)
        a = analytic[name].reshape(-1)[idx].astype(np.float64)
        floor = 1e-3 * (np.abs(numeric).max() if numeric.size else 0.0) + 1e-12
        denom = np.maximum(np.maximum(np.abs(a), np.abs(numeric)), floor)
        errors[name] = float((np.abs(a - numeric) / denom).max()) if idx.size else 0.0
    if raise_on_failure:
        bad = {k: v for k, v in errors.items() if not v <= rtol}
        if bad:
            worst = ", ".join(
                f"{k}: {v:.3g}" for k, v in sorted(bad.items(), key=lambda kv: -kv[1])
            )
            raise GradientCheckError(
                f"analytic and finite-difference gradients disagree beyond rtol={rtol:g}: {worst}"
            )
    return errors


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        return gradcheck(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
