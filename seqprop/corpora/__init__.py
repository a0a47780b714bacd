"""Corpora turned into ``seqprop.sequences`` HDF5 datasets (``seqprop prepare NAME``).

Each corpus is a package holding its code and data files, and registers a
:class:`Corpus` (its command-line name, options and ``prepare``) with
:func:`register`:

* :mod:`seqprop.corpora.timit`: the TIMIT recipe (LDC and NLTK-sample layouts)
  and its phone maps, ``seqprop prepare timit``.
* :mod:`seqprop.corpora.synthetic`: an offline synthetic speech corpus with
  coarticulation, ``seqprop prepare synthetic`` (the demo's and the tests' data).

Both use the paper's front end, :func:`seqprop.features.mfcc` (26 features per
10 ms frame; Graves & Schmidhuber 2005, section 4.1), and label each frame with
the phone segment covering its centre. Their recipe scripts and documentation
are in the source tree's ``datasets/NAME/``. :mod:`seqprop.corpora.registry`
says how to add a corpus; :class:`SplitWriter` writes the splits, all or none.
"""

from __future__ import annotations

from seqprop.corpora.registry import (
    Corpus,
    CorpusRegistry,
    Prepared,
    corpora,
    get_corpus,
    register,
)
from seqprop.corpora.writer import SplitWriter

__all__ = [
    "Corpus",
    "CorpusRegistry",
    "Prepared",
    "SplitWriter",
    "corpora",
    "generate_corpus",
    "get_corpus",
    "prepare_timit",
    "register",
]


def __getattr__(name: str):
    if name == "prepare_timit":
        from seqprop.corpora.timit import prepare_timit

        return prepare_timit
    if name == "generate_corpus":
        from seqprop.corpora.synthetic import generate_corpus

        return generate_corpus
    raise AttributeError(f"module 'seqprop.corpora' has no attribute {name!r}")
