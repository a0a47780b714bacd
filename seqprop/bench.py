"""Training-throughput measurement of seqprop's networks (``seqprop bench``).

Frames per second of a training step: one :meth:`Network.loss_and_grad` and
the paper's SGD-with-momentum update (:class:`seqprop.optim.SGD`), on random
data shaped like TIMIT features (26 inputs, 61 classes). ``online`` is one
300-frame sequence per update (the paper's training); ``batch16`` is batches
of 16 sequences of 100-500 frames, padded. The full comparison with PyTorch,
memory and cold start is ``benchmarks/bench_speed.py``, which uses these
functions.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

PAPER_SIZES = {"blstm": 93, "lstm": 140, "brnn": 185, "rnn": 275, "mlp": 250}
"""Hidden units per direction of the paper's nets (about 100k weights each)."""
MLP_WINDOW = 10
MODES = ("online", "batch16")
LEARNING_RATE = 1e-5
MOMENTUM = 0.9


def make_online_data(dtype, input_size=26, num_classes=61, length=300, seed=0):
    """One sequence of ``length`` frames: x (T, 1, I), y (T, 1), lengths (1,)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((length, 1, input_size)).astype(dtype)
    y = rng.integers(0, num_classes, size=(length, 1))
    return x, y, np.array([length])


def make_batches(
    dtype,
    input_size=26,
    num_classes=61,
    batch_size=16,
    min_length=100,
    max_length=500,
    n_batches=4,
    seed=0,
):
    """``n_batches`` padded batches (x (T, B, I), y (T, B), lengths (B,)), lengths uniform.

    T is each batch's longest sequence; padding is zero in x and -1 in y.
    """
    rng = np.random.default_rng(seed)
    batches = []
    for _ in range(n_batches):
        lengths = rng.integers(min_length, max_length + 1, size=batch_size)
        T = int(lengths.max())
        x = rng.standard_normal((T, batch_size, input_size)).astype(dtype)
        y = rng.integers(0, num_classes, size=(T, batch_size))
        pad = np.arange(T)[:, None] >= lengths[None, :]
        x[pad] = 0.0
        y[pad] = -1
        batches.append((x, y, lengths))
    return batches


def training_step(net, batches) -> Callable[[], None]:
    """A step function cycling through ``batches``: ``loss_and_grad`` + momentum update."""
    from seqprop.optim import SGD

    opt = SGD(net.flat_parameters, LEARNING_RATE, MOMENTUM)
    state = {"i": 0}

    def step() -> None:
        x, y, lengths = batches[state["i"]]
        state["i"] = (state["i"] + 1) % len(batches)
        net.loss_and_grad(x, y, lengths)
        opt.step(net.flat_gradient)

    return step


def measure(step: Callable[[], None], frames_per_step: float, seconds: float) -> float:
    """Frames per second of ``step`` run repeatedly for at least ``seconds`` (>= 1 step)."""
    n = 0
    t0 = time.perf_counter()
    while True:
        step()
        n += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            break
    return n * frames_per_step / elapsed


def throughput(kind, dtype="float64", mode="online", *, hidden_size=None, seconds=1.0, repeats=3):
    """Median training frames/s of the paper's ``kind`` net (warm: compiled first).

    Returns
    -------
    dict
        ``kind``, ``dtype``, ``mode``, ``parameters``, ``frames_per_s`` (median)
        and ``runs`` (every repeat).
    """
    from seqprop.network import make_network

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    hidden = hidden_size or PAPER_SIZES[kind]
    window = MLP_WINDOW if kind == "mlp" else 0
    net = make_network(kind, 26, hidden, 61, window=window, dtype=dtype, random_state=0)
    batches = [make_online_data(dtype)] if mode == "online" else make_batches(dtype)
    frames = float(np.mean([b[2].sum() for b in batches]))
    step = training_step(net, batches)
    step()  # compile / warm up
    runs = [measure(step, frames, seconds) for _ in range(repeats)]
    return {
        "kind": kind,
        "dtype": dtype,
        "mode": mode,
        "parameters": net.num_parameters,
        "frames_per_s": float(np.median(runs)),
        "runs": runs,
    }
