"""Padding and batch orders, kept importable for code written against seqprop 0.1.0: see :mod:`seqprop.data.batching`."""

from seqprop.data.batching import as_rng, batch_order, pad_sequences

__all__ = ["as_rng", "batch_order", "pad_sequences"]
