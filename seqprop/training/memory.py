"""Memory a training run needs, estimated before anything is allocated.

A model configured far too large (``model.hidden_size = 1000000``) must be
refused with one line naming the key and the estimate, not end in numpy's
allocation error (or in swapping). :func:`estimate_training_bytes` counts

* the parameters, their gradient, the optimiser's state (one vector per
  parameter for SGD's momentum) and the kept best weights: 4 vectors of P
  numbers in the network's dtype (Graves & Schmidhuber 2005, section 5:
  momentum SGD keeping the best-on-validation weights);
* the activations the forward pass keeps for backpropagation through time,
  for the longest training sequence times ``train.batch_size`` (the largest
  batch), and the gradients flowing back through them: per frame, per
  direction, about 8 numbers per LSTM block (four gates, cell, squashed
  cell, output, their gradients), 3 per recurrent or dense unit, plus the
  MLP's input window and the output layer.

The figures are an estimate within a small factor: enough to tell a run that
fits from one that needs terabytes. :func:`check_fits` compares it with the
memory the system reports available (``MemAvailable`` in ``/proc/meminfo``,
else ``os.sysconf``) and refuses only when the estimate exceeds it.
"""

from __future__ import annotations

from typing import Any

from seqprop.data.reader import available_memory
from seqprop.errors import ConfigError

__all__ = ["available_memory", "check_fits", "estimate_training_bytes", "format_bytes"]

_VECTORS_PER_PARAMETER = 4  # parameters, gradient, optimiser state, best weights
_PER_UNIT_FRAME = {"lstm": 8, "blstm": 8, "rnn": 3, "brnn": 3, "mlp": 3}


def _parameter_count(model: Any, input_size: int, num_classes: int) -> int:
    """Weights of the network ``model`` (a ModelConfig) describes, without building it."""
    h = int(model.hidden_size)
    dirs = 2 if model.kind in ("blstm", "brnn") else 1
    size = input_size * (2 * int(model.window) + 1) if model.kind == "mlp" else input_size
    total = 0
    for _ in range(int(model.num_layers)):
        if model.kind in ("lstm", "blstm"):
            per = 4 * h * (size + h + 1) + 3 * h  # gates' weights and biases, peepholes
        elif model.kind in ("rnn", "brnn"):
            per = h * (size + h + 1)
        else:
            per = h * (size + 1)
        total += dirs * per
        size = dirs * h
    return total + num_classes * (size + 1)


def estimate_training_bytes(
    model: Any, train: Any, *, input_size: int, num_classes: int, longest: int
) -> int:
    """Bytes a run of ``model`` / ``train`` (the config sections) needs, estimated.

    ``longest`` is the longest training sequence in frames (before the target
    delay, which is added here).
    """
    itemsize = 4 if model.dtype == "float32" else 8
    p = _parameter_count(model, input_size, num_classes)
    h = int(model.hidden_size)
    dirs = 2 if model.kind in ("blstm", "brnn") else 1
    frames = (int(longest) + int(model.delay)) * int(train.batch_size)
    per_frame = int(model.num_layers) * dirs * h * _PER_UNIT_FRAME[model.kind]
    if model.kind == "mlp":
        per_frame += 2 * input_size * (2 * int(model.window) + 1)
    per_frame += 3 * num_classes + 2 * input_size
    return itemsize * (_VECTORS_PER_PARAMETER * p + frames * per_frame)


def format_bytes(n: float) -> str:
    """``1.5 GiB``-style text."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def check_fits(
    model: Any,
    train: Any,
    *,
    input_size: int,
    num_classes: int,
    longest: int,
    available: int | None = None,
) -> int:
    """The estimate; :class:`ConfigError` naming the key when it exceeds available memory.

    ``available`` defaults to :func:`available_memory` (nothing is refused
    when it is unknown).
    """
    need = estimate_training_bytes(
        model, train, input_size=input_size, num_classes=num_classes, longest=longest
    )
    if available is None:
        available = available_memory()
    if available is None or need <= available:
        return need
    window_heavy = model.kind == "mlp" and 2 * int(model.window) + 1 > int(model.hidden_size)
    key = "model.window" if window_heavy else "model.hidden_size"
    value = model.window if window_heavy else model.hidden_size
    raise ConfigError(
        f"{key} = {value}: training would need about {format_bytes(need)} of memory "
        f"(weights, gradient, optimiser state and activations for the longest training "
        f"sequence of {longest} frames x train.batch_size {train.batch_size}), more than "
        f"the {format_bytes(available)} available"
    )
