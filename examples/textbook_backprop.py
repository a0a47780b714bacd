# ruff: noqa: T201  (an example script: it prints its figures)
"""Textbook back-propagation with seqprop's public API (``docs/HEADS.md``).

1. One logistic neuron trained on the squared error (a network with no hidden
   layer, ``make_network("mlp", 2, 1, 1, num_layers=0, head="squared_error",
   output_activation="logistic")``): its output, error and gradient for one
   example, and one gradient-descent step (Rumelhart, Hinton & Williams 1986).
   The error after the step is 0.3563705907; the 0.3556713466 some worked
   examples quote comes from a bias step of learning_rate * (y - t), without
   the logistic's derivative y (1 - y).
2. The same neuron trained for 80,000 steps on another example, converging
   to its target.
3. A one-hidden-layer tanh MLP with a tanh output on a small two-class
   problem: analytic gradients against central differences, then batch
   gradient descent (one update per pass, the gradient summed over the
   examples) and stochastic gradient descent (one update per example); both
   learning curves go into one figure when matplotlib is installed.

Run::

    python examples/textbook_backprop.py [--steps 80000] [--figure curves.png]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import seqprop
from seqprop.gradient_check import gradcheck
from seqprop.optim import SGD


def logistic_neuron(inputs, target):
    """The textbook neuron: weights (0.5, 0.2), bias 1.83; one example as a one-frame sequence."""
    net = seqprop.make_network(
        "mlp", 2, 1, 1, num_layers=0, head="squared_error", output_activation="logistic"
    )
    p = net.parameters()
    p["output.W"][:] = [[0.5, 0.2]]
    p["output.b"][:] = 1.83
    x = np.array(inputs, dtype=np.float64).reshape(1, 1, 2)  # (T, B, I)
    y = np.array(target, dtype=np.float64).reshape(1, 1, 1)  # (T, B, K)
    return net, x, y, np.array([1])


def one_step() -> None:
    net, x, y, lengths = logistic_neuron((0.1, 0.3), 0.03)
    p = net.parameters()
    print("1. one logistic neuron, inputs (0.1, 0.3), weights (0.5, 0.2), bias 1.83, target 0.03")
    print(f"   output            {net.predict(x, lengths)[0, 0, 0]:.9f}")
    error, grads = net.loss_and_grad(x, y, lengths)
    print(f"   error             {error:.9f}   (1/2 (y - t)^2)")
    dw1, dw2 = grads["output.W"][0]
    print(f"   dE/dw1, dE/dw2    {dw1:.9f}, {dw2:.9f}")
    print(f"   dE/db             {grads['output.b'][0]:.9f}")
    SGD(net.flat_parameters, learning_rate=0.01, momentum=0.0).step(net.flat_gradient)
    w1, w2 = p["output.W"][0]
    print(f"   after one step at learning rate 0.01: w1 = {w1:.11f}, w2 = {w2:.10f}, ", end="")
    print(f"b = {p['output.b'][0]:.10f}")
    print(f"   new error         {net.loss(x, y, lengths):.10f}")


def convergence(steps: int) -> None:
    net, x, y, lengths = logistic_neuron((0.1, 0.4), 0.7)
    opt = SGD(net.flat_parameters, learning_rate=0.01, momentum=0.0)
    start = time.perf_counter()
    for _ in range(steps):
        net.step(x, y, lengths)
        opt.step(net.flat_gradient)
    seconds = time.perf_counter() - start
    out = net.predict(x, lengths)[0, 0, 0]
    print(f"2. the same neuron, inputs (0.1, 0.4), target 0.7, {steps} steps at learning rate 0.01")
    print(f"   output {out:.9f}, |output - 0.7| = {abs(out - 0.7):.2e}  ({seconds:.1f} s)")


def two_class_problem(n=30, seed=0):
    """Two Gaussian clouds in the plane, classes coded -1 and +1, as n one-frame sequences."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    centres = np.array([[-1.0, -0.5], [1.0, 0.5]])
    points = centres[labels] + rng.normal(scale=0.8, size=(n, 2))
    targets = np.where(labels == 1, 1.0, -1.0)
    return points[None], targets[None, :, None], np.ones(n, dtype=np.int64)


def tanh_mlp():
    return seqprop.make_network(
        "mlp",
        2,
        4,
        1,
        activation="tanh",
        head="squared_error",
        output_activation="tanh",
        random_state=0,
    )


def learning_curves(epochs: int, learning_rate: float) -> dict[str, list[float]]:
    x, y, lengths = two_class_problem()
    n = lengths.size
    net = tanh_mlp()
    errors = gradcheck(net, x, y, lengths)
    print(f"3. tanh MLP (2-4-1) on {n} points of two classes")
    print(f"   gradient check: worst relative error {max(errors.values()):.1e}")
    curves = {}
    for mode in ("batch", "stochastic"):
        net = tanh_mlp()
        opt = SGD(net.flat_parameters, learning_rate=learning_rate, momentum=0.0)
        curve = [net.loss(x, y, lengths)]
        for _ in range(epochs):
            if mode == "batch":
                net.step(x, y, lengths)
                opt.step(net.flat_gradient)
            else:
                for i in range(n):
                    net.step(x[:, [i]], y[:, [i]], lengths[[i]])
                    opt.step(net.flat_gradient)
            curve.append(net.loss(x, y, lengths))
        accuracy = ((net.predict(x, lengths)[0, :, 0] > 0) == (y[0, :, 0] > 0)).mean()
        print(
            f"   {mode:10s} gradient descent: error {curve[0]:.3f} -> {curve[-1]:.3f} "
            f"after {epochs} passes ({opt.n_steps} updates), accuracy {accuracy:.2f}"
        )
        curves[mode] = curve
    return curves


def plot(curves: dict[str, list[float]], path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("   (matplotlib is not installed: no figure; pip install 'seqprop[plot]')")
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for mode, curve in curves.items():
        ax.plot(range(len(curve)), curve, label=f"{mode} gradient descent")
    ax.set_xlabel("pass over the data")
    ax.set_ylabel("error 1/2 sum (y - t)^2")
    ax.set_yscale("log")
    ax.set_title("tanh MLP on a two-class problem")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"   learning curves written to {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=80_000, help="steps of part 2")
    parser.add_argument("--epochs", type=int, default=40, help="passes of part 3")
    parser.add_argument("--learning-rate", type=float, default=0.02, help="of part 3")
    parser.add_argument("--figure", default="textbook_backprop.png", help="learning curves")
    args = parser.parse_args()
    one_step()
    convergence(args.steps)
    plot(learning_curves(args.epochs, args.learning_rate), args.figure)


if __name__ == "__main__":
    main()
