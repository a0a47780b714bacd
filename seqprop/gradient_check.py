"""Gradient check: analytic gradients against central finite differences.

``gradcheck(net, x, y, lengths)`` perturbs every entry of the flat parameter
vector (or a random subset per array, for big networks) by ``+-eps``, takes
the central difference ``(E(w + eps) - E(w - eps)) / (2 eps)`` of the loss and
compares it with :meth:`Network.loss_and_grad`. Run it in float64.

Error measure, per parameter array, over its checked entries:

    max |analytic - numeric| / max(max |analytic|, max |numeric|)

i.e. the worst discrepancy relative to the array's largest gradient. Entries
whose gradient is tiny next to that scale are judged on the array's scale
rather than their own, because their finite difference is dominated by the
rounding error of the loss (about 1e-16 |E| / eps): with the paper's small
initial weights some peephole gradients are 1e-7, where an element-wise
relative error would measure rounding noise, not the gradient. The test
suite's element-wise comparisons use larger weights.

The function is exported as ``seqprop.gradcheck``.
"""

from __future__ import annotations

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
        Checked in place; its parameters are restored afterwards. A float32
        network is checked through a float64 copy with the same weights
        (float32 finite differences carry ~1e-3 rounding error).
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
    if net.dtype != np.float64:
        if net.spec is None:
            raise ValueError("gradcheck needs a float64 network")
        net = _float64_copy(net)
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
        if idx.size == 0:
            errors[name] = 0.0
            continue
        scale = max(np.abs(a).max(), np.abs(numeric).max())
        diff = np.abs(a - numeric).max()
        errors[name] = float(diff / scale) if scale > 0 else float(diff)
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


def _float64_copy(net):
    from seqprop.network import make_network

    other = make_network(**{**net.spec, "dtype": "float64"})
    other.flat_parameters[...] = net.flat_parameters
    return other
