"""Optimisers acting in place on a network's flat parameter vector.

The paper trains with online gradient descent with momentum (Graves &
Schmidhuber 2005, section 5: learning rate 1e-5, momentum 0.9, one update per
sequence). With ``v`` the velocity, ``g`` the gradient and ``w`` the weights,
one step is::

    v <- momentum * v - learning_rate * g
    w <- w + v

The velocity is a vector parallel to the network's flat parameter vector, so
saving and restoring it (:meth:`SGD.state_dict`, :meth:`SGD.load_state_dict`)
makes a resumed run continue exactly where it stopped.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from seqprop.kernels._jit import jit

__all__ = ["SGD"]


@jit
def _momentum_step(w, v, g, learning_rate, momentum):  # pragma: no cover - compiled
    for i in range(w.shape[0]):
        vi = momentum * v[i] - learning_rate * g[i]
        v[i] = vi
        w[i] += vi


class SGD:
    """Stochastic gradient descent with (classical) momentum, in place.

    Parameters
    ----------
    parameters : (P,) ndarray
        The flat parameter vector (``net.flat_parameters``); updated in place.
    learning_rate : float
        Step size (> 0).
    momentum : float
        In [0, 1); 0 gives plain gradient descent.

    Attributes
    ----------
    velocity : (P,) ndarray
        The momentum term, same dtype as ``parameters``.
    n_steps : int
        Updates made so far.
    """

    def __init__(
        self, parameters: np.ndarray, learning_rate: float = 1e-5, momentum: float = 0.9
    ) -> None:
        if not isinstance(parameters, np.ndarray) or parameters.ndim != 1:
            raise ValueError("parameters must be a 1-D numpy array (the flat parameter vector)")
        if parameters.dtype.kind != "f" or not parameters.flags.c_contiguous:
            raise ValueError(
                f"parameters must be a contiguous float array, got dtype {parameters.dtype}"
            )
        if not (isinstance(learning_rate, (int, float)) and math.isfinite(learning_rate)):
            raise ValueError(f"learning_rate must be a finite number, got {learning_rate!r}")
        if learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}")
        if not (isinstance(momentum, (int, float)) and 0.0 <= momentum < 1.0):
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        self.parameters = parameters
        self.learning_rate = float(learning_rate)
        self.momentum = float(momentum)
        self.velocity = np.zeros_like(parameters)
        self.n_steps = 0

    def step(self, gradient: np.ndarray) -> None:
        """Apply one update with ``gradient`` (P,), same layout as the parameters."""
        if gradient.shape != self.parameters.shape:
            raise ValueError(
                f"gradient has shape {gradient.shape}, parameters {self.parameters.shape}"
            )
        g = np.ascontiguousarray(gradient, dtype=self.parameters.dtype)
        dt = self.parameters.dtype.type
        _momentum_step(self.parameters, self.velocity, g, dt(self.learning_rate), dt(self.momentum))
        self.n_steps += 1

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: hyper-parameters, velocity, step count."""
        return {
            "name": "sgd",
            "learning_rate": self.learning_rate,
            "momentum": self.momentum,
            "n_steps": self.n_steps,
            "velocity": self.velocity.copy(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned.

        Raises
        ------
        ValueError
            If the velocity does not match the parameter vector's shape.
        """
        velocity = np.asarray(state["velocity"])
        if velocity.shape != self.parameters.shape:
            raise ValueError(
                f"optimizer state has a velocity of shape {velocity.shape}, "
                f"the parameters have shape {self.parameters.shape}"
            )
        self.velocity[...] = velocity
        self.learning_rate = float(state.get("learning_rate", self.learning_rate))
        self.momentum = float(state.get("momentum", self.momentum))
        self.n_steps = int(state.get("n_steps", 0))
