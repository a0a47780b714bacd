"""Slow, obviously-correct numpy versions of seqprop's networks.

Written straight from the equations (``docs/EQUATIONS.md``; Graves &
Schmidhuber 2005, sections 3-4) with per-sequence, per-frame Python loops and
numpy's own tanh and exp, independent of the kernels they check. A
recurrent layer may be run "frozen": its recurrent inputs (b(t-1) in
``W_hh b(t-1)``, and s(t-1) in the input/forget peepholes) are taken from a
given constant pass instead of the live computation. The finite-difference
gradient of a frozen network, taken at the weights that produced the
constants, is by definition the truncated gradient.
"""

from __future__ import annotations

import numpy as np


def logistic(x):
    return 1.0 / (1.0 + np.exp(-x))


def squash(x, kind):
    return np.tanh(x) if kind == "tanh" else 4.0 * logistic(x) - 2.0


def lstm_layer(p, x, lengths, reverse, squash_kind="tanh", frozen=None):
    """Returns (out, record); record = (b_prev, s_prev) used at each frame."""
    T, B, _ = x.shape
    H = p["W_hh"].shape[1]
    out = np.zeros((T, B, H))
    rec_b = np.zeros((T, B, H))
    rec_s = np.zeros((T, B, H))
    for b in range(B):
        L = int(lengths[b])
        order = range(L - 1, -1, -1) if reverse else range(L)
        h_prev = np.zeros(H)
        s_prev = np.zeros(H)
        for t in order:
            hp, sp = (frozen[0][t, b], frozen[1][t, b]) if frozen is not None else (h_prev, s_prev)
            rec_b[t, b], rec_s[t, b] = h_prev, s_prev
            a = p["W_ih"] @ x[t, b] + p["W_hh"] @ hp + p["b"]
            a_i, a_f, a_g, a_o = a[:H], a[H : 2 * H], a[2 * H : 3 * H], a[3 * H :]
            b_i = logistic(a_i + p["w_peep"][0] * sp)
            b_f = logistic(a_f + p["w_peep"][1] * sp)
            b_g = squash(a_g, squash_kind)
            s = b_f * s_prev + b_i * b_g  # the carousel always uses the live s(t-1)
            b_o = logistic(a_o + p["w_peep"][2] * s)
            out[t, b] = b_o * squash(s, squash_kind)
            h_prev, s_prev = out[t, b], s
    return out, (rec_b, rec_s)


def rnn_layer(p, x, lengths, reverse, activation="tanh", frozen=None):
    T, B, _ = x.shape
    H = p["W_hh"].shape[0]
    out = np.zeros((T, B, H))
    rec = np.zeros((T, B, H))
    for b in range(B):
        L = int(lengths[b])
        order = range(L - 1, -1, -1) if reverse else range(L)
        h_prev = np.zeros(H)
        for t in order:
            hp = frozen[0][t, b] if frozen is not None else h_prev
            rec[t, b] = h_prev
            a = p["W_ih"] @ x[t, b] + p["W_hh"] @ hp + p["b"]
            out[t, b] = np.tanh(a) if activation == "tanh" else logistic(a)
            h_prev = out[t, b]
    return out, (rec, None)


def time_window(x, lengths, w):
    T, B, I = x.shape
    out = np.zeros((T, B, (2 * w + 1) * I))
    for b in range(B):
        L = int(lengths[b])
        for t in range(L):
            for j, k in enumerate(range(-w, w + 1)):
                if 0 <= t + k < L:
                    out[t, b, j * I : (j + 1) * I] = x[t + k, b]
    return out


def forward(spec, params, x, lengths, frozen=None):
    """Logits (T, B, K) of a make_network() net; also the records of each recurrent layer.

    ``frozen``: dict layer-prefix -> record from an earlier call, or None.
    """
    kind = spec["kind"]
    x = np.array(x, dtype=np.float64)
    T, B, _ = x.shape
    for b in range(B):
        x[int(lengths[b]) :, b] = 0.0
    h = x
    records = {}
    if kind == "mlp":
        h = time_window(h, lengths, spec["window"])
    for n in range(spec["num_layers"]):
        pre = f"hidden.{n}"
        if kind == "mlp":
            z = h @ params[f"{pre}.W"].T + params[f"{pre}.b"]
            h = np.tanh(z) if spec["activation"] == "tanh" else logistic(z)
            continue
        dirs = (
            [("fwd", False), ("bwd", True)]
            if kind in ("blstm", "brnn")
            else [(None, bool(spec.get("reverse", False)))]
        )
        outs = []
        for d, rev in dirs:
            name = f"{pre}.{d}" if d else pre
            p = {k[len(name) + 1 :]: v for k, v in params.items() if k.startswith(name + ".")}
            fr = frozen.get(name) if frozen else None
            if kind in ("blstm", "lstm"):
                o, rec = lstm_layer(p, h, lengths, rev, spec["squash"], fr)
            else:
                o, rec = rnn_layer(p, h, lengths, rev, spec["activation"], fr)
            records[name] = rec
            outs.append(o)
        h = np.concatenate(outs, axis=2)
    logits = h @ params["output.W"].T + params["output.b"]
    return logits, records


def loss(spec, params, x, y, lengths, frozen=None, reduction="sum"):
    logits, records = forward(spec, params, x, lengths, frozen)
    T, B, K = logits.shape
    total = 0.0
    n = 0
    for b in range(B):
        for t in range(int(lengths[b])):
            c = int(y[t, b])
            if c < 0:
                continue
            z = logits[t, b]
            m = z.max()
            w = spec["class_weights"][c] if spec.get("class_weights") is not None else 1.0
            total += w * (np.log(np.exp(z - m).sum()) + m - z[c])
            n += 1
    if reduction == "mean":
        total = total / n if n else 0.0
    return total, records


def probabilities(spec, params, x, lengths):
    logits, _ = forward(spec, params, x, lengths)
    e = np.exp(logits - logits.max(axis=2, keepdims=True))
    p = e / e.sum(axis=2, keepdims=True)
    for b in range(len(lengths)):
        p[int(lengths[b]) :, b] = 0.0
    return p


def numeric_gradient(spec, params, x, y, lengths, *, truncated=False, eps=1e-6, reduction="sum"):
    """Central differences of the reference loss (frozen at ``params`` when truncated)."""
    params = {k: np.array(v, dtype=np.float64) for k, v in params.items()}
    frozen = None
    if truncated:
        _, frozen = loss(spec, params, x, y, lengths, reduction=reduction)
    grads = {}
    for name, p in params.items():
        g = np.zeros_like(p)
        flat, gflat = p.reshape(-1), g.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            lp, _ = loss(spec, params, x, y, lengths, frozen, reduction)
            flat[i] = old - eps
            lm, _ = loss(spec, params, x, y, lengths, frozen, reduction)
            flat[i] = old
            gflat[i] = (lp - lm) / (2 * eps)
        grads[name] = g
    return grads
