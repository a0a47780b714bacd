"""HDF5 datasets of variable-length labelled sequences.

File format ``seqprop.sequences``, version 1
============================================

One HDF5 file holds one split at its root, or several splits, each in its own
group (e.g. ``/train``, ``/validation``, ``/test``). Sequences are stored back
to back (concatenated along the frame axis, as in RNNLIB's netCDF files), so a
dataset of any size can be streamed sequence by sequence. Any program (h5py,
MATLAB, C, ...) that writes the following opens in seqprop:

=============================  =========================  ======================================
name                           dtype, shape               meaning
=============================  =========================  ======================================
``inputs`` (dataset)           float32, (N_frames, I)     features, sequences back to back
``targets`` (dataset)          int16/int32, (N_frames,)   class per frame, ``-1`` = unlabelled
``seq_lengths`` (dataset)      int64, (N_seqs,)           frames per sequence (offsets = cumsum)
``seq_tags`` (dataset)         utf-8 str, (N_seqs,)       utterance ids, e.g. ``dr1/fcjf0/sx1``
``format`` (attr)              utf-8 str, scalar          required: ``"seqprop.sequences"``
``format_version`` (attr)      integer, scalar            required: ``1``
``class_names`` (attr)         utf-8 str, (K,)            required: one name per class, K >= 1
``feature_names`` (attr)       utf-8 str, (I,)            optional: one name per input feature
``source`` (attr)              utf-8 str, scalar          optional: where the data came from
``mean``, ``std`` (attrs)      float64, (I,)              optional: normalisation (std > 0)
=============================  =========================  ======================================

The attributes sit on the split's group (the root group for a one-split file).
What a reader accepts, beyond what :func:`write_dataset` writes:

* ``inputs`` of any floating dtype (float16/32/64, either byte order); read as
  float32, so values must be finite in float32;
* ``targets`` of any integer dtype (written as int16 when K < 32767, int32
  otherwise); read as int32;
* ``seq_lengths`` of any integer dtype;
* strings (``seq_tags``, ``class_names``, ``feature_names``, ``source``,
  ``format``) as variable-length utf-8 or ASCII strings, or fixed-length byte
  strings (utf-8, trailing NULs stripped); scalar attributes may also be
  stored as one-element arrays (as MATLAB does);
* any storage layout: contiguous, chunked, compressed.

Shapes are given in C (row-major) order, as h5py and the HDF5 C API show
them. MATLAB and Fortran list dimensions the other way round: from MATLAB,
write ``inputs`` as an I-by-N_frames matrix (the transpose of the natural
layout there) so that it reads back as (N_frames, I).

:func:`write_dataset` writes ``inputs`` contiguously by default: a sequence
is then one contiguous byte range, read straight into memory without a chunk
index or chunk cache; the file is written once and never grows, which is what
chunking would be for; and speech features barely compress (random-looking
float mantissas; gzip saves under 10 %), while compressed chunks make every
random read decompress whole chunks. ``chunks=`` and ``compression=`` are
there for those who want them.

``mean`` and ``std`` are the statistics a reader should use to normalise the
inputs, ``(x - mean) / std`` (usually computed on the training split with
:func:`compute_normalisation`); the stored ``inputs`` are *not* normalised by
them. :func:`open_dataset` applies them only when asked (``normalise=True``).

Validation on open (``DESIGN.md`` section 4): the file exists and is HDF5;
every required name is present; dtypes and shapes agree (``inputs`` is
(N_frames, I) with I >= 1, ``targets`` is (N_frames,), ``seq_lengths`` and
``seq_tags`` are (N_seqs,) with N_seqs >= 1); every sequence has at least one
frame; ``sum(seq_lengths) == N_frames``; every target is in ``[-1, K)``; no
input is NaN or infinite; ``format`` and ``format_version`` are known; the
optional attributes have the right lengths (``std > 0``). The checks over the
big arrays run in blocks, so a file larger than memory validates without
being loaded whole. Every failure raises :class:`seqprop.errors.DataError`
naming the file, the dataset and the first offending sequence (index and tag).

Shape legend: N = sequences, T = frames of one sequence (or of the longest in a
batch), B = sequences in a batch, I = input features, K = classes.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import pathlib
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from seqprop.batching import as_rng, batch_order
from seqprop.errors import DataError

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "Batch",
    "SequenceDataset",
    "compute_normalisation",
    "list_groups",
    "open_dataset",
    "write_dataset",
]

logger = logging.getLogger(__name__)

FORMAT = "seqprop.sequences"
FORMAT_VERSION = 1

REQUIRED_DATASETS = ("inputs", "targets", "seq_lengths", "seq_tags")

#: Bytes read per block when scanning or streaming whole arrays.
BLOCK_BYTES = 8 << 20
#: HDF5 raw-data chunk cache per open dataset (bytes, hash slots).
CHUNK_CACHE_BYTES = 64 << 20
CHUNK_CACHE_SLOTS = 100_003
#: Default chunk size (bytes) of ``inputs`` when written chunked.
CHUNK_BYTES = 1 << 20


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def _h5py():
    import h5py

    return h5py


def _decode_one(value: Any, where: str) -> str:
    if isinstance(value, np.ndarray) and value.shape in ((), (1,)):
        value = value.reshape(-1)[0]
    if isinstance(value, bytes | np.bytes_):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"{where} is not valid utf-8 ({exc})") from None
    if isinstance(value, str):
        return str(value)
    raise DataError(f"{where} must be a string, got {type(value).__name__}")


def _decode_strings(value: Any, where: str) -> list[str]:
    """Decode a 1-D array (or list) of strings stored in any of the accepted ways."""
    arr = value if isinstance(value, np.ndarray) else np.asarray(value, dtype=object)
    if arr.ndim != 1:
        raise DataError(f"{where} must be a 1-D array of strings, got shape {arr.shape}")
    if arr.dtype.kind not in "OSU":
        raise DataError(f"{where} must hold strings, got dtype {arr.dtype}")
    return [_decode_one(v, f"{where}[{i}]") for i, v in enumerate(arr.tolist())]


def _scalar(value: Any) -> Any:
    """A scalar attribute, accepting one-element arrays."""
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise ValueError(f"expected a single value, got shape {value.shape}")
        return value.reshape(-1)[0]
    return value


def _tag_text(tags: Sequence[str] | None, i: int) -> str:
    if tags is not None and 0 <= i < len(tags):
        return f"sequence {i} (tag {tags[i]!r})"
    return f"sequence {i}"


def _block_rows(dset: Any, row_bytes: int) -> int:
    rows = max(1, BLOCK_BYTES // max(1, row_bytes))
    chunks = getattr(dset, "chunks", None)
    if chunks:
        rows = max(chunks[0], (rows // chunks[0]) * chunks[0])
    return rows


@dataclass
class Batch:
    """A padded, time-major batch of sequences.

    Attributes
    ----------
    x : (T, B, I) float32 ndarray
        Inputs, zeros past each sequence's length.
    y : (T, B) int32 ndarray
        Targets, -1 past each sequence's length (and on unlabelled frames).
    lengths : (B,) int64 ndarray
        Frames of each sequence.
    indices : (B,) int64 ndarray
        Index of each sequence in the dataset.
    """

    x: np.ndarray
    y: np.ndarray
    lengths: np.ndarray
    indices: np.ndarray

    @property
    def batch_size(self) -> int:
        """B, the number of sequences."""
        return int(self.lengths.shape[0])

    @property
    def n_frames(self) -> int:
        """Frames in the batch, padding excluded."""
        return int(self.lengths.sum())


# ---------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------


class SequenceDataset:
    """A validated split of an HDF5 sequence file (see the module docstring).

    Made by :func:`open_dataset`. With ``in_memory=False`` the file stays open
    and each sequence's slice is read on demand; with ``in_memory=True`` the
    inputs and targets are read once and the file is closed. Both serve the
    same values. Use as a context manager, or call :meth:`close`.

    Attributes
    ----------
    path : pathlib.Path
    group : str or None
        The split's group in the file, None for a one-split file.
    lengths : (N,) int64 ndarray
    offsets : (N + 1,) int64 ndarray
        Frame offset of each sequence's start; ``offsets[-1] == n_frames``.
    tags : list of str
    class_names : list of str
    feature_names : list of str or None
    source : str or None
    mean, std : (I,) float64 ndarray or None
        Normalisation statistics stored in the file.
    normalisation : tuple of two (I,) float32 ndarrays, or None
        The (mean, std) applied to every input read, if any.
    input_size, num_classes, n_frames : int
    in_memory : bool
    """

    def __init__(self) -> None:  # filled in by open_dataset
        self.path: pathlib.Path
        self.group: str | None = None
        self.lengths: np.ndarray
        self.offsets: np.ndarray
        self.tags: list[str]
        self.class_names: list[str]
        self.feature_names: list[str] | None = None
        self.source: str | None = None
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None
        self.normalisation: tuple[np.ndarray, np.ndarray] | None = None
        self.input_size: int = 0
        self.num_classes: int = 0
        self.n_frames: int = 0
        self.in_memory: bool = False
        self._file = None
        self._inputs = None  # h5py.Dataset or ndarray
        self._targets = None
        self._inputs_name = "inputs"
        self._targets_name = "targets"

    # -- basic protocol -------------------------------------------------------

    def __len__(self) -> int:
        return int(self.lengths.shape[0])

    def __repr__(self) -> str:
        where = f"{self.path}" + (f" group {self.group!r}" if self.group else "")
        mode = "in memory" if self.in_memory else "streamed"
        return (
            f"<SequenceDataset {where}: {len(self)} sequences, {self.n_frames} frames, "
            f"{self.input_size} inputs, {self.num_classes} classes, {mode}>"
        )

    def __enter__(self) -> SequenceDataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file (a no-op when already closed or in memory)."""
        if self._file is not None:
            with contextlib.suppress(Exception):
                self._file.close()
            self._file = None
            if not self.in_memory:
                self._inputs = self._targets = None

    @property
    def closed(self) -> bool:
        """True once the dataset can no longer read (streamed and closed)."""
        return self._inputs is None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        if not self.in_memory:
            state["_file"] = state["_inputs"] = state["_targets"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if not self.in_memory:  # reopen without re-validating
            self._open_file()

    # -- low-level reads ------------------------------------------------------

    def _where(self, name: str) -> str:
        full = f"{self.group}/{name}" if self.group else name
        return f"{self.path}: dataset '/{full.lstrip('/')}'"

    def _open_file(self) -> None:
        f = _open_h5(self.path)
        root = f[self.group] if self.group else f
        self._file = f
        self._inputs = root["inputs"]
        self._targets = root["targets"]

    def _check_open(self) -> None:
        if self._inputs is None:
            raise DataError(f"{self.path}: the dataset is closed")

    def _read_frames(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Inputs (stop-start, I) float32 and targets (stop-start,) int32 of a frame range."""
        self._check_open()
        if self.in_memory:
            x = self._inputs[start:stop].copy()
            y = self._targets[start:stop].copy()
        else:
            try:
                x = self._inputs[start:stop]
                y = self._targets[start:stop]
            except (OSError, RuntimeError, ValueError) as exc:
                raise DataError(
                    f"{self._where('inputs')}: cannot read frames {start}:{stop} ({exc})"
                ) from None
            if x.dtype != np.float32:
                x = x.astype(np.float32)
            if y.dtype != np.int32:
                y = y.astype(np.int32)
        if self.normalisation is not None:
            mean, std = self.normalisation
            x -= mean
            x /= std
        return x, y

    def _index(self, i: Any) -> int:
        if isinstance(i, bool) or not isinstance(i, int | np.integer):
            raise TypeError(f"sequence index must be an integer, got {type(i).__name__}")
        n = len(self)
        j = int(i)
        if j < 0:
            j += n
        if not 0 <= j < n:
            raise IndexError(f"sequence index {i} out of range for {n} sequences")
        return j

    # -- public access --------------------------------------------------------

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Sequence ``i``: inputs (T, I) float32 and targets (T,) int32 (fresh arrays)."""
        j = self._index(i)
        return self._read_frames(int(self.offsets[j]), int(self.offsets[j + 1]))

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (x (T, I) float32, y (T,) int32) for every sequence in file order.

        Streams: consecutive sequences are read in blocks of about
        ``BLOCK_BYTES`` (one read per block), never the whole file.
        """
        n = len(self)
        max_frames = max(1, BLOCK_BYTES // (4 * max(1, self.input_size)))
        i = 0
        while i < n:
            # extend the block while it stays under max_frames (always >= 1 sequence)
            j = int(np.searchsorted(self.offsets, self.offsets[i] + max_frames, side="right")) - 1
            j = min(max(j, i + 1), n)
            start = int(self.offsets[i])
            x, y = self._read_frames(start, int(self.offsets[j]))
            for k in range(i, j):
                a, b = int(self.offsets[k]) - start, int(self.offsets[k + 1]) - start
                yield x[a:b], y[a:b]
            i = j

    def read_batch(self, indices: Sequence[int] | np.ndarray) -> Batch:
        """Read the sequences ``indices`` (B,) as one padded :class:`Batch`.

        Negative indices count from the end; an index may repeat. Streamed,
        each run of consecutive indices is read with one call.
        """
        idx = np.asarray(indices)
        if idx.ndim != 1 or idx.size == 0 or (idx.dtype.kind not in "iu"):
            raise TypeError("indices must be a non-empty 1-D array of integers")
        n = len(self)
        idx = idx.astype(np.int64)
        idx = np.where(idx < 0, idx + n, idx)
        if idx.min() < 0 or idx.max() >= n:
            bad = int(np.asarray(indices)[(idx < 0) | (idx >= n)][0])
            raise IndexError(f"sequence index {bad} out of range for {n} sequences")
        lengths = self.lengths[idx]
        if idx.size == 1:  # no padding: a view of the one sequence
            xs, ys = self._read_frames(int(self.offsets[idx[0]]), int(self.offsets[idx[0] + 1]))
            return Batch(x=xs[:, None, :], y=ys[:, None], lengths=lengths, indices=idx)
        n_t = int(lengths.max())
        x = np.zeros((n_t, idx.size, self.input_size), dtype=np.float32)
        y = np.full((n_t, idx.size), -1, dtype=np.int32)
        if self.in_memory:
            self._check_open()
            for b, s in enumerate(idx.tolist()):
                a, e = int(self.offsets[s]), int(self.offsets[s + 1])
                x[: e - a, b] = self._inputs[a:e]
                y[: e - a, b] = self._targets[a:e]
                if self.normalisation is not None:
                    x[: e - a, b] -= self.normalisation[0]
                    x[: e - a, b] /= self.normalisation[1]
            return Batch(x=x, y=y, lengths=lengths, indices=idx)
        # streamed: read runs of consecutive sequence indices in file order
        order = np.argsort(idx, kind="stable")
        sorted_idx = idx[order]
        breaks = np.flatnonzero(np.diff(sorted_idx) != 1) + 1
        for run in np.split(np.arange(idx.size), breaks):
            first, last = int(sorted_idx[run[0]]), int(sorted_idx[run[-1]])
            start = int(self.offsets[first])
            xr, yr = self._read_frames(start, int(self.offsets[last + 1]))
            for r in run.tolist():
                b = int(order[r])
                s = int(sorted_idx[r])
                a, e = int(self.offsets[s]) - start, int(self.offsets[s + 1]) - start
                x[: e - a, b] = xr[a:e]
                y[: e - a, b] = yr[a:e]
        return Batch(x=x, y=y, lengths=lengths, indices=idx)

    def iter_batches(
        self,
        batch_size: int = 1,
        *,
        shuffle: bool = False,
        seed: int | None = None,
        rng: np.random.Generator | None = None,
        sort_by_length: bool = False,
        drop_last: bool = False,
    ) -> Iterator[Batch]:
        """Yield padded batches (see :func:`seqprop.batching.batch_order`).

        Parameters
        ----------
        batch_size : int
            Sequences per batch (the last one may be smaller unless ``drop_last``).
        shuffle : bool
            Random order (a new one each call unless the same ``seed`` is given).
        seed : int, optional
            Seed for the order; give either ``seed`` or ``rng``.
        rng : numpy.random.Generator, optional
        sort_by_length : bool
            Length buckets: batches of sequences of similar length.
        drop_last : bool
            Drop a final incomplete batch.

        Yields
        ------
        Batch
            x (T, B, I) float32, y (T, B) int32, lengths (B,), indices (B,).
        """
        if seed is not None and rng is not None:
            raise ValueError("give either seed or rng, not both")
        gen = as_rng(seed, "seed") if seed is not None else rng
        if gen is not None:
            gen = as_rng(gen)
        order = batch_order(
            self.lengths,
            batch_size,
            rng=gen,
            shuffle=shuffle,
            sort_by_length=sort_by_length,
            drop_last=drop_last,
        )
        for idx in order:
            yield self.read_batch(idx)

    def _iter_raw_blocks(self, which: str) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (start_frame, raw block) over all of ``inputs`` or ``targets``."""
        self._check_open()
        arr = self._inputs if which == "inputs" else self._targets
        row_bytes = 4 * self.input_size if which == "inputs" else 4
        rows = _block_rows(arr, row_bytes)
        for start in range(0, self.n_frames, rows):
            stop = min(self.n_frames, start + rows)
            try:
                block = arr[start:stop]
            except (OSError, RuntimeError, ValueError) as exc:
                raise DataError(
                    f"{self._where(which)}: cannot read frames {start}:{stop} ({exc})"
                ) from None
            yield start, block

    def _load_into_memory(self) -> None:
        """Replace the h5py datasets by float32/int32 arrays read in blocks."""
        x = np.empty((self.n_frames, self.input_size), dtype=np.float32)
        for start, block in self._iter_raw_blocks("inputs"):
            x[start : start + block.shape[0]] = block
        y = np.empty(self.n_frames, dtype=np.int32)
        for start, block in self._iter_raw_blocks("targets"):
            y[start : start + block.shape[0]] = block
        self._inputs, self._targets = x, y

    def read_targets(self) -> np.ndarray:
        """All targets, concatenated in file order: (N_frames,) int32."""
        self._check_open()
        if self.in_memory:
            return self._targets.copy()
        out = np.empty(self.n_frames, dtype=np.int32)
        for start, block in self._iter_raw_blocks("targets"):
            out[start : start + block.shape[0]] = block
        return out

    def class_counts(self) -> np.ndarray:
        """Labelled frames per class: (K,) int64 (frames with target -1 are not counted)."""
        counts = np.zeros(self.num_classes, dtype=np.int64)
        if self.in_memory:
            blocks: Iterable[tuple[int, np.ndarray]] = [(0, self._targets)]
        else:
            blocks = self._iter_raw_blocks("targets")
        for _, block in blocks:
            t = np.asarray(block).astype(np.int64, copy=False)
            counts += np.bincount(t[t >= 0], minlength=self.num_classes)[: self.num_classes]
        return counts

    def summary(self) -> dict[str, Any]:
        """A JSON-serialisable description of the split.

        Keys: path, group, n_sequences, n_frames, input_size, num_classes,
        length_min, length_mean, length_median, length_max, unlabelled_frames,
        class_histogram (class name -> labelled frames, in class order),
        source, has_normalisation, feature_names.
        """
        counts = self.class_counts()
        return {
            "path": str(self.path),
            "group": self.group,
            "n_sequences": len(self),
            "n_frames": self.n_frames,
            "input_size": self.input_size,
            "num_classes": self.num_classes,
            "length_min": int(self.lengths.min()),
            "length_mean": float(self.lengths.mean()),
            "length_median": float(np.median(self.lengths)),
            "length_max": int(self.lengths.max()),
            "unlabelled_frames": int(self.n_frames - counts.sum()),
            "class_histogram": {
                name: int(c) for name, c in zip(self.class_names, counts, strict=True)
            },
            "source": self.source,
            "has_normalisation": self.mean is not None and self.std is not None,
            "feature_names": self.feature_names,
        }


def _open_h5(path: pathlib.Path):
    """Open an HDF5 file for reading, turning every failure into a DataError."""
    h5py = _h5py()
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, not an HDF5 file")
    try:
        with open(path, "rb") as fh:  # a clear error for unreadable files
            fh.read(8)
        is_h5 = h5py.is_hdf5(str(path))
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    if not is_h5:
        raise DataError(f"{path}: not an HDF5 file")
    try:
        return h5py.File(
            str(path),
            "r",
            rdcc_nbytes=CHUNK_CACHE_BYTES,
            rdcc_nslots=CHUNK_CACHE_SLOTS,
            rdcc_w0=1.0,
        )
    except (OSError, RuntimeError, ValueError) as exc:
        raise DataError(f"{path}: cannot open as HDF5, truncated or corrupt? ({exc})") from None


def _is_split(obj: Any) -> bool:
    h5py = _h5py()
    if not isinstance(obj, h5py.Group):
        return False
    return "inputs" in obj or "format" in obj.attrs


def _split_groups(f: Any) -> list[str]:
    h5py = _h5py()
    found: list[str] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Group) and _is_split(obj):
            found.append(name)

    f.visititems(visit)
    return sorted(found)


def list_groups(path: str | os.PathLike) -> list[str]:
    """Names of the groups that hold a split; ``[]`` when the file is one split at its root.

    A group holds a split when it has an ``inputs`` member or a ``format``
    attribute. Nested groups are listed by their path (``"a/b"``).

    Raises
    ------
    DataError
        The file is missing, not HDF5, or unreadable.
    """
    path = pathlib.Path(path)
    f = _open_h5(path)
    try:
        return _split_groups(f)
    except (OSError, RuntimeError, KeyError) as exc:
        raise DataError(f"{path}: cannot read the file's groups ({exc})") from None
    finally:
        f.close()


def open_dataset(
    path: str | os.PathLike,
    *,
    group: str | None = None,
    in_memory: bool = False,
    normalise: bool | tuple[np.ndarray, np.ndarray] = False,
    check_values: bool = True,
) -> SequenceDataset:
    """Open and validate one split of a ``seqprop.sequences`` HDF5 file.

    Parameters
    ----------
    path : str or path-like
    group : str, optional
        The split's group. When None, the root must hold the split, or the
        file must hold exactly one split group (which is then opened).
    in_memory : bool
        Read ``inputs`` and ``targets`` into memory once (and close the file);
        otherwise keep the file open and read slices on demand.
    normalise : bool or (mean, std)
        ``True``: return inputs as ``(x - mean) / std`` with the file's stored
        statistics; a pair of (I,) arrays: use those (e.g. the training split's
        statistics on the test split); ``False``: raw inputs.
    check_values : bool
        Scan ``inputs`` for NaN/inf and ``targets`` for out-of-range classes
        (in blocks). Turn off only for files known to be valid.

    Returns
    -------
    SequenceDataset

    Raises
    ------
    DataError
        Naming the file, the dataset and the first offending sequence, for any
        violation listed in the module docstring; also when ``group`` is
        missing or when the file holds several splits and ``group`` is None.
    """
    path = pathlib.Path(path)
    f = _open_h5(path)
    try:
        ds = _open_validated(f, path, group, check_values)
        ds._file = f
        if normalise is not False and normalise is not None:
            ds.normalisation = _normalisation_arg(ds, normalise)
        if in_memory:
            ds._load_into_memory()
            ds.in_memory = True
            f.close()
            ds._file = None
        return ds
    except DataError:
        f.close()
        raise
    except (OSError, RuntimeError, KeyError, TypeError) as exc:
        f.close()
        raise DataError(f"{path}: cannot read the file, truncated or corrupt? ({exc})") from None
    except BaseException:
        f.close()
        raise


def _normalisation_arg(ds: SequenceDataset, normalise: Any) -> tuple[np.ndarray, np.ndarray]:
    if normalise is True:
        if ds.mean is None or ds.std is None:
            raise DataError(
                f"{ds.path}: normalise=True but the file stores no 'mean'/'std' attributes"
            )
        mean, std = ds.mean, ds.std
    else:
        try:
            mean, std = normalise
        except (TypeError, ValueError):
            raise ValueError("normalise must be a bool or a (mean, std) pair") from None
    mean = np.asarray(mean, dtype=np.float64)
    std = np.asarray(std, dtype=np.float64)
    for name, a in (("mean", mean), ("std", std)):
        if a.shape != (ds.input_size,):
            raise ValueError(f"normalise {name} must have shape ({ds.input_size},), got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"normalise {name} must be finite")
    if np.any(std <= 0):
        raise ValueError("normalise std must be positive")
    return mean.astype(np.float32), std.astype(np.float32)


def _open_validated(f: Any, path: pathlib.Path, group: str | None, check_values: bool):
    h5py = _h5py()
    if group is not None:
        key = group.strip("/")
        if not key or key not in f or not isinstance(f[key], h5py.Group):
            groups = _split_groups(f)
            raise DataError(
                f"{path}: no group {group!r} in the file; splits: "
                + (", ".join(groups) if groups else "(one split at the root)")
            )
        root = f[key]
        group = key
    elif "inputs" in f or "format" in f.attrs:
        root = f
    else:
        groups = _split_groups(f)
        if len(groups) == 1:
            group = groups[0]
            root = f[group]
        elif groups:
            raise DataError(
                f"{path}: the file holds several splits; choose one (group=... or --group): "
                + ", ".join(groups)
            )
        else:
            raise DataError(
                f"{path}: not a seqprop sequence file (no 'inputs' dataset and no "
                f"'format' attribute at the root or in any group)"
            )

    prefix = "/" + group if group else ""

    def where(name: str) -> str:
        return f"{path}: dataset '{prefix}/{name}'"

    def attr_where(name: str) -> str:
        return f"{path}: attribute '{name}' of '{prefix or '/'}'"

    # -- attributes: format, version, class names ---------------------------
    attrs = root.attrs
    for name in ("format", "format_version", "class_names"):
        if name not in attrs:
            raise DataError(f"{attr_where(name)} is missing (required by {FORMAT})")
    fmt = _decode_one(_scalar_or_error(attrs["format"], attr_where("format")), attr_where("format"))
    if fmt != FORMAT:
        raise DataError(f"{attr_where('format')} is {fmt!r}, expected {FORMAT!r}")
    version = _scalar_or_error(attrs["format_version"], attr_where("format_version"))
    try:
        vnum = float(version)
    except (TypeError, ValueError):
        raise DataError(
            f"{attr_where('format_version')} must be an integer, got {version!r}"
        ) from None
    if not math.isfinite(vnum) or vnum != int(vnum):
        raise DataError(f"{attr_where('format_version')} must be an integer, got {version!r}")
    if int(vnum) != FORMAT_VERSION:
        raise DataError(
            f"{attr_where('format_version')} is {int(vnum)}; this seqprop reads version "
            f"{FORMAT_VERSION} only"
        )
    class_names = _decode_strings(attrs["class_names"], attr_where("class_names"))
    if not class_names:
        raise DataError(f"{attr_where('class_names')} is empty (need at least one class)")
    n_classes = len(class_names)

    # -- datasets present, dtypes and shapes ---------------------------------
    dsets = {}
    for name in REQUIRED_DATASETS:
        if name not in root:
            raise DataError(f"{where(name)} is missing (required by {FORMAT})")
        obj = root[name]
        if not isinstance(obj, h5py.Dataset):
            raise DataError(f"{where(name)} is not a dataset")
        dsets[name] = obj
    inputs, targets, seq_lengths, seq_tags = (dsets[n] for n in REQUIRED_DATASETS)

    if inputs.dtype.kind != "f":
        raise DataError(f"{where('inputs')} must be floating point (float32), got {inputs.dtype}")
    if len(inputs.shape) != 2 or inputs.shape[1] < 1:
        raise DataError(f"{where('inputs')} must have shape (N_frames, I), got {inputs.shape}")
    n_frames, n_in = (int(s) for s in inputs.shape)
    if targets.dtype.kind not in "iu":
        raise DataError(f"{where('targets')} must be integer (int16/int32), got {targets.dtype}")
    if targets.shape != (n_frames,):
        raise DataError(
            f"{where('targets')} must have shape ({n_frames},) like inputs' frames, "
            f"got {targets.shape}"
        )
    if seq_lengths.dtype.kind not in "iu":
        raise DataError(f"{where('seq_lengths')} must be integer (int64), got {seq_lengths.dtype}")
    if len(seq_lengths.shape) != 1:
        raise DataError(f"{where('seq_lengths')} must be 1-D, got shape {seq_lengths.shape}")
    n_seqs = int(seq_lengths.shape[0])
    if n_seqs == 0:
        raise DataError(f"{where('seq_lengths')} is empty: the split holds no sequences")
    if seq_tags.shape != (n_seqs,):
        raise DataError(
            f"{where('seq_tags')} must have shape ({n_seqs},) like seq_lengths, "
            f"got {seq_tags.shape}"
        )
    if h5py.check_string_dtype(seq_tags.dtype) is None and seq_tags.dtype.kind not in "SO":
        raise DataError(f"{where('seq_tags')} must hold strings, got dtype {seq_tags.dtype}")
    tags = _decode_strings(seq_tags[()], where("seq_tags"))

    lengths_raw = seq_lengths[()]
    bad = np.flatnonzero(lengths_raw <= 0)
    if bad.size:
        i = int(bad[0])
        raise DataError(
            f"{where('seq_lengths')}: {_tag_text(tags, i)} has length {lengths_raw[i]}; "
            "every sequence needs at least one frame"
        )
    too_long = np.flatnonzero(lengths_raw > n_frames)
    if too_long.size:
        i = int(too_long[0])
        raise DataError(
            f"{where('seq_lengths')}: {_tag_text(tags, i)} has length {lengths_raw[i]}, "
            f"more than the {n_frames} frames in inputs"
        )
    lengths = lengths_raw.astype(np.int64)
    offsets = np.zeros(n_seqs + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if offsets[-1] != n_frames:
        if offsets[-1] > n_frames:
            i = int(np.flatnonzero(offsets[1:] > n_frames)[0])
            raise DataError(
                f"{where('seq_lengths')}: sum(seq_lengths) = {offsets[-1]} but inputs has "
                f"{n_frames} frames; {_tag_text(tags, i)} ends at frame {offsets[i + 1]}, "
                "past the end"
            )
        raise DataError(
            f"{where('seq_lengths')}: sum(seq_lengths) = {offsets[-1]} but inputs has "
            f"{n_frames} frames; {n_frames - offsets[-1]} frames after the last sequence "
            f"({_tag_text(tags, n_seqs - 1)}) belong to no sequence"
        )

    # -- optional attributes ---------------------------------------------------
    feature_names = None
    if "feature_names" in attrs:
        feature_names = _decode_strings(attrs["feature_names"], attr_where("feature_names"))
        if len(feature_names) != n_in:
            raise DataError(
                f"{attr_where('feature_names')} has {len(feature_names)} names but inputs "
                f"has {n_in} features"
            )
    source = None
    if "source" in attrs:
        source = _decode_one(
            _scalar_or_error(attrs["source"], attr_where("source")), attr_where("source")
        )
    stats = _check_normalisation(
        {name: attrs[name] for name in ("mean", "std") if name in attrs}, n_in, attr_where
    )

    ds = SequenceDataset()
    ds.path = path
    ds.group = group
    ds.lengths = lengths
    ds.offsets = offsets
    ds.tags = tags
    ds.class_names = class_names
    ds.feature_names = feature_names
    ds.source = source
    ds.mean = stats.get("mean")
    ds.std = stats.get("std")
    ds.input_size = n_in
    ds.num_classes = n_classes
    ds.n_frames = n_frames
    ds._inputs = inputs
    ds._targets = targets

    # -- value scans, in blocks ----------------------------------------------------
    if check_values:
        _scan_values(ds, where, tags)
    return ds


def _scalar_or_error(value: Any, where: str) -> Any:
    try:
        return _scalar(value)
    except ValueError as exc:
        raise DataError(f"{where}: {exc}") from None


def _scan_values(ds: SequenceDataset, where, tags: list[str]) -> None:
    """Check targets in [-1, K) and inputs finite (as float32), block by block."""
    k = ds.num_classes
    for start, block in ds._iter_raw_blocks("targets"):
        bad = (block < -1) | (block >= k)
        if bad.any():
            frame = start + int(np.flatnonzero(bad)[0])
            i = int(np.searchsorted(ds.offsets, frame, side="right")) - 1
            raise DataError(
                f"{where('targets')}: {_tag_text(tags, i)} frame {frame - ds.offsets[i]} "
                f"(file frame {frame}) has target {block[frame - start]}, outside [-1, {k})"
            )
    for start, block in ds._iter_raw_blocks("inputs"):
        if block.dtype != np.float32:
            with np.errstate(over="ignore", invalid="ignore"):
                block = block.astype(np.float32)
        finite = np.isfinite(block)
        if not finite.all():
            r, c = (int(v) for v in np.argwhere(~finite)[0])
            frame = start + r
            i = int(np.searchsorted(ds.offsets, frame, side="right")) - 1
            value = block[r, c]
            what = "NaN" if np.isnan(value) else "infinite (in float32)"
            raise DataError(
                f"{where('inputs')}: {_tag_text(tags, i)} frame {frame - ds.offsets[i]} "
                f"(file frame {frame}) feature {c} is {what}"
            )


# ---------------------------------------------------------------------------
# normalisation
# ---------------------------------------------------------------------------


def compute_normalisation(
    dataset: SequenceDataset, *, eps: float = 1e-8
) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation over every frame of a dataset.

    One streaming pass over the raw (unnormalised) inputs, block by block,
    accumulating in float64 and merging block statistics with Chan et al.'s
    pairwise update (no catastrophic cancellation). The standard deviation is
    the population one (divide by N_frames), floored at ``eps`` so that
    constant features do not divide by zero.

    Parameters
    ----------
    dataset : SequenceDataset
    eps : float
        Lower bound for ``std`` (> 0).

    Returns
    -------
    mean, std : (I,) float64 ndarrays
    """
    if not (isinstance(eps, float | int) and eps > 0 and math.isfinite(eps)):
        raise ValueError(f"eps must be a positive number, got {eps!r}")
    n_in = dataset.input_size
    count = 0
    mean = np.zeros(n_in, dtype=np.float64)
    m2 = np.zeros(n_in, dtype=np.float64)
    if dataset.in_memory:
        blocks: Iterable[tuple[int, np.ndarray]] = [(0, dataset._inputs)]
    else:
        blocks = dataset._iter_raw_blocks("inputs")
    for _, block in blocks:
        b = np.asarray(block, dtype=np.float64)
        nb = b.shape[0]
        if nb == 0:
            continue
        bmean = b.mean(axis=0)
        bm2 = ((b - bmean) ** 2).sum(axis=0)
        total = count + nb
        delta = bmean - mean
        mean = mean + delta * (nb / total)
        m2 = m2 + bm2 + delta**2 * (count * nb / total)
        count = total
    std = np.sqrt(m2 / max(count, 1))
    return mean, np.maximum(std, eps)


# ---------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------


def _as_str_list(values: Any, name: str, where: str) -> list[str]:
    if isinstance(values, str | bytes):
        raise DataError(f"{where}: {name} must be a sequence of strings, not one string")
    try:
        out = list(values)
    except TypeError:
        raise DataError(f"{where}: {name} must be a sequence of strings") from None
    for i, v in enumerate(out):
        if isinstance(v, bytes | np.bytes_):
            try:
                out[i] = bytes(v).decode("utf-8")
            except UnicodeDecodeError:
                raise DataError(f"{where}: {name}[{i}] is not valid utf-8") from None
        elif isinstance(v, str):
            out[i] = str(v)
        else:
            raise DataError(f"{where}: {name}[{i}] must be a string, got {type(v).__name__}")
    return out


def _validate_for_write(
    path: pathlib.Path,
    inputs: Any,
    targets: Any,
    class_names: Any,
    tags: Any,
    feature_names: Any,
    source: Any,
    mean: Any,
    std: Any,
) -> dict[str, Any]:
    where = f"write_dataset({path})"
    names = _as_str_list(class_names, "class_names", where)
    if not names:
        raise DataError(f"{where}: class_names is empty (need at least one class)")
    if len(set(names)) != len(names):
        dup = next(n for i, n in enumerate(names) if n in names[:i])
        raise DataError(f"{where}: class_names holds {dup!r} twice")
    k = len(names)
    try:
        xs = list(inputs)
        ys = list(targets)
    except TypeError:
        raise DataError(f"{where}: inputs and targets must be sequences of arrays") from None
    if not xs:
        raise DataError(f"{where}: inputs is empty (need at least one sequence)")
    if len(ys) != len(xs):
        raise DataError(f"{where}: {len(xs)} input sequences but {len(ys)} target sequences")
    n = len(xs)
    if tags is None:
        tag_list = [f"seq{i}" for i in range(n)]
    else:
        tag_list = _as_str_list(tags, "tags", where)
        if len(tag_list) != n:
            raise DataError(f"{where}: {len(tag_list)} tags for {n} sequences")
    n_in = None
    out_x: list[np.ndarray] = []
    out_y: list[np.ndarray] = []
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        seq = _tag_text(tag_list, i)
        x = np.asarray(x)
        if x.dtype.kind not in "fiu" or x.ndim != 2:
            raise DataError(
                f"{where}: inputs, {seq}: must be a 2-D (T, I) float array, got dtype "
                f"{x.dtype} shape {x.shape}"
            )
        if n_in is None:
            n_in = x.shape[1]
            if n_in < 1:
                raise DataError(f"{where}: inputs, {seq}: has no features (shape {x.shape})")
        elif x.shape[1] != n_in:
            raise DataError(
                f"{where}: inputs, {seq}: has {x.shape[1]} features, the first sequence {n_in}"
            )
        if x.shape[0] == 0:
            raise DataError(f"{where}: inputs, {seq}: has no frames (zero-length sequence)")
        with np.errstate(over="ignore", invalid="ignore"):
            x32 = x.astype(np.float32, copy=False)
        finite = np.isfinite(x32)
        if not finite.all():
            r, c = (int(v) for v in np.argwhere(~finite)[0])
            what = "NaN" if np.isnan(x32[r, c]) else "infinite (in float32)"
            raise DataError(f"{where}: inputs, {seq}: frame {r} feature {c} is {what}")
        y = np.asarray(y)
        if y.ndim != 1 or y.shape[0] != x.shape[0]:
            raise DataError(
                f"{where}: targets, {seq}: must have shape ({x.shape[0]},) like its inputs, "
                f"got {y.shape}"
            )
        if y.dtype.kind not in "iu":
            raise DataError(f"{where}: targets, {seq}: must be integer, got dtype {y.dtype}")
        bad = (y < -1) | (y >= k)
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{where}: targets, {seq}: frame {r} has target {y[r]}, outside [-1, {k})"
            )
        out_x.append(x32)
        out_y.append(y)
    feats = None
    if feature_names is not None:
        feats = _as_str_list(feature_names, "feature_names", where)
        if len(feats) != n_in:
            raise DataError(f"{where}: {len(feats)} feature_names for {n_in} features")
    if source is not None and not isinstance(source, str):
        raise DataError(f"{where}: source must be a string, got {type(source).__name__}")
    stats = _check_normalisation({"mean": mean, "std": std}, n_in, lambda name: f"{where}: {name}")
    return {
        "xs": out_x,
        "ys": out_y,
        "tags": tag_list,
        "class_names": names,
        "feature_names": feats,
        "stats": stats,
        "n_in": n_in,
    }


def _write_split(
    root: Any,
    v: dict[str, Any],
    source: str | None,
    chunks: bool | tuple[int, int] | None,
    compression: str | None,
    compression_opts: Any,
) -> None:
    h5py = _h5py()
    xs, ys = v["xs"], v["ys"]
    n_in = v["n_in"]
    lengths = np.array([x.shape[0] for x in xs], dtype=np.int64)
    n_frames = int(lengths.sum())
    k = len(v["class_names"])
    tdtype = np.int16 if k < 32767 else np.int32
    if compression is not None and chunks is None:
        chunks = True
    if chunks is True:
        rows = max(1, min(n_frames, CHUNK_BYTES // (4 * n_in)))
        chunks = (rows, n_in)
    elif chunks is False:
        chunks = None
    dx = root.create_dataset(
        "inputs",
        shape=(n_frames, n_in),
        dtype=np.float32,
        chunks=chunks,
        compression=compression,
        compression_opts=compression_opts,
    )
    tchunks = None if chunks is None else (max(1, min(n_frames, chunks[0] * n_in)),)
    dy = root.create_dataset(
        "targets",
        shape=(n_frames,),
        dtype=tdtype,
        chunks=tchunks,
        compression=compression,
        compression_opts=compression_opts,
    )
    # write in blocks of whole sequences (~BLOCK_BYTES each)
    max_frames = max(1, BLOCK_BYTES // (4 * n_in))
    start = 0
    i = 0
    while i < len(xs):
        j, frames = i, 0
        while j < len(xs) and (j == i or frames + xs[j].shape[0] <= max_frames):
            frames += xs[j].shape[0]
            j += 1
        dx[start : start + frames] = np.concatenate(xs[i:j], axis=0)
        dy[start : start + frames] = np.concatenate(ys[i:j]).astype(tdtype)
        start += frames
        i = j
    root.create_dataset("seq_lengths", data=lengths)
    root.create_dataset(
        "seq_tags", data=np.array(v["tags"], dtype=object), dtype=h5py.string_dtype("utf-8")
    )
    str_t = h5py.string_dtype("utf-8")
    root.attrs.create("format", FORMAT, dtype=str_t)
    root.attrs["format_version"] = np.int64(FORMAT_VERSION)
    root.attrs.create("class_names", np.array(v["class_names"], dtype=object), dtype=str_t)
    if v["feature_names"] is not None:
        root.attrs.create("feature_names", np.array(v["feature_names"], dtype=object), dtype=str_t)
    if source is not None:
        root.attrs.create("source", source, dtype=str_t)
    for name, a in v["stats"].items():
        root.attrs[name] = a


def _check_normalisation(values, n_in: int, where) -> dict[str, np.ndarray]:
    """Validate optional per-feature ``mean``/``std`` (None = absent) as float64 arrays.

    ``where(name)`` gives the message prefix naming the file/attribute or argument.
    """
    stats = {}
    for name, value in values.items():
        if value is None:
            continue
        a = np.asarray(value)
        if a.dtype.kind not in "fiu" or a.shape != (n_in,):
            raise DataError(
                f"{where(name)} must be {n_in} numbers (one per feature), "
                f"got dtype {a.dtype} shape {a.shape}"
            )
        a = a.astype(np.float64)
        if not np.all(np.isfinite(a)):
            raise DataError(f"{where(name)} holds NaN or infinite values")
        stats[name] = a
    if "std" in stats and np.any(stats["std"] <= 0):
        j = int(np.flatnonzero(stats["std"] <= 0)[0])
        raise DataError(f"{where('std')}[{j}] = {stats['std'][j]}; std must be positive")
    return stats


def write_dataset(
    path: str | os.PathLike,
    inputs: Sequence[np.ndarray],
    targets: Sequence[np.ndarray],
    *,
    class_names: Sequence[str],
    tags: Sequence[str] | None = None,
    feature_names: Sequence[str] | None = None,
    source: str | None = None,
    mean: np.ndarray | None = None,
    std: np.ndarray | None = None,
    group: str | None = None,
    overwrite: bool = False,
    chunks: bool | tuple[int, int] | None = None,
    compression: str | None = None,
    compression_opts: Any = None,
) -> pathlib.Path:
    """Write sequences to a ``seqprop.sequences`` HDF5 file (schema in the module docstring).

    Everything is validated before anything is written (with the rules
    :func:`open_dataset` applies). The file is written under a temporary name
    in the destination directory and moved into place with ``os.replace``, so
    the destination never holds a partial file and a failure leaves an
    existing file unchanged.

    With ``group``, the split goes into that group: the existing file (if
    any) is copied to the temporary name, the group is added there, and the
    copy replaces the original. This costs a copy of the file, fine for the
    usual few splits; the file must not hold a split at its root. Replacing
    an existing group (``overwrite=True``) leaves its old space unreclaimed
    inside the file (HDF5 does not shrink files).

    Parameters
    ----------
    path : str or path-like
    inputs : sequence of N arrays, each (T_i, I)
        Features; stored as float32 (must be finite in float32).
    targets : sequence of N int arrays, each (T_i,)
        Class indices in [-1, K), -1 = unlabelled; stored as int16 when
        K < 32767, else int32.
    class_names : sequence of K distinct str
    tags : sequence of N str, optional
        Sequence ids; default ``"seq0"``, ``"seq1"``, ...
    feature_names : sequence of I str, optional
    source : str, optional
    mean, std : (I,) arrays, optional
        Normalisation statistics to store (std > 0).
    group : str, optional
        Write the split into this group of a new or existing file.
    overwrite : bool
        Replace an existing file (or, with ``group``, an existing group).
    chunks : bool or (rows, I), optional
        Storage layout of ``inputs``: ``None``/``False`` contiguous (default;
        fastest reads of whole sequences), ``True`` chunks of about 1 MiB, or
        explicit chunk shape. Compression implies chunks.
    compression, compression_opts : optional
        Passed to h5py (e.g. ``"gzip"``, 4 or ``"lzf"``).

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    DataError
        Invalid data (naming the argument, the sequence index and tag), an
        existing destination without ``overwrite``, a destination directory
        that does not exist.
    """
    h5py = _h5py()
    path = pathlib.Path(path)
    v = _validate_for_write(
        path, inputs, targets, class_names, tags, feature_names, source, mean, std
    )
    parent = path.parent if str(path.parent) else pathlib.Path(".")
    if not parent.is_dir():
        raise DataError(f"write_dataset({path}): directory {parent} does not exist")
    if path.is_dir():
        raise DataError(f"write_dataset({path}): is a directory")
    key = None
    if group is not None:
        key = str(group).strip("/")
        if not key:
            raise DataError(f"write_dataset({path}): group must be a non-empty name")
    exists = path.exists()
    if exists and key is None and not overwrite:
        raise DataError(f"{path}: file exists (pass overwrite=True to replace it)")

    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    os.close(fd)
    tmp = pathlib.Path(tmp_name)
    try:
        if key is not None and exists:
            if not h5py.is_hdf5(str(path)):
                raise DataError(f"{path}: exists and is not an HDF5 file; cannot add group {key!r}")
            shutil.copyfile(path, tmp)
            mode = "r+"
        else:
            mode = "w"
        try:
            f = h5py.File(str(tmp), mode, libver=("v108", "latest"))
        except OSError as exc:
            raise DataError(f"{path}: cannot open to add group {key!r} ({exc})") from None
        with f:
            if key is None:
                root = f
            else:
                if "inputs" in f or "format" in f.attrs:
                    raise DataError(f"{path}: holds a split at its root; cannot add group {key!r}")
                if key in f:
                    if not overwrite:
                        raise DataError(
                            f"{path}: group {key!r} exists (pass overwrite=True to replace it)"
                        )
                    del f[key]
                root = f.create_group(key)
            _write_split(root, v, source, chunks, compression, compression_opts)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        if exists:
            shutil.copymode(path, tmp)
        else:
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    logger.info("wrote %d sequences to %s%s", len(v["xs"]), path, f" group {key}" if key else "")
    return path
