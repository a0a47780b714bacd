"""Writing sequences to a ``seqprop.sequences`` HDF5 file, atomically.

:func:`write_dataset` checks its arguments with the rules a reader applies
(``docs/FORMAT.md``), then writes one split, at the file's root or in a group,
under a temporary name that replaces the destination only once complete.
``inputs`` are written contiguously by default: a sequence is then one byte
range, read without a chunk index or cache; chunks and compression are there
for those who want them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pathlib
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from seqprop.data import schema
from seqprop.data.labels import LabelSequences, check_labels_for_write, write_label_sequences
from seqprop.data.normalise import check_statistics
from seqprop.data.schema import CHUNK_BYTES, FORMAT, FORMAT_VERSION, tag_text
from seqprop.errors import DataError

__all__ = ["write_dataset"]

logger = logging.getLogger("seqprop.data")


# ------------------------------------------------------------------ checking the arguments
@dataclass
class _CheckedSplit:
    """A validated split, ready to write."""

    xs: list[np.ndarray]  # float32 (T_i, I)
    ys: list[np.ndarray] | None  # int (T_i,) or float32 (T_i, K)
    seq_targets: np.ndarray | None  # int (N,)
    tags: list[str]
    class_names: list[str] | None
    target_names: list[str] | None
    feature_names: list[str] | None
    stats: dict[str, np.ndarray]
    n_in: int
    labels: LabelSequences | None = None  # TargetKind.LABEL_SEQUENCE (seqprop.data.labels)


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


def _check_class_names(class_names: Any, where: str) -> list[str]:
    names = _as_str_list(class_names, "class_names", where)
    if not names:
        raise DataError(f"{where}: class_names is empty (need at least one class)")
    if len(set(names)) != len(names):
        dup = next(n for i, n in enumerate(names) if n in names[:i])
        raise DataError(f"{where}: class_names holds {dup!r} twice")
    return names


def _check_inputs(x: Any, n_in: int | None, seq: str, where: str) -> np.ndarray:
    """One sequence's inputs as float32 (T, I): 2-D, I features (as the first), frames, finite."""
    x = np.asarray(x)
    if x.dtype.kind not in "fiu" or x.ndim != 2:
        raise DataError(
            f"{where}: inputs, {seq}: must be a 2-D (T, I) float array, got dtype "
            f"{x.dtype} shape {x.shape}"
        )
    if n_in is None:
        if x.shape[1] < 1:
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
    return x32


def _check_values(y: np.ndarray, n_frames: int, k: int | None, seq: str, where: str) -> np.ndarray:
    """One sequence's float targets: (T, K), each row all finite or all NaN; as float32."""
    if y.ndim != 2 or y.shape[0] != n_frames or (k is not None and y.shape[1] != k):
        want = f"({n_frames}, {'K' if k is None else k})"
        raise DataError(
            f"{where}: targets, {seq}: float targets must have shape {want} like its inputs "
            f"(and the first sequence's K), got {y.shape}"
        )
    if y.shape[1] < 1:
        raise DataError(f"{where}: targets, {seq}: has no outputs (shape {y.shape})")
    with np.errstate(over="ignore", invalid="ignore"):
        y32 = y.astype(np.float32, copy=False)
    nan = np.isnan(y32)
    bad = ~np.isfinite(y32) & ~nan.all(axis=1)[:, None]
    if bad.any():
        r, c = (int(v) for v in np.argwhere(bad)[0])
        what = "NaN while other outputs of the frame are not" if nan[r, c] else "infinite"
        raise DataError(f"{where}: targets, {seq}: frame {r} output {c} is {what}")
    return y32


def _check_targets(
    y: Any, n_frames: int, k: int | None, seq: str, where: str, values: bool
) -> np.ndarray:
    """One sequence's targets: (T,) integers in [-1, K), or (T, K) float values."""
    y = np.asarray(y)
    if values:
        if y.dtype.kind != "f":
            raise DataError(
                f"{where}: targets, {seq}: must be float like the first sequence's, got "
                f"dtype {y.dtype}"
            )
        return _check_values(y, n_frames, k, seq, where)
    if y.ndim != 1 or y.shape[0] != n_frames:
        raise DataError(
            f"{where}: targets, {seq}: must have shape ({n_frames},) like its inputs, got {y.shape}"
        )
    if y.dtype.kind not in "iu":
        raise DataError(f"{where}: targets, {seq}: must be integer, got dtype {y.dtype}")
    bad = (y < -1) | (y >= k)
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        raise DataError(f"{where}: targets, {seq}: frame {r} has target {y[r]}, outside [-1, {k})")
    return y


def _check_sequences(
    inputs: Any, targets: Any, tags: Any, k: int | None, where: str
) -> tuple[list[np.ndarray], list[np.ndarray] | None, list[str]]:
    """Inputs (float32), targets (None: none given) and tags of every sequence, checked in
    order; targets are classes when the first sequence's are integer, else float values."""
    try:
        xs = list(inputs)
        ys = None if targets is None else list(targets)
    except TypeError:
        raise DataError(f"{where}: inputs and targets must be sequences of arrays") from None
    if not xs:
        raise DataError(f"{where}: inputs is empty (need at least one sequence)")
    if ys is not None and len(ys) != len(xs):
        raise DataError(f"{where}: {len(xs)} input sequences but {len(ys)} target sequences")
    values = ys is not None and np.asarray(ys[0]).dtype.kind == "f"
    if ys is not None and not values and k is None:
        raise DataError(f"{where}: class targets need class_names")
    n = len(xs)
    if tags is None:
        tag_list = [f"seq{i}" for i in range(n)]
    else:
        tag_list = _as_str_list(tags, "tags", where)
        if len(tag_list) != n:
            raise DataError(f"{where}: {len(tag_list)} tags for {n} sequences")
    out_x: list[np.ndarray] = []
    out_y: list[np.ndarray] = []
    for i, x in enumerate(xs):
        seq = tag_text(tag_list, i)
        x32 = _check_inputs(x, out_x[0].shape[1] if out_x else None, seq, where)
        if ys is not None:
            width = out_y[0].shape[1] if values and out_y else (None if values else k)
            out_y.append(_check_targets(ys[i], x32.shape[0], width, seq, where, values))
        out_x.append(x32)
    return out_x, (out_y if ys is not None else None), tag_list


def _check_seq_targets(seq_targets: Any, n: int, k: int | None, tags: list[str], where: str):
    """A class per sequence: (N,) integers in [-1, K)."""
    if seq_targets is None:
        return None
    if k is None:
        raise DataError(f"{where}: seq_targets (a class per sequence) need class_names")
    y = np.asarray(seq_targets)
    if y.shape != (n,) or y.dtype.kind not in "iu":
        raise DataError(
            f"{where}: seq_targets must be {n} integers (a class per sequence), got dtype "
            f"{y.dtype} shape {y.shape}"
        )
    bad = (y < -1) | (y >= k)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{where}: seq_targets, {tag_text(tags, i)}: has target {y[i]}, outside [-1, {k})"
        )
    return y


def _validate_for_write(
    path: pathlib.Path,
    inputs: Any,
    targets: Any,
    seq_targets: Any,
    class_names: Any,
    target_names: Any,
    tags: Any,
    feature_names: Any,
    source: Any,
    mean: Any,
    std: Any,
    labels: Any = None,
) -> _CheckedSplit:
    where = f"write_dataset({path})"
    if targets is None and seq_targets is None:
        raise DataError(f"{where}: give targets (per frame) or seq_targets (per sequence)")
    names = None if class_names is None else _check_class_names(class_names, where)
    k = None if names is None else len(names)
    xs, ys, tag_list = _check_sequences(inputs, targets, tags, k, where)
    seq_y = _check_seq_targets(seq_targets, len(xs), k, tag_list, where)
    out_names = None
    if ys is not None and ys[0].ndim == 2:
        if target_names is not None:
            out_names = _as_str_list(target_names, "target_names", where)
            if len(out_names) != ys[0].shape[1]:
                raise DataError(
                    f"{where}: {len(out_names)} target_names for {ys[0].shape[1]} outputs"
                )
    elif target_names is not None:
        raise DataError(f"{where}: target_names name the outputs of float targets; none given")
    n_in = xs[0].shape[1]
    feats = None
    if feature_names is not None:
        feats = _as_str_list(feature_names, "feature_names", where)
        if len(feats) != n_in:
            raise DataError(f"{where}: {len(feats)} feature_names for {n_in} features")
    if source is not None and not isinstance(source, str):
        raise DataError(f"{where}: source must be a string, got {type(source).__name__}")
    stats = check_statistics({"mean": mean, "std": std}, n_in, lambda name: f"{where}: {name}")
    seqs = None
    if labels is not None:
        if k is None:
            raise DataError(f"{where}: labels (label sequences) need class_names")
        frames = np.array([x.shape[0] for x in xs], dtype=np.int64)
        seqs = check_labels_for_write(labels, frames, k, tag_list, where)
    return _CheckedSplit(xs, ys, seq_y, tag_list, names, out_names, feats, stats, n_in, seqs)


# ------------------------------------------------------------------ writing one split
def _chunk_shapes(
    chunks: bool | tuple[int, int] | None, compression: str | None, n_frames: int, n_in: int
) -> tuple[tuple[int, int] | None, tuple[int] | None]:
    """Chunk shapes of ``inputs`` and ``targets`` (None: contiguous); compression implies chunks."""
    if compression is not None and chunks is None:
        chunks = True
    if chunks is True:
        rows = max(1, min(n_frames, CHUNK_BYTES // (4 * n_in)))
        chunks = (rows, n_in)
    elif chunks is False:
        chunks = None
    if chunks is None:
        return None, None
    return chunks, (max(1, min(n_frames, chunks[0] * n_in)),)


def _write_frames(dx: Any, dy: Any, xs: list[np.ndarray], ys: list[np.ndarray] | None) -> None:
    """Fill ``inputs`` and ``targets`` in blocks of whole sequences (about ``BLOCK_BYTES`` each)."""
    max_frames = max(1, schema.BLOCK_BYTES // (4 * dx.shape[1]))
    start = 0
    i = 0
    while i < len(xs):
        j, frames = i, 0
        while j < len(xs) and (j == i or frames + xs[j].shape[0] <= max_frames):
            frames += xs[j].shape[0]
            j += 1
        dx[start : start + frames] = np.concatenate(xs[i:j], axis=0)
        if ys is not None:
            dy[start : start + frames] = np.concatenate(ys[i:j]).astype(dy.dtype)
        start += frames
        i = j


def _write_attrs(root: Any, v: _CheckedSplit, source: str | None) -> None:
    import h5py

    str_t = h5py.string_dtype("utf-8")
    root.attrs.create("format", FORMAT, dtype=str_t)
    root.attrs["format_version"] = np.int64(FORMAT_VERSION)
    for name, names in (("class_names", v.class_names), ("target_names", v.target_names)):
        if names is not None:
            root.attrs.create(name, np.array(names, dtype=object), dtype=str_t)
    if v.feature_names is not None:
        root.attrs.create("feature_names", np.array(v.feature_names, dtype=object), dtype=str_t)
    if source is not None:
        root.attrs.create("source", source, dtype=str_t)
    for name, a in v.stats.items():
        root.attrs[name] = a


def _write_split(
    root: Any,
    v: _CheckedSplit,
    source: str | None,
    chunks: bool | tuple[int, int] | None,
    compression: str | None,
    compression_opts: Any,
) -> None:
    import h5py

    lengths = np.array([x.shape[0] for x in v.xs], dtype=np.int64)
    n_frames = int(lengths.sum())
    xchunks, tchunks = _chunk_shapes(chunks, compression, n_frames, v.n_in)
    cdtype = np.int16 if v.class_names is None or len(v.class_names) < 32767 else np.int32
    packing = {"compression": compression, "compression_opts": compression_opts}
    dx = root.create_dataset(
        "inputs", shape=(n_frames, v.n_in), dtype=np.float32, chunks=xchunks, **packing
    )
    dy = None
    if v.ys is not None and v.ys[0].ndim == 2:
        k = v.ys[0].shape[1]
        vchunks = None if tchunks is None else (max(1, tchunks[0] // k), k)
        dy = root.create_dataset(
            "targets", shape=(n_frames, k), dtype=np.float32, chunks=vchunks, **packing
        )
    elif v.ys is not None:
        dy = root.create_dataset(
            "targets", shape=(n_frames,), dtype=cdtype, chunks=tchunks, **packing
        )
    _write_frames(dx, dy, v.xs, v.ys)
    if v.seq_targets is not None:
        root.create_dataset("seq_targets", data=v.seq_targets.astype(cdtype))
    root.create_dataset("seq_lengths", data=lengths)
    root.create_dataset(
        "seq_tags", data=np.array(v.tags, dtype=object), dtype=h5py.string_dtype("utf-8")
    )
    if v.labels is not None:
        write_label_sequences(root, v.labels, len(v.class_names))
    _write_attrs(root, v, source)


# ------------------------------------------------------------------ the file
def _check_destination(path: pathlib.Path, group: str | None, overwrite: bool) -> str | None:
    """The group key (None: the root); refuses a missing directory, a directory, an existing file."""
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
    if path.exists() and key is None and not overwrite:
        raise DataError(f"{path}: file exists (pass overwrite=True to replace it)")
    return key


def _split_root(f: Any, path: pathlib.Path, key: str | None, overwrite: bool) -> Any:
    """The group of the open file ``f`` to write the split into (a fresh one for ``key``)."""
    if key is None:
        return f
    if "inputs" in f or "format" in f.attrs:
        raise DataError(f"{path}: holds a split at its root; cannot add group {key!r}")
    if key in f:
        if not overwrite:
            raise DataError(f"{path}: group {key!r} exists (pass overwrite=True to replace it)")
        del f[key]
    return f.create_group(key)


def _open_temporary(tmp: pathlib.Path, path: pathlib.Path, key: str | None, exists: bool) -> Any:
    """The temporary file, opened for writing (a copy of ``path`` when adding a group).

    HDF5 writes through :func:`seqprop.checkpoint.h5_file`, so a full disk
    ends in one :class:`~seqprop.errors.OutputError` naming ``path``.
    """
    import h5py

    from seqprop.checkpoint import h5_file, output_error

    if key is not None and exists:
        if not h5py.is_hdf5(str(path)):
            raise DataError(f"{path}: exists and is not an HDF5 file; cannot add group {key!r}")
        try:
            shutil.copyfile(path, tmp)
        except OSError as exc:
            raise output_error(path, exc) from None
        mode = "r+"
    else:
        mode = "w"
    return h5_file(tmp, path, mode, libver=("v108", "latest"))


def _replace(tmp: pathlib.Path, path: pathlib.Path, exists: bool) -> None:
    """Sync ``tmp``, give it the destination's mode (or the umask's), move it onto ``path``."""
    from seqprop.checkpoint import output_error

    try:
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
    except OSError as exc:
        raise output_error(path, exc) from None
    umask = os.umask(0)
    os.umask(umask)
    if exists:
        shutil.copymode(path, tmp)
    else:
        os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


def write_dataset(
    path: str | os.PathLike,
    inputs: Sequence[np.ndarray],
    targets: Sequence[np.ndarray] | None = None,
    *,
    seq_targets: Sequence[int] | np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    target_names: Sequence[str] | None = None,
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
    labels: Sequence[np.ndarray] | None = None,
) -> pathlib.Path:
    """Write sequences to a ``seqprop.sequences`` HDF5 file (``docs/FORMAT.md``).

    Everything is validated before anything is written (with the rules
    :func:`~seqprop.data.open_dataset` applies). The file is written under a
    temporary name in the destination directory and moved into place with
    ``os.replace``, so the destination never holds a partial file and a
    failure leaves an existing file unchanged.

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
    targets : sequence of N arrays, optional
        Per-frame targets (``docs/FORMAT.md``): int arrays (T_i,) of class
        indices in [-1, K), -1 = unlabelled, stored as int16 when K < 32767,
        else int32 (the softmax head's); or float arrays (T_i, K), a row of
        NaN = frame not scored, stored as float32 (the logistic and
        squared_error heads').
    seq_targets : (N,) int array-like, optional
        A class per sequence in [-1, K) (the sequence head's), stored as
        ``seq_targets``. Give ``targets``, ``seq_targets`` or both.
    class_names : sequence of K distinct str
        Required with class targets (per frame or per sequence).
    target_names : sequence of K str, optional
        Names of the outputs of float targets.
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
    labels : sequence of N int arrays, each (U_i,), optional
        A label sequence per sequence (the ``ctc`` head's targets), values in
        [0, K), each short enough for its frames; written as ``labels`` and
        ``label_lengths`` (:mod:`seqprop.data.labels`).

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
    path = pathlib.Path(path)
    v = _validate_for_write(
        path,
        inputs,
        targets,
        seq_targets,
        class_names,
        target_names,
        tags,
        feature_names,
        source,
        mean,
        std,
        labels,
    )
    key = _check_destination(path, group, overwrite)
    exists = path.exists()
    parent = path.parent if str(path.parent) else pathlib.Path(".")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    os.close(fd)
    tmp = pathlib.Path(tmp_name)
    try:
        with _open_temporary(tmp, path, key, exists) as f:
            root = _split_root(f, path, key, overwrite)
            _write_split(root, v, source, chunks, compression, compression_opts)
        _replace(tmp, path, exists)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    logger.info("wrote %d sequences to %s%s", len(v.xs), path, f" group {key}" if key else "")
    return path
