"""Output heads (``docs/HEADS.md``): the part of a network specific to its kind of output.

``make_network(..., head=NAME)`` puts the head registered as ``NAME`` on top of
the hidden layers. Registered:

``softmax``
    :class:`~seqprop.heads.softmax.SoftmaxHead`, framewise classification
    (the paper's).
``sequence``
    :class:`~seqprop.heads.sequence.SequenceHead`, one class per sequence.
``logistic``
    :class:`~seqprop.heads.logistic.LogisticHead`, multi-label per frame.
``squared_error``
    :class:`~seqprop.heads.squared_error.SquaredErrorHead`, regression per frame.
``ctc``
    :class:`~seqprop.heads.ctc.CTCHead`, label sequences without alignment (CTC).

A new head is one class: see :mod:`seqprop.heads.base` and ``docs/ARCHITECTURE.md``.
"""

from seqprop.heads.base import HEADS, Head, StepResult, TargetKind, get_head, register_head
from seqprop.heads.ctc import CTCHead
from seqprop.heads.logistic import LogisticHead
from seqprop.heads.sequence import SequenceHead
from seqprop.heads.softmax import SoftmaxHead
from seqprop.heads.squared_error import SquaredErrorHead

__all__ = [
    "HEADS",
    "CTCHead",
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
