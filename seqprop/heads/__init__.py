"""Output heads (``docs/HEADS.md``): the part of a network specific to its kind of output.

``make_network(..., head=NAME)`` puts the head registered as ``NAME`` on top of
the hidden layers. Registered today:

``softmax``
    :class:`~seqprop.heads.softmax.SoftmaxHead`, framewise classification
    (the paper's).

A new head is one class: see :mod:`seqprop.heads.base` and ``docs/ARCHITECTURE.md``.
"""

from seqprop.heads.base import HEADS, Head, StepResult, get_head, register_head
from seqprop.heads.softmax import SoftmaxHead

__all__ = ["HEADS", "Head", "SoftmaxHead", "StepResult", "get_head", "register_head"]
