"""Optimisers acting in place on a network's flat parameter vector.

An optimiser is built on the flat parameter vector (``net.flat_parameters``)
and updates it in place: ``opt.step(gradient)`` applies one update with a
gradient laid out like the parameters (``net.flat_gradient``). The vector is
bound once, at construction, because the optimiser's state arrays (SGD's
velocity, say) run parallel to it and the network's layers are views into it;
passing it again to every step would only allow the two to disagree.

Everything an optimiser needs to continue exactly is in :meth:`Optimizer.state_dict`:
a flat mapping from names to numpy arrays (parallel to the parameters) and
numbers (hyper-parameters, the step count). A checkpoint stores it, with the
optimiser's name, as an HDF5 group whatever the optimiser
(:mod:`seqprop.checkpoint`), and :meth:`Optimizer.load_state_dict` restores
it, checking every array's shape and dtype.

The optimisers, by the name ``train.optimizer`` selects them with, are in
:data:`OPTIMIZERS`. The first is the paper's: online gradient descent with
momentum (Graves & Schmidhuber 2005, section 5: learning rate 1e-5, momentum
0.9, one update per sequence), :class:`SGD`.

Adding an optimiser is one class: subclass :class:`Optimizer`, set
:attr:`~Optimizer.name`, list its state arrays in :attr:`~Optimizer.buffers`
and its hyper-parameters in :attr:`~Optimizer.hyper_parameters`, implement
``_check_hyper_parameters``, ``_update`` and ``from_config`` (reading its
``[train]`` keys), and add the class to :data:`OPTIMIZERS`. ``state_dict``,
``load_state_dict`` and the checkpoint need no change.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from seqprop.kernels._jit import jit
from seqprop.kernels.sync import start_worker
from seqprop.products import run_elementwise

if TYPE_CHECKING:
    from seqprop.config import TrainConfig

__all__ = ["OPTIMIZERS", "SGD", "Optimizer", "make_optimizer"]


def _is_real(value: object) -> bool:
    """A finite or infinite real number, not a bool."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


class Optimizer:
    """Base class: an update rule on a flat parameter vector, with restorable state.

    Parameters
    ----------
    parameters : (P,) ndarray
        The flat parameter vector (``net.flat_parameters``): C-contiguous,
        floating point; updated in place by :meth:`step`.

    Attributes
    ----------
    parameters : (P,) ndarray
        The vector the optimiser updates.
    n_steps : int
        Updates made so far.

    Subclasses set the class attributes below; each name in :attr:`buffers`
    is an attribute holding a (P,) array of the parameters' dtype, each name
    in :attr:`hyper_parameters` an attribute holding a float.
    """

    name: ClassVar[str] = ""
    """Registry key (``train.optimizer``) and the name a checkpoint stores."""
    buffers: ClassVar[tuple[str, ...]] = ()
    """State arrays parallel to the parameters (e.g. ``("velocity",)``)."""
    hyper_parameters: ClassVar[tuple[str, ...]] = ()
    """Float hyper-parameters, saved with the state."""

    def __init__(self, parameters: np.ndarray) -> None:
        if not isinstance(parameters, np.ndarray) or parameters.ndim != 1:
            raise ValueError("parameters must be a 1-D numpy array (the flat parameter vector)")
        if parameters.dtype.kind != "f" or not parameters.flags.c_contiguous:
            raise ValueError(
                f"parameters must be a contiguous float array, got dtype {parameters.dtype}"
            )
        self.parameters = parameters
        self.n_steps = 0
        for buffer in self.buffers:
            setattr(self, buffer, np.zeros_like(parameters))

    # ------------------------------------------------------------ subclass API
    @classmethod
    def from_config(cls, parameters: np.ndarray, train: TrainConfig) -> Optimizer:
        """The optimiser for ``parameters`` with its hyper-parameters from ``[train]``."""
        raise NotImplementedError

    @staticmethod
    def _check_hyper_parameters(values: Mapping[str, float]) -> None:
        """Raise ValueError (one line, naming the value) if ``values`` are out of range."""

    def _update(self, gradient: np.ndarray) -> None:
        """Apply one update; ``gradient`` is contiguous, of the parameters' shape and dtype."""
        raise NotImplementedError

    # ------------------------------------------------------------ public API
    def step(self, gradient: np.ndarray) -> None:
        """Update :attr:`parameters` in place with ``gradient`` (P,), laid out like them.

        The gradient is converted to the parameters' dtype if needed.
        """
        if gradient.shape != self.parameters.shape:
            raise ValueError(
                f"gradient has shape {gradient.shape}, parameters {self.parameters.shape}"
            )
        self._update(np.ascontiguousarray(gradient, dtype=self.parameters.dtype))
        self.n_steps += 1

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly, as a flat mapping.

        Returns
        -------
        dict
            Each hyper-parameter (float), ``n_steps`` (int) and a copy of each
            buffer ((P,) ndarray in the parameters' dtype).
        """
        state: dict[str, Any] = {h: float(getattr(self, h)) for h in self.hyper_parameters}
        state["n_steps"] = int(self.n_steps)
        for buffer in self.buffers:
            state[buffer] = getattr(self, buffer).copy()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (hyper-parameters included).

        Numbers may be Python or numpy scalars. Nothing changes unless the
        whole state is valid.

        Raises
        ------
        ValueError
            A key missing or unknown, a buffer of another shape or dtype than
            the parameters, a number that is not one or out of range.
        """
        self._check_keys(state)
        for buffer in self.buffers:
            self._check_buffer(buffer, state[buffer])
        n_steps = state["n_steps"]
        if not (isinstance(n_steps, (int, np.integer)) and _is_real(n_steps) and n_steps >= 0):
            raise ValueError(
                f"{self.name} optimizer state: 'n_steps' must be an integer >= 0, got {n_steps!r}"
            )
        for h in self.hyper_parameters:
            if not _is_real(state[h]):
                raise ValueError(
                    f"{self.name} optimizer state: {h!r} must be a number, got {state[h]!r}"
                )
        hyper = {h: float(state[h]) for h in self.hyper_parameters}
        self._check_hyper_parameters(hyper)
        for h, value in hyper.items():
            setattr(self, h, value)
        for buffer in self.buffers:
            getattr(self, buffer)[...] = state[buffer]
        self.n_steps = int(n_steps)

    def _check_keys(self, state: Mapping[str, Any]) -> None:
        expected = {*self.hyper_parameters, "n_steps", *self.buffers}
        problems = []
        if missing := sorted(expected - set(state)):
            problems.append(f"missing {', '.join(missing)}")
        if unknown := sorted(map(str, set(state) - expected)):
            problems.append(f"unknown {', '.join(unknown)}")
        if problems:
            raise ValueError(f"{self.name} optimizer state: {'; '.join(problems)}")

    def _check_buffer(self, buffer: str, value: Any) -> None:
        p = self.parameters
        if isinstance(value, np.ndarray) and value.shape == p.shape and value.dtype == p.dtype:
            return
        got = (
            f"{value.dtype} array of shape {value.shape}"
            if isinstance(value, np.ndarray)
            else type(value).__name__
        )
        raise ValueError(
            f"{self.name} optimizer state: {buffer!r} must be a {p.dtype} array of shape "
            f"{p.shape} like the parameters, got {got}"
        )


# ---------------------------------------------------------------- SGD
@jit
def _momentum_step(
    w, v, g, learning_rate, momentum, launch_flags, launch_idx, launch_value
):  # pragma: no cover - compiled
    """One SGD step on (a share of) the vectors; ``launch_*``: :func:`run_elementwise`."""
    start_worker(launch_flags, launch_idx, launch_value)
    for i in range(w.shape[0]):
        vi = momentum * v[i] - learning_rate * g[i]
        v[i] = vi
        w[i] += vi


class SGD(Optimizer):
    """Stochastic gradient descent with (classical) momentum, in place.

    With ``v`` the velocity, ``g`` the gradient and ``w`` the weights, one
    step is (Graves & Schmidhuber 2005, section 5)::

        v <- momentum * v - learning_rate * g
        w <- w + v

    computed in the parameters' dtype, entry by entry (from
    :data:`~seqprop.products.SPLIT_MIN_BYTES` of parameters, half of the entries
    on each of seqprop's two threads: the same result).

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

    name = "sgd"
    buffers = ("velocity",)
    hyper_parameters = ("learning_rate", "momentum")

    def __init__(
        self, parameters: np.ndarray, learning_rate: float = 1e-5, momentum: float = 0.9
    ) -> None:
        self._check_hyper_parameters({"learning_rate": learning_rate, "momentum": momentum})
        super().__init__(parameters)
        self.learning_rate = float(learning_rate)
        self.momentum = float(momentum)

    @classmethod
    def from_config(cls, parameters: np.ndarray, train: TrainConfig) -> SGD:
        """``train.learning_rate`` and ``train.momentum``."""
        return cls(parameters, learning_rate=train.learning_rate, momentum=train.momentum)

    @staticmethod
    def _check_hyper_parameters(values: Mapping[str, float]) -> None:
        learning_rate, momentum = values["learning_rate"], values["momentum"]
        if not (_is_real(learning_rate) and math.isfinite(learning_rate)):
            raise ValueError(f"learning_rate must be a finite number, got {learning_rate!r}")
        if learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}")
        if not (_is_real(momentum) and 0.0 <= momentum < 1.0):
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")

    def _update(self, gradient: np.ndarray) -> None:
        dt = self.parameters.dtype.type
        run_elementwise(
            _momentum_step,
            (self.parameters, self.velocity, gradient),
            (dt(self.learning_rate), dt(self.momentum)),
        )


# ---------------------------------------------------------------- registry
OPTIMIZERS: Mapping[str, type[Optimizer]] = MappingProxyType({cls.name: cls for cls in (SGD,)})
"""The optimisers ``train.optimizer`` can name, by name (read-only)."""


def make_optimizer(parameters: np.ndarray, train: TrainConfig) -> Optimizer:
    """The optimiser ``train.optimizer`` names, on ``parameters``, configured from ``train``.

    Raises
    ------
    ValueError
        Unknown optimiser name, or hyper-parameters out of range.
    """
    cls = OPTIMIZERS.get(train.optimizer)
    if cls is None:
        raise ValueError(
            f"unknown optimizer {train.optimizer!r}; choices: {', '.join(sorted(OPTIMIZERS))}"
        )
    return cls.from_config(parameters, train)
