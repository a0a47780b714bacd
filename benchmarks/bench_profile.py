"""Where a training step of the paper's BLSTM spends its time (one thread, CPU time).

Splits one ``Network.step`` (forward, loss, backward) into

* **recurrent products**: the per-step BLAS products ``W_hh b(t-1)`` and
  ``W_hh^T delta(t+1)`` inside the LSTM kernels, timed by replaying exactly the
  same products (same shapes, same lockstep schedule) in a numba loop;
* **gate math**: the rest of the LSTM kernels' time (elementwise gate
  arithmetic, the vectorised nonlinearities, the kernels' loops);
* **frame-wide products**: every product over all frames (input projections,
  weight gradients, the output layer): every ``frame_matmul`` call, and for
  the BLSTM, whose directions each run as one compiled call
  (``lstm_layer_forward``/``lstm_layer_backward``), the same products
  replayed on their own;
* **softmax**: the output layer's compiled call per block of frames
  (``softmax_head_rows``: the logits product, softmax and cross-entropy);
* **Python and numpy glue**: everything else (the layers' Python, small numpy
  reductions and copies, thread hand-off);

and counts the minor page faults of a step (fresh memory touched for the
first time: the kernel zeroes each 4 KiB page, in system time).

seqprop runs on ONE thread here (``set_num_threads(1)``) and every figure is
CPU time of the calling thread (``time.thread_time``), so shares are not
disturbed by other processes on a shared machine. Each figure is the median
over ``--repeats`` rounds (min and max printed beside it).

Usage::

    python benchmarks/bench_profile.py [--dtype float32] [--mode online|batch16]
                                       [--repeats 7] [--steps 20] [--kind blstm]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from collections import defaultdict

import numpy as np

from seqprop import _parallel, layers, make_network, products
from seqprop.bench import PAPER_SIZES, make_batches, make_online_data
from seqprop.heads import softmax as softmax_head
from seqprop.kernels._jit import jit
from seqprop.kernels.lockstep import lockstep_schedule


@jit
def _replay_products(active, H, G, dtype_probe, backward, lstm=True):
    """The recurrences' per-step products alone: ``active[k]`` rows each step."""
    B = active[0] if active.shape[0] else 0
    hb = np.full((max(B, 1), H), 0.01, dtype=dtype_probe.dtype)
    z = np.zeros((max(B, 1), G), dtype=dtype_probe.dtype)
    w = np.full((H, G), 0.01, dtype=dtype_probe.dtype)
    wt = np.full((G, H), 0.01, dtype=dtype_probe.dtype)
    for k in range(active.shape[0]):
        n = active[k]
        if backward and n == 1 and lstm:  # one sequence: a matrix-vector product (the kernel's)
            np.dot(w, z[0], hb[0])
        elif backward:
            np.dot(z[:n], wt, hb[:n])
        elif k > 0 and n == 1 and hb.itemsize == 8:  # one float64 sequence: W_hh's rows
            np.dot(wt, hb[0], z[0])
        elif k > 0:
            np.dot(hb[:n], w, z[:n])
    return z[0, 0] + hb[0, 0]


@jit
def _replay_layer_products(T, B, I, G, H, dtype_probe, grads=True):
    """The frame-wide products inside one direction's compiled passes
    (``lstm_layer_forward``/``lstm_layer_backward``): input projections, the
    ``W_ih``, bias and ``W_hh`` gradients, same shapes and layouts (without
    ``grads``, the input projection alone)."""
    N = T * B
    x = np.full((N, I), 0.01, dtype=dtype_probe.dtype)
    w_ih = np.full((G, I), 0.01, dtype=dtype_probe.dtype)
    xp = np.empty((N, G), dtype=dtype_probe.dtype)
    np.dot(x, w_ih.T, xp)
    if not grads:
        return xp[0, 0]
    g_ih = np.empty((G, I), dtype=dtype_probe.dtype)
    np.dot(xp.T, x, g_ih)
    ones = np.ones(N, dtype=dtype_probe.dtype)
    g_b = np.empty(G, dtype=dtype_probe.dtype)
    np.dot(ones, xp, g_b)
    h = np.full((N - B, H), 0.01, dtype=dtype_probe.dtype)
    d = np.full((N - B, G), 0.01, dtype=dtype_probe.dtype)  # the (delta(t), b(t_prev)) pairs
    g_hh = np.empty((G, H), dtype=dtype_probe.dtype)
    np.dot(d.T, h, g_hh)
    return g_ih[0, 0] + g_b[0] + g_hh[0, 0]


class _Timers:
    """Accumulated thread CPU time per category, wrapping the package's entry points."""

    def __init__(self):
        self.t = defaultdict(float)
        self._saved = []

    def wrap(self, module, name, category):
        fn = getattr(module, name)
        timers = self.t

        def timed(*args, **kwargs):
            t0 = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                timers[category] += time.thread_time() - t0

        self._saved.append((module, name, fn))
        setattr(module, name, timed)

    def restore(self):
        for module, name, fn in reversed(self._saved):
            setattr(module, name, fn)
        self._saved.clear()


def profile(kind="blstm", dtype="float32", mode="online", repeats=7, steps=20, squash="tanh"):
    """Shares of one training step; returns a dict of category -> list of seconds per step."""
    H = PAPER_SIZES[kind]
    batches = [make_online_data(dtype)] if mode == "online" else make_batches(dtype)
    opts = {"squash": squash} if kind in ("blstm", "lstm") else {}
    if kind == "mlp":
        opts = {"window": 10}  # the paper's MLP, as benchmarks/bench_speed.py times it
    net = make_network(kind, 26, H, 61, dtype=dtype, random_state=0, **opts)
    _parallel.set_num_threads(1)
    try:
        for x, y, lengths in batches:  # compile, warm up
            net.step(x, y, lengths)
        frames = float(np.mean([b[2].sum() for b in batches]))
        # replayed recurrent products per batch (both directions, forward and backward)
        is_lstm = kind in ("blstm", "lstm")
        G = 4 * H if is_lstm else H
        ndir = {"blstm": 2, "brnn": 2, "mlp": 0}.get(kind, 1)  # the MLP has no recurrence
        probe = np.zeros(1, dtype=dtype)
        schedules = []
        for _, _, lengths in batches:
            order = np.argsort(-lengths, kind="stable")
            schedules.append(lockstep_schedule(lengths, order))
        for act in schedules if ndir else []:
            _replay_products(act, H, G, probe, False, is_lstm)
            _replay_products(act, H, G, probe, True, is_lstm)
        # layers.Bidirectional runs each LSTM direction in one call; a one-direction LSTM
        # over one sequence its forward pass (the weight gradients follow the backward
        # recurrence in lstm_chunk_gradients, timed as frame-wide products)
        fused = kind == "blstm" or (kind == "lstm" and mode == "online")
        fused_grads = kind == "blstm"
        if fused:
            x0 = batches[0][0]
            _replay_layer_products(x0.shape[0], x0.shape[1], 26, G, H, probe, fused_grads)

        rounds = defaultdict(list)
        timers = _Timers()
        for _ in range(repeats):
            timers.t.clear()
            kernels = ("lstm_forward", "lstm_backward", "rnn_forward", "rnn_backward")
            for name in kernels:
                timers.wrap(layers, name, "kernels")
            # a bidirectional LSTM's directions: one compiled call each, products inside
            for name in ("lstm_layer_forward", "lstm_layer_backward", "lstm_backward_chunks"):
                timers.wrap(layers, name, "fused")
            timers.wrap(products, "_matmul", "frame-wide products")
            timers.wrap(layers, "lstm_chunk_gradients", "frame-wide products")
            timers.wrap(softmax_head, "softmax_head_rows", "softmax")
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            t0 = time.thread_time()
            for i in range(steps):
                x, y, lengths = batches[i % len(batches)]
                net.step(x, y, lengths)
            total = time.thread_time() - t0
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
            timers.restore()
            t1 = time.thread_time()
            for i in range(steps):
                act = schedules[i % len(schedules)]
                for _ in range(ndir):
                    _replay_products(act, H, G, probe, False, is_lstm)
                    _replay_products(act, H, G, probe, True, is_lstm)
            rec = time.thread_time() - t1
            t2 = time.thread_time()
            if fused:
                for i in range(steps):
                    x, _, _ = batches[i % len(batches)]
                    for _ in range(ndir):
                        _replay_layer_products(x.shape[0], x.shape[1], 26, G, H, probe, fused_grads)
            inner = (time.thread_time() - t2) / steps
            per = {k: v / steps for k, v in timers.t.items()}
            if per.get("fused", 0.0) > 0.0:
                per["kernels"] = per.get("kernels", 0.0) + per["fused"] - inner
                per["frame-wide products"] = per.get("frame-wide products", 0.0) + inner
            rec /= steps
            rounds["recurrent products"].append(rec)
            rounds["gate math (kernels minus products)"].append(per.get("kernels", 0.0) - rec)
            rounds["frame-wide products"].append(per.get("frame-wide products", 0.0))
            rounds["softmax"].append(per.get("softmax", 0.0))
            glue = total / steps - per.get("kernels", 0.0)
            glue -= per.get("frame-wide products", 0.0) + per.get("softmax", 0.0)
            rounds["Python and numpy glue"].append(glue)
            rounds["total"].append(total / steps)
            rounds["page faults"].append(faults / steps)
        rounds["frames per step"] = [frames]
        return dict(rounds)
    finally:
        _parallel.set_num_threads(None)


def report(rounds, title):
    lines = [title, f"{'part':38s} {'median us/step':>14s} {'share':>6s}  (min .. max)"]
    total = statistics.median(rounds["total"])
    for k, v in rounds.items():
        if k in ("frames per step", "page faults"):
            continue
        m = statistics.median(v)
        lines.append(
            f"{k:38s} {m * 1e6:14,.0f} {m / total:6.1%}  ({min(v) * 1e6:,.0f} .. {max(v) * 1e6:,.0f})"
        )
    pf = rounds["page faults"]
    lines.append(
        f"minor page faults per step: median {statistics.median(pf):,.0f} "
        f"({min(pf):,.0f} .. {max(pf):,.0f}; fresh memory the kernel zeroes on first touch)"
    )
    frames = rounds["frames per step"][0]
    lines.append(
        f"one thread: {frames / total:,.0f} frames/s of CPU time ({frames:.0f} frames/step)"
    )
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kind", default="blstm", choices=sorted(PAPER_SIZES))
    ap.add_argument("--dtype", default=None, choices=["float32", "float64"])
    ap.add_argument("--mode", default=None, choices=["online", "batch16"])
    ap.add_argument("--squash", default="tanh", choices=["tanh", "logistic2"])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args(argv)
    dtypes = [args.dtype] if args.dtype else ["float32", "float64"]
    modes = [args.mode] if args.mode else ["online", "batch16"]
    for dtype in dtypes:
        for mode in modes:
            r = profile(args.kind, dtype, mode, args.repeats, args.steps, args.squash)
            print(report(r, f"\n{args.kind} {dtype} {mode}"))  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
