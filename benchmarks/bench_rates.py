"""This machine's kernel rates, and the FLOP-based ceiling of the paper BLSTM's training step.

Rates, one thread (BLAS held to one thread, as seqprop holds it), CPU time of the calling thread (``time.thread_time``, so
other processes on a shared machine disturb them little), best of
``--repeats`` rounds:

* BLAS matrix-vector products called from numba (``np.dot`` of a (1, H) row
  and an (H, 4H) matrix: the online recurrent step), GFLOP/s;
* small GEMMs: the batch-16 recurrent step (16, H) @ (H, 4H) and the
  frame-wide products of one 300-frame sequence, GFLOP/s;
* a square 512 GEMM (the BLAS's peak), GFLOP/s;
* ``expm1`` per element: numpy's SIMD ``exp`` and the kernels' own
  vectorised ``expm1`` (:func:`seqprop.kernels.activations.expm1_work`), ns.

Ceiling: one direction per core (the directions are independent), the time
of a frame is its recurrent products at the GEMV (online) or small-GEMM
(batch 16) rate, its frame-wide products at the frame-GEMM rate, half of the
output layer's three products, and its 5 H nonlinearities at the kernels'
``expm1`` rate; the ceiling is one over that. Only arithmetic is counted:
it is an upper bound, not a prediction.

Usage::

    python benchmarks/bench_rates.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from seqprop._parallel import blas_single_thread
from seqprop.kernels._jit import jit
from seqprop.kernels.activations import expm1_work

H, I, K = 93, 26, 61  # the paper BLSTM: blocks per direction, inputs, classes
G = 4 * H
ONLINE_T = 300


@jit
def _rowdot_loop(h, w, z, n):
    """``n`` dependent (1, H) @ (H, G) products, as the online recurrence makes them."""
    for _ in range(n):
        np.dot(h, w, z)
        h[0, 0] = z[0, 0] * 1e-3


@jit
def _expm1_loop(u, e, ib, n):
    for _ in range(n):
        expm1_work(u, e, ib)


def _best(f, repeats):
    best = float("inf")
    for _ in range(repeats):
        t0 = time.thread_time()
        f()
        best = min(best, time.thread_time() - t0)
    return best


def rates(dtype, repeats=5):
    """Measured rates for ``dtype``: GFLOP/s of each product kind, ns per expm1."""
    rng = np.random.default_rng(0)
    dt = np.dtype(dtype)
    out = {}
    # numba GEMV-like step (online recurrence)
    n = 3000
    h = rng.random((1, H)).astype(dt)
    w = rng.random((H, G)).astype(dt)
    z = np.zeros((1, G), dt)
    _rowdot_loop(h, w, z, 10)
    out["gemv (1xH @ HxG), numba"] = (
        2 * H * G * n / _best(lambda: _rowdot_loop(h, w, z, n), repeats)
    )
    # batch-16 recurrent step
    hb = rng.random((16, H)).astype(dt)
    zb = np.zeros((16, G), dt)
    _rowdot_loop(hb, w, zb, 10)
    n16 = 1000
    out["gemm (16xH @ HxG), numba"] = (
        2 * 16 * H * G * n16 / _best(lambda: _rowdot_loop(hb, w, zb, n16), repeats)
    )
    # frame-wide products of one sequence (input projection, W_hh gradient)
    x = rng.random((ONLINE_T, I)).astype(dt)
    wi = rng.random((I, G)).astype(dt)
    d = rng.random((G, ONLINE_T)).astype(dt)
    hs = rng.random((ONLINE_T, H)).astype(dt)
    o1 = np.empty((ONLINE_T, G), dt)
    o2 = np.empty((G, H), dt)
    flops = 2 * ONLINE_T * I * G + 2 * G * ONLINE_T * H

    def frame():
        for _ in range(50):
            np.matmul(x, wi, out=o1)
            np.matmul(d, hs, out=o2)

    out["frame-wide gemm (300 frames)"] = 50 * flops / _best(frame, repeats)
    a = rng.random((512, 512)).astype(dt)
    c = np.empty_like(a)
    out["square gemm 512"] = (
        10 * 2 * 512**3 / _best(lambda: [np.matmul(a, a, out=c) for _ in range(10)], repeats)
    )
    out = {k: v / 1e9 for k, v in out.items()}
    # nonlinearities
    u = -np.abs(rng.standard_normal(3 * H)).astype(dt)
    e = np.empty_like(u)
    ib = np.empty(3 * H, np.int64)
    _expm1_loop(u, e, ib, 10)
    m = 20000
    out["expm1, kernels (ns)"] = (
        _best(lambda: _expm1_loop(u, e, ib, m), repeats) / (m * u.size) * 1e9
    )
    big = -np.abs(rng.standard_normal(1 << 16)).astype(dt)
    eb = np.empty_like(big)
    out["exp, numpy (ns)"] = (
        _best(lambda: [np.exp(big, out=eb) for _ in range(50)], repeats) / (50 * big.size) * 1e9
    )
    return out


def ceiling(r):
    """Frames/s ceilings of the paper BLSTM (one direction per core) from rates ``r``."""
    rec = 2 * (2 * H * G)  # W_hh b(t-1) forward, W_hh^T delta(t+1) backward
    frame = 2 * (2 * I * G) + 2 * G * H  # input projection, W_ih and W_hh gradients
    head = 3 * 2 * (2 * H) * K / 2  # the output layer's three products, half per core
    exps = 5 * H
    frame_s = (frame + head) / (r["frame-wide gemm (300 frames)"] * 1e9)
    exp_s = exps * r["expm1, kernels (ns)"] * 1e-9
    online = rec / (r["gemv (1xH @ HxG), numba"] * 1e9) + frame_s + exp_s
    batch = rec / (r["gemm (16xH @ HxG), numba"] * 1e9) + frame_s + exp_s
    return {"online": 1.0 / online, "batch16": 1.0 / batch}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    for dtype in ("float32", "float64"):
        with blas_single_thread():  # as seqprop runs its products
            r = rates(dtype, args.repeats)
        print(f"\n{dtype}, one thread (best of {args.repeats}, thread CPU time)")  # noqa: T201
        for k, v in r.items():
            unit = "" if k.endswith("(ns)") else " GFLOP/s"
            print(f"  {k:34s} {v:8.2f}{unit}")  # noqa: T201
        c = ceiling(r)
        print(  # noqa: T201
            f"  paper BLSTM ceiling (one direction per core): online {c['online']:,.0f} "
            f"frames/s, batch16 {c['batch16']:,.0f} frames/s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
