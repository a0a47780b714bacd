"""Corpora turned into ``seqprop.sequences`` HDF5 datasets.

* :mod:`seqprop.corpora.timit`: the TIMIT recipe (LDC and NLTK-sample layouts),
  ``seqprop prepare timit``.
* :mod:`seqprop.corpora.synthetic`: an offline synthetic speech corpus with
  coarticulation, ``seqprop prepare synthetic`` (the demo's and the tests' data).

Both use the paper's front end, :func:`seqprop.features.mfcc` (26 features per
10 ms frame), and label each frame with the phone segment covering its centre.
"""

from __future__ import annotations

__all__ = ["generate_corpus", "prepare_timit"]


def __getattr__(name: str):
    if name == "prepare_timit":
        from seqprop.corpora.timit import prepare_timit

        return prepare_timit
    if name == "generate_corpus":
        from seqprop.corpora.synthetic import generate_corpus

        return generate_corpus
    raise AttributeError(f"module 'seqprop.corpora' has no attribute {name!r}")
