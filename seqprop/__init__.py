"""seqprop: recurrent sequence classifiers trained with backpropagation through time.

A faithful implementation of the networks of Graves & Schmidhuber (2005),
"Framewise phoneme classification with bidirectional LSTM and other neural
network architectures", Neural Networks 18:602-610: LSTM with forget gates and
peepholes, bidirectional LSTM, plain and bidirectional RNNs and time-window
MLPs, with full or truncated BPTT gradients computed in numba kernels.

The public names are imported lazily so that ``import seqprop`` (and the
``seqprop`` command) stays fast; numba kernels compile on first use.
"""

from __future__ import annotations

import importlib

from seqprop.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    GradientCheckError,
    SeqpropError,
)

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "make_network": "seqprop.network",
    "Network": "seqprop.network",
    "gradcheck": "seqprop.gradient_check",
    "write_dataset": "seqprop.data",
    "open_dataset": "seqprop.data",
    "SequenceDataset": "seqprop.data",
    "compute_normalisation": "seqprop.data",
    "prepare_timit": "seqprop.corpora.timit",
    "generate_corpus": "seqprop.corpora.synthetic",
    "set_num_threads": "seqprop._parallel",
    "Trainer": "seqprop.training",
    "train": "seqprop.training",
}

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "GradientCheckError",
    "SeqpropError",
    "__version__",
    *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'seqprop' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
