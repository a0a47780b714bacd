"""Slow, obviously-correct numpy versions of the sequence, logistic and squared-error heads.

Written from the heads' equations (docs/HEADS.md) with per-sequence and
per-frame Python loops, on top of the naive hidden layers of
``tests/reference.py`` (its LSTM, RNN and time-window functions), so they
share no code with the package's heads. ``spec`` is a network's
``make_network`` spec (kind, sizes, head and head options).
"""

from __future__ import annotations

import numpy as np

from . import reference as ref


def hidden(spec, params, x, lengths):
    """The top hidden layer (T, B, D), zero past each length (the head's input)."""
    kind = spec["kind"]
    x = np.array(x, dtype=np.float64)
    T, B, _ = x.shape
    for b in range(B):
        x[int(lengths[b]) :, b] = 0.0
    h = x
    if kind == "mlp":
        h = ref.time_window(h, lengths, spec["window"])
    for n in range(spec["num_layers"]):
        pre = f"hidden.{n}"
        if kind == "mlp":
            z = h @ params[f"{pre}.W"].T + params[f"{pre}.b"]
            h = np.tanh(z) if spec["activation"] == "tanh" else ref.logistic(z)
            continue
        one = [(None, bool(spec.get("reverse", False)))]
        dirs = [("fwd", False), ("bwd", True)] if kind in ("blstm", "brnn") else one
        outs = []
        for d, rev in dirs:
            name = f"{pre}.{d}" if d else pre
            p = {k[len(name) + 1 :]: v for k, v in params.items() if k.startswith(name + ".")}
            if kind in ("blstm", "lstm"):
                o, _ = ref.lstm_layer(p, h, lengths, rev, spec["squash"])
            else:
                o, _ = ref.rnn_layer(p, h, lengths, rev)
            outs.append(o)
        h = np.concatenate(outs, axis=2)
    for b in range(B):
        h[int(lengths[b]) :, b] = 0.0
    return h


def pool(spec, h, lengths):
    """The sequence head's pooled vectors (B, D), one sequence at a time."""
    T, B, D = h.shape
    bidirectional = spec["kind"] in ("blstm", "brnn") and spec["num_layers"] > 0
    half = D // 2
    z = np.zeros((B, D))
    for b in range(B):
        L = int(lengths[b])
        if L == 0:
            continue
        if spec["pooling"] == "mean":
            for t in range(L):
                z[b] += h[t, b]
            z[b] /= L
        elif bidirectional:
            z[b, :half] = h[L - 1, b, :half]  # forward direction: where it ends
            z[b, half:] = h[0, b, half:]  # backward direction: where it ends
        else:
            z[b] = h[L - 1, b]
    return z


def _logsumexp(a):
    m = a.max()
    return m + np.log(np.exp(a - m).sum())


def _activation(a, kind):
    if kind == "logistic":
        return 1.0 / (1.0 + np.exp(-a))
    if kind == "tanh":
        return np.tanh(a)
    return a


def _normalisation(spec, K):
    mean = spec.get("target_mean")
    std = spec.get("target_std")
    if mean is None:
        return np.zeros(K), np.ones(K)
    return np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)


def loss(spec, params, x, y, lengths, reduction="sum"):
    """The head's loss (summed, or divided by the scored units)."""
    h = hidden(spec, params, x, lengths)
    W, bias = params["output.W"], params["output.b"]
    head = spec["head"]
    total, n = 0.0, 0
    if head == "sequence":
        z = pool(spec, h, lengths)
        for b in range(len(lengths)):
            c = int(y[b])
            if c < 0:
                continue
            a = W @ z[b] + bias
            total += _logsumexp(a) - a[c]
            n += 1
    else:
        K = W.shape[0]
        mean, std = _normalisation(spec, K)
        for b in range(len(lengths)):
            for t in range(int(lengths[b])):
                target = np.asarray(y[t, b], dtype=np.float64)
                if np.isnan(target).all():
                    continue
                a = W @ h[t, b] + bias
                n += 1
                for k in range(K):
                    if head == "logistic":
                        p = 1.0 / (1.0 + np.exp(-a[k]))
                        total -= target[k] * np.log(p) + (1 - target[k]) * np.log(1 - p)
                    else:
                        out = _activation(a[k], spec["output_activation"])
                        tn = (target[k] - mean[k]) / std[k]
                        total += 0.5 * (out - tn) ** 2
    if reduction == "mean":
        total = total / n if n else 0.0
    return total


def outputs(spec, params, x, lengths):
    """``predict_proba``: (B, K) for the sequence head, (T, B, K) otherwise (data units)."""
    h = hidden(spec, params, x, lengths)
    W, bias = params["output.W"], params["output.b"]
    K = W.shape[0]
    if spec["head"] == "sequence":
        z = pool(spec, h, lengths)
        out = np.zeros((len(lengths), K))
        for b in range(len(lengths)):
            if lengths[b] == 0:
                continue
            a = W @ z[b] + bias
            out[b] = np.exp(a - _logsumexp(a))
        return out
    T, B, _ = h.shape
    out = np.zeros((T, B, K))
    mean, std = _normalisation(spec, K)
    for b in range(B):
        for t in range(int(lengths[b])):
            a = W @ h[t, b] + bias
            if spec["head"] == "logistic":
                out[t, b] = 1.0 / (1.0 + np.exp(-a))
            else:
                out[t, b] = _activation(a, spec["output_activation"]) * std + mean
    return out


def numeric_gradient(spec, params, x, y, lengths, *, eps=1e-6, reduction="sum"):
    """Central differences of :func:`loss` for every parameter entry."""
    params = {k: np.array(v, dtype=np.float64) for k, v in params.items()}
    grads = {}
    for name, p in params.items():
        g = np.zeros_like(p)
        flat, gflat = p.reshape(-1), g.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            lp = loss(spec, params, x, y, lengths, reduction)
            flat[i] = old - eps
            lm = loss(spec, params, x, y, lengths, reduction)
            flat[i] = old
            gflat[i] = (lp - lm) / (2 * eps)
        grads[name] = g
    return grads
