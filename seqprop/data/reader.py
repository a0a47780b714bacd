"""Reading one split of a ``seqprop.sequences`` HDF5 file, streamed or in memory.

A split holds N variable-length sequences back to back: ``inputs``
(N_frames, I) float, ``targets`` (N_frames,) int (``-1`` = unlabelled),
``seq_lengths`` (N,) and ``seq_tags`` (N,), plus attributes (``docs/FORMAT.md``
has the full format). :func:`open_dataset` validates a split with the rules of
:mod:`seqprop.data.schema` and returns a :class:`SequenceDataset`, which either
keeps the file open and reads each sequence's byte range on demand, or reads
``inputs`` and ``targets`` into memory once; both serve the same values.

Shape legend: N = sequences, T = frames of one sequence (or of the longest in a
batch), B = sequences in a batch, I = input features, K = classes.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from seqprop.data import schema
from seqprop.data.batching import Batch, as_rng, batch_order, pad_sequences
from seqprop.data.labels import LabelSequences, read_label_sequences
from seqprop.data.normalise import apply_normalisation, normalisation_pair
from seqprop.data.schema import (
    CHUNK_CACHE_BYTES,
    CHUNK_CACHE_SLOTS,
    Location,
    SplitLayout,
    block_rows,
    check_inputs_finite,
    find_splits,
    validate_split,
)
from seqprop.data.targets import LAYOUTS, TargetLayout, check_target_values
from seqprop.errors import DataError
from seqprop.heads.base import TargetKind

__all__ = ["SequenceDataset", "list_groups", "open_dataset"]


class SequenceDataset:
    """A validated split of an HDF5 sequence file (see ``docs/FORMAT.md``).

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
        ``num_classes`` is K: classes, or outputs of float targets.
    target_kind : TargetKind
        What each sequence's ``y`` is (:mod:`seqprop.data.targets`): (T,)
        int32 classes per frame, (T, K) float32 values per frame, or a 0-d
        int32 class per sequence.
    in_memory : bool
    label_sequences : LabelSequences or None
        The split's ``labels`` / ``label_lengths`` (read whole when opened), if
        it has them (:mod:`seqprop.data.labels`).
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
        self.target: TargetLayout = LAYOUTS[TargetKind.FRAME_CLASS]
        self._file = None
        self._inputs = None  # h5py.Dataset or ndarray
        self._targets = None  # per-frame targets: h5py.Dataset or ndarray; else None
        self._seq_targets: np.ndarray | None = None  # per-sequence targets, (N,) int32
        self._fingerprint: tuple[int, int] | None = None  # (size, mtime_ns) when opened
        self.label_sequences: LabelSequences | None = None

    @classmethod
    def _from_layout(cls, layout: SplitLayout) -> SequenceDataset:
        """A streamed dataset over the (validated) split ``layout`` describes."""
        ds = cls()
        ds.path = layout.location.path
        ds.group = layout.location.group
        ds.lengths = layout.lengths
        ds.offsets = layout.offsets
        ds.tags = layout.tags
        ds.class_names = layout.class_names
        ds.feature_names = layout.feature_names
        ds.source = layout.source
        ds.mean = layout.mean
        ds.std = layout.std
        ds.input_size = layout.input_size
        ds.num_classes = len(layout.class_names)
        ds.n_frames = layout.n_frames
        ds.target = layout.target
        ds._inputs = layout.inputs
        if layout.target.per_frame:
            ds._targets = layout.targets
        else:
            ds._seq_targets = np.asarray(layout.targets[()]).astype(np.int32)
        return ds

    @property
    def target_kind(self) -> TargetKind:
        return self.target.kind

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
        return Location(self.path, self.group).dataset(name)

    def _open_file(self) -> None:
        f = _open_h5(self.path)
        root = f[self.group] if self.group else f
        self._file = f
        self._inputs = root["inputs"]
        self._targets = root[self.target.dataset] if self.target.per_frame else None
        self._fingerprint = _fingerprint(f)

    def _check_unchanged(self) -> None:
        """DataError when the open file was truncated or rewritten since it was opened.

        HDF5 serves reads past a truncated file's end as zeros; a streamed
        run must stop instead of training on them.
        """
        if self._fingerprint is None or self._file is None:
            return
        now = _fingerprint(self._file)
        if now is not None and now != self._fingerprint:
            size, was = now[0], self._fingerprint[0]
            what = "truncated" if size < was else "rewritten"
            raise DataError(
                f"{self.path}: changed while being read ({what} by another program? size now "
                f"{size} bytes, was {was}); its data can no longer be trusted"
            )

    def _check_open(self) -> None:
        if self._inputs is None:
            raise DataError(f"{self.path}: the dataset is closed")

    def _read_frames(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Inputs (stop-start, I) float32 (normalised if the dataset normalises) and
        per-frame targets (stop-start,) int32 or (stop-start, K) float32 (None for
        per-sequence targets) of a frame range, as fresh arrays."""
        self._check_open()
        per_frame = self._targets is not None
        y = None
        if self.in_memory:
            x = self._inputs[start:stop].copy()
            if per_frame:
                y = self._targets[start:stop].copy()
        else:
            try:
                x = self._inputs[start:stop]
                if per_frame:
                    y = self._target_rows(self._targets, start, stop)
            except (OSError, RuntimeError, ValueError) as exc:
                raise DataError(
                    f"{self._where('inputs')}: cannot read frames {start}:{stop} ({exc})"
                ) from None
            self._check_unchanged()
            if x.dtype != np.float32:
                x = x.astype(np.float32)
            if y is not None and y.dtype != self.target.dtype:
                y = y.astype(self.target.dtype)
        if self.normalisation is not None:
            apply_normalisation(x, *self.normalisation, out=x)
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

    def _batch_indices(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """``indices`` as a (B,) int64 array of valid, non-negative sequence indices."""
        idx = np.asarray(indices)
        if idx.ndim != 1 or idx.size == 0 or (idx.dtype.kind not in "iu"):
            raise TypeError("indices must be a non-empty 1-D array of integers")
        n = len(self)
        idx = idx.astype(np.int64)
        if idx.min() < 0:
            idx = np.where(idx < 0, idx + n, idx)
        if idx.min() < 0 or idx.max() >= n:
            bad = int(np.asarray(indices)[(idx < 0) | (idx >= n)][0])
            raise IndexError(f"sequence index {bad} out of range for {n} sequences")
        return idx

    def _target_shape(self) -> tuple[int, ...]:
        """Shape of all per-frame targets as read: (N_frames,) classes or (N_frames, K) values."""
        if self.target.class_valued:
            return (self.n_frames,)
        return (self.n_frames, int(self._targets.shape[1]))

    def _target_rows(self, targets: Any, start: int, stop: int) -> np.ndarray:
        """Per-frame targets of frames ``start:stop`` (classes also from a MATLAB column)."""
        if self.target.class_valued:
            return _frame_range(targets, start, stop)
        return targets[start:stop]

    def _target(self, i: int, y: np.ndarray | None) -> np.ndarray:
        """Sequence ``i``'s targets: its per-frame rows ``y``, or its class (0-d int32)."""
        if y is not None:
            return y
        return np.asarray(self._seq_targets[i])

    def _sequences(self, idx: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Inputs and targets of the sequences ``idx``, in that order, for a batch.

        In memory: views of the stored arrays, *not* normalised. Streamed:
        views into one read per run of consecutive indices (runs taken in file
        order), normalised like every read.
        """
        self._check_open()
        if self.in_memory:
            starts, ends = self.offsets[idx].tolist(), self.offsets[idx + 1].tolist()
            bounds = list(zip(starts, ends, strict=True))
            xs = [self._inputs[a:e] for a, e in bounds]
            if self._targets is None:
                return xs, [self._target(int(i), None) for i in idx]
            return xs, [self._targets[a:e] for a, e in bounds]
        xs: list[Any] = [None] * idx.size
        ys: list[Any] = [None] * idx.size
        order = np.argsort(idx, kind="stable")
        sorted_idx = idx[order]
        breaks = np.flatnonzero(np.diff(sorted_idx) != 1) + 1
        for run in np.split(np.arange(idx.size), breaks):
            first, last = int(sorted_idx[run[0]]), int(sorted_idx[run[-1]])
            start = int(self.offsets[first])
            xr, yr = self._read_frames(start, int(self.offsets[last + 1]))
            for r in run.tolist():
                s = int(sorted_idx[r])
                a, e = int(self.offsets[s]) - start, int(self.offsets[s + 1]) - start
                xs[int(order[r])] = xr[a:e]
                ys[int(order[r])] = self._target(s, None if yr is None else yr[a:e])
        return xs, ys

    # -- public access --------------------------------------------------------

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Sequence ``i``: inputs (T, I) float32 and its targets (fresh arrays): (T,)
        int32 classes, (T, K) float32 values or a 0-d int32 class (:attr:`target_kind`)."""
        j = self._index(i)
        x, y = self._read_frames(int(self.offsets[j]), int(self.offsets[j + 1]))
        return x, self._target(j, y)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (x (T, I) float32, y (T,) int32) for every sequence in file order.

        Streams: consecutive sequences are read in blocks of about
        ``BLOCK_BYTES`` (one read per block), never the whole file.
        """
        n = len(self)
        max_frames = max(1, schema.BLOCK_BYTES // (4 * max(1, self.input_size)))
        i = 0
        while i < n:
            # extend the block while it stays under max_frames (always >= 1 sequence)
            j = int(np.searchsorted(self.offsets, self.offsets[i] + max_frames, side="right")) - 1
            j = min(max(j, i + 1), n)
            start = int(self.offsets[i])
            x, y = self._read_frames(start, int(self.offsets[j]))
            for k in range(i, j):
                a, b = int(self.offsets[k]) - start, int(self.offsets[k + 1]) - start
                yield x[a:b], self._target(k, None if y is None else y[a:b])
            i = j

    def read_batch(self, indices: Sequence[int] | np.ndarray) -> Batch:
        """Read the sequences ``indices`` (B,) as one padded :class:`Batch`.

        Negative indices count from the end; an index may repeat. Streamed,
        each run of consecutive indices is read with one call. The arrays are
        fresh (a batch of one sequence is a view of a fresh read).
        """
        idx = self._batch_indices(indices)
        lengths = self.lengths[idx]
        if idx.size == 1:
            xs, ys = self._read_frames(int(self.offsets[idx[0]]), int(self.offsets[idx[0] + 1]))
            ys = self._target(int(idx[0]), ys)
            x, y, _ = pad_sequences([xs], [ys], np.float32, copy=False, check=False)
            return Batch(x=x, y=y, lengths=lengths, indices=idx)
        xs, ys = self._sequences(idx)
        x, y, _ = pad_sequences(xs, ys, np.float32, check=False)
        if self.in_memory and self.normalisation is not None:
            for b, n in enumerate(lengths.tolist()):
                apply_normalisation(x[:n, b], *self.normalisation, out=x[:n, b])
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
        """Yield padded batches (see :func:`seqprop.data.batch_order`).

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

    def raw_blocks(self, which: str) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(first frame, block)`` over all of ``"inputs"`` or ``"targets"``, unnormalised.

        In memory: one block, the stored float32 / int32 array itself (do not
        modify it). Streamed: blocks of about ``BLOCK_BYTES`` (whole chunks
        for a chunked dataset) in the file's dtype. Per-sequence targets are
        one block of N rows (they are read when the split opens).
        """
        self._check_open()
        if which == "targets" and self._targets is None:
            yield 0, self._seq_targets
            return
        arr = self._inputs if which == "inputs" else self._targets
        if self.in_memory:
            yield 0, arr
            return
        row_bytes = 4 * (int(np.prod(arr.shape[1:])) if arr.ndim > 1 else 1)
        rows = block_rows(arr, row_bytes)
        for start in range(0, self.n_frames, rows):
            stop = min(self.n_frames, start + rows)
            try:
                block = (
                    arr[start:stop] if which == "inputs" else self._target_rows(arr, start, stop)
                )
            except (OSError, RuntimeError, ValueError) as exc:
                raise DataError(
                    f"{self._where(which)}: cannot read frames {start}:{stop} ({exc})"
                ) from None
            self._check_unchanged()
            yield start, block

    def _load_into_memory(self) -> None:
        """Replace the h5py datasets by float32/int32 arrays read in blocks."""
        x = np.empty((self.n_frames, self.input_size), dtype=np.float32)
        for start, block in self.raw_blocks("inputs"):
            x[start : start + block.shape[0]] = block
        y = None
        if self._targets is not None:
            y = np.empty(self._target_shape(), dtype=self.target.dtype)
            for start, block in self.raw_blocks("targets"):
                y[start : start + block.shape[0]] = block
        self._inputs, self._targets = x, y

    def labels(self, i: int) -> np.ndarray:
        """Sequence ``i``'s label sequence (U_i,) int64; DataError when the split has none."""
        return self.require_labels().sequence(self._index(i))

    def require_labels(self) -> LabelSequences:
        """The split's label sequences, or a DataError naming the missing datasets."""
        if self.label_sequences is None:
            raise DataError(
                f"{self._where('labels')} is missing: label-sequence targets (the ctc head) "
                "need the datasets 'labels' and 'label_lengths' (docs/FORMAT.md)"
            )
        return self.label_sequences

    def read_targets(self) -> np.ndarray:
        """All targets in file order: (N_frames,) int32, (N_frames, K) float32 or
        (N,) int32 per sequence (:attr:`target_kind`)."""
        if self._targets is None:
            return self._seq_targets.copy()
        out = np.empty(self._target_shape(), dtype=self.target.dtype)
        for start, block in self.raw_blocks("targets"):
            out[start : start + block.shape[0]] = block
        return out

    def class_counts(self) -> np.ndarray:
        """Labelled units per class, (K,) int64: frames, or sequences for a class per
        sequence (target -1 not counted); for float targets, scored frames per output."""
        counts = np.zeros(self.num_classes, dtype=np.int64)
        for _, block in self.raw_blocks("targets"):
            if not self.target.class_valued:
                scored = ~np.isnan(np.asarray(block, dtype=np.float32)).all(axis=1)
                counts += int(scored.sum())
                continue
            t = np.asarray(block).astype(np.int64, copy=False)
            counts += np.bincount(t[t >= 0], minlength=self.num_classes)[: self.num_classes]
        return counts

    def n_scored(self) -> int:
        """Units a head scores: labelled frames, scored frames, or labelled sequences."""
        counts = self.class_counts()
        return int(counts[0] if not self.target.class_valued else counts.sum())

    def summary(self) -> dict[str, Any]:
        """A JSON-serialisable description of the split.

        Keys: path, group, n_sequences, n_frames, input_size, num_classes,
        length_min, length_mean, length_median, length_max, unlabelled_frames,
        class_histogram (class name -> labelled frames, in class order),
        source, has_normalisation, feature_names.
        """
        counts = self.class_counts()
        if not self.target.per_frame:  # unlabelled: the frames of unlabelled sequences
            unlabelled = int(self.lengths[self._seq_targets < 0].sum())
        elif not self.target.class_valued:
            unlabelled = int(self.n_frames - counts[0])
        else:
            unlabelled = int(self.n_frames - counts.sum())
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
            "target_kind": self.target.kind.value,
            "unlabelled_frames": unlabelled,
            "class_histogram": (
                {name: int(c) for name, c in zip(self.class_names, counts, strict=True)}
                if self.target.class_valued
                else {}
            ),
            "source": self.source,
            "has_normalisation": self.mean is not None and self.std is not None,
            "feature_names": self.feature_names,
        }


def _frame_range(targets: Any, start: int, stop: int) -> np.ndarray:
    """Targets of frames ``start:stop`` as 1-D, also from a MATLAB column or row (docs/FORMAT.md)."""
    if len(targets.shape) == 1:
        return targets[start:stop]
    if targets.shape[0] == 1 and targets.shape[1] != 1:
        return targets[0, start:stop]
    return targets[start:stop, 0]


def available_memory() -> int | None:
    """Bytes of memory available without swapping (``MemAvailable``), None when unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def _check_fits_in_memory(ds: SequenceDataset) -> None:
    """DataError, suggesting streaming, when the split's arrays exceed the available memory."""
    need = ds.n_frames * (4 * ds.input_size + 4)
    available = available_memory()
    if available is not None and need > available:
        gib = 1024.0**3
        raise DataError(
            f"{ds.path}: its inputs and targets need {need / gib:.1f} GiB in memory, more than "
            f"the {available / gib:.1f} GiB available; stream the file instead "
            "(data.in_memory = false, or open_dataset(..., in_memory=False))"
        )


def locked_message(path: Any) -> str:
    """The error for an HDF5 file another process holds open for writing (HDF5's file lock)."""
    return (
        f"{path}: locked by another program that has it open for writing; wait until it "
        "has finished (HDF5 file locking)"
    )


def _fingerprint(f: Any) -> tuple[int, int] | None:
    """(size, mtime in ns) of the open HDF5 file ``f`` (None when its driver has no descriptor)."""
    try:
        st = os.fstat(f.id.get_vfd_handle())
    except (OSError, TypeError, ValueError, AttributeError, RuntimeError):
        return None
    return int(st.st_size), int(st.st_mtime_ns)


def _open_h5(path: pathlib.Path):
    """Open an HDF5 file for reading, turning every failure into a DataError."""
    import h5py

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
    except BlockingIOError:
        raise DataError(locked_message(path)) from None
    except (OSError, RuntimeError, ValueError) as exc:
        raise DataError(f"{path}: cannot open as HDF5, truncated or corrupt? ({exc})") from None


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
        return find_splits(f)
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
    target_kind: TargetKind | None = None,
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
        Scan ``inputs`` for NaN/inf and the targets for out-of-range classes
        or misplaced NaN (in blocks). Turn off only for files known to be valid.
    target_kind : TargetKind, optional
        The targets to read (a head's :attr:`~seqprop.heads.Head.target_kind`;
        :mod:`seqprop.data.targets`). None: those the file holds (a 1-D
        ``targets`` dataset, a 2-D float one, else ``seq_targets``). A file
        without the dataset ``target_kind`` needs raises DataError naming it.

    Returns
    -------
    SequenceDataset

    Raises
    ------
    DataError
        Naming the file, the dataset and the first offending sequence, for any
        rule of ``docs/FORMAT.md`` the split breaks; also when ``group`` is
        missing or when the file holds several splits and ``group`` is None.
    """
    path = pathlib.Path(path)
    f = _open_h5(path)
    try:
        ds = SequenceDataset._from_layout(validate_split(f, path, group, target_kind))
        ds.label_sequences = read_label_sequences(
            f[ds.group] if ds.group else f,
            Location(ds.path, ds.group),
            ds.lengths,
            ds.num_classes,
            ds.tags,
        )
        if check_values:
            loc = Location(ds.path, ds.group)
            check_target_values(
                ds.target,
                ds.raw_blocks("targets"),
                ds.offsets,
                ds.num_classes,
                ds.tags,
                loc.dataset(ds.target.dataset),
            )
            check_inputs_finite(ds.raw_blocks("inputs"), ds.offsets, ds.tags, loc)
        ds._file = f
        ds._fingerprint = _fingerprint(f)
        if normalise is not False and normalise is not None:
            ds.normalisation = normalisation_pair(ds, normalise)
        if in_memory:
            _check_fits_in_memory(ds)
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
