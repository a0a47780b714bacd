"""The named choices of seqprop's networks and training, each defined once.

Every module that accepts one of these (``make_network``, the layers, the
kernels' code tables, the configuration, the command line) takes its choices
from here, so a new choice is added in one place. The members are
:class:`enum.StrEnum` values: they compare equal to their strings, which is
what configurations and specs store.
"""

from __future__ import annotations

import enum

__all__ = [
    "ACTIVATIONS",
    "CLASS_WEIGHTINGS",
    "DTYPES",
    "GRADIENTS",
    "KINDS",
    "REDUCTIONS",
    "SQUASHES",
    "Activation",
    "ClassWeighting",
    "DType",
    "Gradient",
    "Kind",
    "Reduction",
    "Squash",
]


class Kind(enum.StrEnum):
    """Network architectures (Graves & Schmidhuber 2005, section 4)."""

    BLSTM = "blstm"
    LSTM = "lstm"
    BRNN = "brnn"
    RNN = "rnn"
    MLP = "mlp"

    @property
    def bidirectional(self) -> bool:
        return self in (Kind.BLSTM, Kind.BRNN)

    @property
    def lstm(self) -> bool:
        return self in (Kind.BLSTM, Kind.LSTM)


class Gradient(enum.StrEnum):
    """Full BPTT, or the original LSTM's truncated gradient (``docs/EQUATIONS.md``)."""

    FULL = "full"
    TRUNCATED = "truncated"


class Squash(enum.StrEnum):
    """LSTM cell input/output squashing: tanh, or the 2005 paper's 4 logistic(x) - 2."""

    TANH = "tanh"
    LOGISTIC2 = "logistic2"


class Activation(enum.StrEnum):
    """Hidden units of the plain recurrent layers and the MLP."""

    TANH = "tanh"
    LOGISTIC = "logistic"


class ClassWeighting(enum.StrEnum):
    """Class weights of the softmax head's error (``docs/HEADS.md`` section 3.1): none,
    or inversely proportional to each class's training-set frequency (mean 1 per frame)."""

    NONE = "none"
    INVERSE_FREQUENCY = "inverse_frequency"


class DType(enum.StrEnum):
    """Arithmetic precision of a network."""

    FLOAT32 = "float32"
    FLOAT64 = "float64"


class Reduction(enum.StrEnum):
    """How a batch's loss is reduced: the paper's sum, or the mean per scored unit."""

    SUM = "sum"
    MEAN = "mean"


def _values(choices: type[enum.StrEnum]) -> tuple[str, ...]:
    return tuple(c.value for c in choices)


KINDS = _values(Kind)
GRADIENTS = _values(Gradient)
SQUASHES = _values(Squash)
ACTIVATIONS = _values(Activation)
CLASS_WEIGHTINGS = _values(ClassWeighting)
DTYPES = _values(DType)
REDUCTIONS = _values(Reduction)
