"""seqprop's input pipeline: HDF5 datasets of variable-length labelled sequences.

File format ``seqprop.sequences``, version 1 (``docs/FORMAT.md`` describes it
in full). One HDF5 file holds one split at its root, or several splits, each
in its own group (e.g. ``/train``, ``/validation``, ``/test``). A split stores
its sequences back to back, so a dataset of any size streams sequence by
sequence:

* ``inputs`` (N_frames, I) float32 (any float accepted), the features;
* ``targets`` (N_frames,) int16/int32 (any integer accepted), the class per
  frame, ``-1`` = unlabelled;
* ``seq_lengths`` (N,) int64, frames per sequence (offsets = cumsum);
* ``seq_tags`` (N,) utf-8 str, utterance ids;
* attributes ``format = "seqprop.sequences"``, ``format_version = 1``,
  ``class_names`` (K,), and optionally ``feature_names`` (I,), ``source``,
  and the normalisation statistics ``mean``, ``std`` (I,) float64.

Opening validates everything (structure, then values in blocks, so a file
larger than memory validates without being loaded); each failure raises
:class:`seqprop.errors.DataError` naming the file, the dataset and the first
offending sequence.

The modules, one job each:

* :mod:`~seqprop.data.schema`: the format's constants and the rules a file must follow;
* :mod:`~seqprop.data.reader`: :func:`open_dataset`, :class:`SequenceDataset`,
  :func:`list_groups` (streamed or in memory);
* :mod:`~seqprop.data.writer`: :func:`write_dataset` (atomic);
* :mod:`~seqprop.data.labels`: the optional label sequences (``labels``,
  ``label_lengths``; the ``ctc`` head's targets): checked, read whole, written;
* :mod:`~seqprop.data.normalise`: :func:`compute_normalisation`, checking
  and applying statistics;
* :mod:`~seqprop.data.batching`: :func:`pad_sequences` (the one padding),
  :func:`batch_order`, :class:`Batch`;
* :mod:`~seqprop.data.pipeline`: what training, evaluation and prediction
  share: :class:`Preprocessor` (normalisation in the network's dtype, target
  delay), :class:`PreparedSplit` (padded batches of preprocessed sequences).

Shape legend: N = sequences, T = frames of one sequence (or of the longest in a
batch), B = sequences in a batch, I = input features, K = classes.
"""

from seqprop.data.batching import Batch, as_rng, batch_order, pad_sequences
from seqprop.data.labels import LabelSequences
from seqprop.data.normalise import (
    apply_normalisation,
    check_statistics,
    compute_normalisation,
    normalisation_pair,
)
from seqprop.data.pipeline import (
    PreparedSplit,
    Preprocessor,
    check_dataset_matches,
    delay_sequence,
    open_split,
    same_split,
    sequence_where,
    split_spec,
)
from seqprop.data.reader import SequenceDataset, list_groups, open_dataset
from seqprop.data.schema import (
    BLOCK_BYTES,
    CHUNK_BYTES,
    CHUNK_CACHE_BYTES,
    CHUNK_CACHE_SLOTS,
    FORMAT,
    FORMAT_VERSION,
    REQUIRED_DATASETS,
)
from seqprop.data.writer import write_dataset

__all__ = [
    "BLOCK_BYTES",
    "CHUNK_BYTES",
    "CHUNK_CACHE_BYTES",
    "CHUNK_CACHE_SLOTS",
    "FORMAT",
    "FORMAT_VERSION",
    "REQUIRED_DATASETS",
    "Batch",
    "LabelSequences",
    "PreparedSplit",
    "Preprocessor",
    "SequenceDataset",
    "apply_normalisation",
    "as_rng",
    "batch_order",
    "check_dataset_matches",
    "check_statistics",
    "compute_normalisation",
    "delay_sequence",
    "list_groups",
    "normalisation_pair",
    "open_dataset",
    "open_split",
    "pad_sequences",
    "same_split",
    "sequence_where",
    "split_spec",
    "write_dataset",
]
