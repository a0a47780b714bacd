"""Output heads (``docs/HEADS.md``): the part of a network specific to its kind of output.

``make_network(..., head=NAME)`` puts the head registered as ``NAME`` on top of
the hidden layers. Registered today:

``softmax``
    :class:`~seqprop.heads.softmax.SoftmaxHead`, framewise classification
    (the paper's).
``sequence``
    :class:`~seqprop.heads.sequence.SequenceHead`, one class per sequence
    from the top hidden layer pooled over time.
``logistic``
    :class:`~seqprop.heads.logistic.LogisticHead`, K independent logistic
    outputs per frame (multi-label, binary cross-entropy).
``squared_error``
    :class:`~seqprop.heads.squared_error.SquaredErrorHead`, K real outputs
    per frame (regression, sum-of-squares error).

A new head is one class: see :mod:`seqprop.heads.base` and ``docs/ARCHITECTURE.md``.
"""

from seqprop.heads.base import HEADS, Head, StepResult, TargetKind, get_head, register_head
from seqprop.heads.logistic import LogisticHead
from seqprop.heads.sequence import SequenceHead
from seqprop.heads.softmax import SoftmaxHead
from seqprop.heads.squared_error import SquaredErrorHead

__all__ = [
    "HEADS",
    "Head",
    "LogisticHead",
    "SequenceHead",
    "SoftmaxHead",
    "SquaredErrorHead",
    "StepResult",
    "TargetKind",
    "get_head",
    "register_head",
]
