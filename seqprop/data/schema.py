"""The ``seqprop.sequences`` HDF5 layout: its constants and the checks a file must pass.

One split of a file is a group (or the root) holding ``inputs`` (N_frames, I)
float, ``targets`` (N_frames,) int, ``seq_lengths`` (N,) int and ``seq_tags``
(N,) str, with the attributes ``format``, ``format_version`` and
``class_names`` (optional: ``feature_names``, ``source``, ``mean``, ``std``);
``docs/FORMAT.md`` is the full description.

Each rule a file must follow is one function here, applied in a fixed order by
:func:`validate_split` (the structure: attributes, datasets, shapes, lengths)
and by :func:`seqprop.data.targets.check_target_values` / :func:`check_inputs_finite` (the values,
scanned block by block). Each raises :class:`~seqprop.errors.DataError` naming
the file, the dataset or attribute and, where there is one, the first
offending sequence (index and tag).
"""

from __future__ import annotations

import logging
import math
import pathlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from seqprop.data.normalise import check_statistics
from seqprop.data.targets import (
    LAYOUTS,
    TargetLayout,
    check_target_structure,
    detect_kind,
    target_layout,
)
from seqprop.errors import DataError
from seqprop.heads.base import TargetKind

logger = logging.getLogger("seqprop.data")

MATLAB_HINT = "from MATLAB: see docs/FORMAT.md section 6"

__all__ = [
    "BLOCK_BYTES",
    "CHUNK_BYTES",
    "CHUNK_CACHE_BYTES",
    "CHUNK_CACHE_SLOTS",
    "FORMAT",
    "FORMAT_VERSION",
    "REQUIRED_DATASETS",
    "Location",
    "SplitLayout",
    "block_rows",
    "check_inputs_finite",
    "decode_string",
    "decode_strings",
    "find_splits",
    "is_split",
    "tag_text",
    "validate_split",
]

FORMAT = "seqprop.sequences"
FORMAT_VERSION = 1

REQUIRED_DATASETS = ("inputs", "targets", "seq_lengths", "seq_tags")
"""The datasets of a file for the softmax head; other heads read other targets
(:data:`seqprop.data.targets.LAYOUTS`) in place of ``targets``."""
SEQUENCE_DATASETS = ("inputs", "seq_lengths", "seq_tags")
"""The datasets every split holds whatever its targets."""

#: Bytes read or written per block when scanning, streaming or writing whole arrays.
#: Read at call time (``schema.BLOCK_BYTES``), so a test may shrink it.
BLOCK_BYTES = 8 << 20
#: HDF5 raw-data chunk cache per open dataset (bytes, hash slots).
CHUNK_CACHE_BYTES = 64 << 20
CHUNK_CACHE_SLOTS = 100_003
#: Default chunk size (bytes) of ``inputs`` when written chunked.
CHUNK_BYTES = 1 << 20


# ------------------------------------------------------------------ small helpers
def decode_string(value: Any, where: str) -> str:
    """One string stored as str, bytes (utf-8) or a one-element array of either."""
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


def decode_strings(value: Any, where: str) -> list[str]:
    """Decode a 1-D array (or list) of strings stored in any of the accepted ways."""
    arr = value if isinstance(value, np.ndarray) else np.asarray(value, dtype=object)
    if arr.ndim != 1:
        raise DataError(f"{where} must be a 1-D array of strings, got shape {arr.shape}")
    if arr.dtype.kind not in "OSU":
        raise DataError(f"{where} must hold strings, got dtype {arr.dtype}")
    return [decode_string(v, f"{where}[{i}]") for i, v in enumerate(arr.tolist())]


def _scalar(value: Any, where: str) -> Any:
    """A scalar attribute, accepting one-element arrays (as MATLAB writes them)."""
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise DataError(f"{where}: expected a single value, got shape {value.shape}")
        return value.reshape(-1)[0]
    return value


def tag_text(tags: Sequence[str] | None, i: int) -> str:
    """``"sequence i (tag 't')"`` for error messages (without the tag when unknown)."""
    if tags is not None and 0 <= i < len(tags):
        return f"sequence {i} (tag {tags[i]!r})"
    return f"sequence {i}"


def block_rows(dset: Any, row_bytes: int) -> int:
    """Rows per block of about ``BLOCK_BYTES``, a multiple of the chunk rows if chunked."""
    rows = max(1, BLOCK_BYTES // max(1, row_bytes))
    chunks = getattr(dset, "chunks", None)
    if chunks:
        rows = max(chunks[0], (rows // chunks[0]) * chunks[0])
    return rows


@dataclass(frozen=True)
class Location:
    """Where a split lives, for the prefixes of error messages."""

    path: pathlib.Path
    group: str | None

    def dataset(self, name: str) -> str:
        """``"<path>: dataset '/<group>/<name>'"``."""
        prefix = "/" + self.group if self.group else ""
        return f"{self.path}: dataset '{prefix}/{name}'"

    def attr(self, name: str) -> str:
        """``"<path>: attribute '<name>' of '/<group>'"``."""
        prefix = "/" + self.group if self.group else ""
        return f"{self.path}: attribute '{name}' of '{prefix or '/'}'"


# ------------------------------------------------------------------ which group
def is_split(obj: Any) -> bool:
    """True for an HDF5 group holding a split (an ``inputs`` member or a ``format`` attribute)."""
    import h5py

    if not isinstance(obj, h5py.Group):
        return False
    return "inputs" in obj or "format" in obj.attrs


def find_splits(f: Any) -> list[str]:
    """Sorted paths of the groups below ``f`` that hold a split (the root itself excluded)."""
    found: list[str] = []

    def visit(name: str, obj: Any) -> None:
        if is_split(obj):
            found.append(name)

    f.visititems(visit)
    return sorted(found)


def locate_split(f: Any, path: pathlib.Path, group: str | None) -> tuple[Any, str | None]:
    """The split's group object and its name (None for the root).

    Without ``group``: the root when it holds a split, else the file's only
    split group.
    """
    import h5py

    if group is not None:
        key = group.strip("/")
        if not key or key not in f or not isinstance(f[key], h5py.Group):
            groups = find_splits(f)
            raise DataError(
                f"{path}: no group {group!r} in the file; splits: "
                + (", ".join(groups) if groups else "(one split at the root)")
            )
        return f[key], key
    if "inputs" in f or "format" in f.attrs:
        return f, None
    groups = find_splits(f)
    if len(groups) == 1:
        return f[groups[0]], groups[0]
    if groups:
        raise DataError(
            f"{path}: the file holds several splits; choose one (open_dataset(..., group=NAME)): "
            + ", ".join(groups)
        )
    raise DataError(
        f"{path}: not a seqprop sequence file (no 'inputs' dataset and no "
        f"'format' attribute at the root or in any group)"
    )


# ------------------------------------------------------------------ structure rules
def check_format_attrs(attrs: Any, loc: Location, class_valued: bool = True) -> list[str] | None:
    """``format``, ``format_version`` and ``class_names`` present and known; the class names.

    ``class_names`` is required for class-valued targets only (None when absent).
    """
    for name in ("format", "format_version", *(("class_names",) if class_valued else ())):
        if name not in attrs:
            raise DataError(f"{loc.attr(name)} is missing (required by {FORMAT})")
    fmt = decode_string(_scalar(attrs["format"], loc.attr("format")), loc.attr("format"))
    if fmt != FORMAT:
        raise DataError(f"{loc.attr('format')} is {fmt!r}, expected {FORMAT!r}")
    where = loc.attr("format_version")
    version = _scalar(attrs["format_version"], where)
    try:
        vnum = float(version)
    except (TypeError, ValueError):
        raise DataError(f"{where} must be an integer, got {version!r}") from None
    if not math.isfinite(vnum) or vnum != int(vnum):
        raise DataError(f"{where} must be an integer, got {version!r}")
    if int(vnum) != FORMAT_VERSION:
        raise DataError(f"{where} is {int(vnum)}; this seqprop reads version {FORMAT_VERSION} only")
    if "class_names" not in attrs:
        return None
    class_names = decode_strings(attrs["class_names"], loc.attr("class_names"))
    if not class_names:
        raise DataError(f"{loc.attr('class_names')} is empty (need at least one class)")
    seen: dict[str, int] = {}
    for k, name in enumerate(class_names):
        if name in seen:
            raise DataError(
                f"{loc.attr('class_names')}: {name!r} is class {seen[name]} and class {k}; "
                "class names must be distinct"
            )
        seen[name] = k
    return class_names


def required_datasets(root: Any, loc: Location, layout: TargetLayout) -> tuple[Any, Any, Any, Any]:
    """``inputs``, the targets ``layout`` names, ``seq_lengths``, ``seq_tags``: each present
    and an HDF5 dataset."""
    import h5py

    dsets = []
    for name in ("inputs", layout.dataset, "seq_lengths", "seq_tags"):
        if name == layout.dataset and name not in root:
            found = detect_kind(root)
            held = [] if found is None else [LAYOUTS[found].describe()]
            if found is not TargetKind.SEQUENCE_CLASS and "seq_targets" in root:
                held.append(LAYOUTS[TargetKind.SEQUENCE_CLASS].describe())
            raise DataError(
                f"{loc.dataset(name)} is missing: the {layout.kind.value} targets, "
                f"{layout.describe()}" + (f"; the file holds {', '.join(held)}" if held else "")
            )
        if name not in root:
            raise DataError(f"{loc.dataset(name)} is missing (required by {FORMAT})")
        obj = root[name]
        if not isinstance(obj, h5py.Dataset):
            raise DataError(f"{loc.dataset(name)} is not a dataset")
        dsets.append(obj)
    return tuple(dsets)


def check_shapes(inputs: Any, seq_lengths: Any, seq_tags: Any, loc: Location) -> tuple[int, int]:
    """Dtypes and shapes of inputs, lengths and tags agree; returns (N_frames, I)."""
    import h5py

    if inputs.dtype.kind != "f":
        raise DataError(
            f"{loc.dataset('inputs')} must be floating point (float32), got {inputs.dtype}"
        )
    if len(inputs.shape) != 2 or inputs.shape[1] < 1:
        raise DataError(
            f"{loc.dataset('inputs')} must have shape (N_frames, I), got {inputs.shape}"
        )
    n_frames, n_in = (int(s) for s in inputs.shape)
    where = loc.dataset("seq_lengths")
    if seq_lengths.dtype.kind not in "iuf":
        raise DataError(f"{where} must be integer (int64), got {seq_lengths.dtype}")
    shape = tuple(int(d) for d in seq_lengths.shape)
    if len(shape) == 2 and 1 in shape:
        logger.warning("%s has shape %s; read as 1-D", where, shape)
        shape = (max(shape),)
    if len(shape) != 1:
        raise DataError(f"{where} must be 1-D, got shape {seq_lengths.shape}")
    n_seqs = shape[0]
    if n_seqs == 0:
        raise DataError(f"{where} is empty: the split holds no sequences")
    where = loc.dataset("seq_tags")
    if seq_tags.shape != (n_seqs,):
        raise DataError(
            f"{where} must have shape ({n_seqs},) like seq_lengths, got {seq_tags.shape}"
        )
    if h5py.check_string_dtype(seq_tags.dtype) is None and seq_tags.dtype.kind not in "SO":
        raise DataError(f"{where} must hold strings, got dtype {seq_tags.dtype}")
    return n_frames, n_in


def whole_lengths(raw: np.ndarray, loc: Location) -> np.ndarray:
    """``seq_lengths`` as a 1-D int64 array; float values (MATLAB's ``double``) must be whole."""
    raw = np.asarray(raw).reshape(-1)
    if raw.dtype.kind != "f":
        return raw
    where = loc.dataset("seq_lengths")
    whole = np.isfinite(raw) & (raw == np.round(raw)) & (np.abs(raw) < 2.0**53)
    if not whole.all():
        i = int(np.flatnonzero(~whole)[0])
        raise DataError(
            f"{where}: sequence {i} has length {float(raw[i])!r}, not a whole number "
            f"({MATLAB_HINT}: write int64(L(:)))"
        )
    logger.warning("%s is %s; read as whole numbers (int64)", where, raw.dtype)
    return raw.astype(np.int64)


def check_lengths(
    lengths_raw: np.ndarray, n_frames: int, tags: list[str], loc: Location
) -> tuple[np.ndarray, np.ndarray]:
    """Every sequence has a frame and they tile ``inputs`` exactly; returns (lengths, offsets).

    ``lengths`` (N,) int64, ``offsets`` (N + 1,) int64 with ``offsets[-1] == n_frames``.
    """
    where = loc.dataset("seq_lengths")
    bad = np.flatnonzero(lengths_raw <= 0)
    if bad.size:
        i = int(bad[0])
        raise DataError(
            f"{where}: {tag_text(tags, i)} has length {lengths_raw[i]}; "
            "every sequence needs at least one frame"
        )
    too_long = np.flatnonzero(lengths_raw > n_frames)
    if too_long.size:
        i = int(too_long[0])
        raise DataError(
            f"{where}: {tag_text(tags, i)} has length {lengths_raw[i]}, "
            f"more than the {n_frames} frames in inputs"
        )
    lengths = lengths_raw.astype(np.int64)
    offsets = np.zeros(lengths.shape[0] + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    total = offsets[-1]
    if total > n_frames:
        i = int(np.flatnonzero(offsets[1:] > n_frames)[0])
        raise DataError(
            f"{where}: sum(seq_lengths) = {total} but inputs has {n_frames} frames; "
            f"{tag_text(tags, i)} ends at frame {offsets[i + 1]}, past the end"
        )
    if total < n_frames:
        raise DataError(
            f"{where}: sum(seq_lengths) = {total} but inputs has {n_frames} frames; "
            f"{n_frames - total} frames after the last sequence "
            f"({tag_text(tags, len(tags) - 1)}) belong to no sequence"
        )
    return lengths, offsets


def optional_attrs(
    attrs: Any, n_in: int, loc: Location
) -> tuple[list[str] | None, str | None, dict[str, np.ndarray]]:
    """``feature_names`` (one per feature), ``source``, and ``mean``/``std`` (valid statistics)."""
    feature_names = None
    if "feature_names" in attrs:
        feature_names = decode_strings(attrs["feature_names"], loc.attr("feature_names"))
        if len(feature_names) != n_in:
            raise DataError(
                f"{loc.attr('feature_names')} has {len(feature_names)} names but inputs "
                f"has {n_in} features"
            )
    source = None
    if "source" in attrs:
        where = loc.attr("source")
        source = decode_string(_scalar(attrs["source"], where), where)
    stats = check_statistics(
        {name: attrs[name] for name in ("mean", "std") if name in attrs}, n_in, loc.attr
    )
    return feature_names, source, stats


@dataclass
class SplitLayout:
    """What :func:`validate_split` learnt of a split whose structure is valid.

    ``inputs`` and ``targets`` are the (unread) h5py datasets (``targets`` the
    one :attr:`target` names: ``targets`` or ``seq_targets``).
    """

    location: Location
    target: TargetLayout
    inputs: Any
    targets: Any
    lengths: np.ndarray
    offsets: np.ndarray
    tags: list[str]
    class_names: list[str]
    feature_names: list[str] | None
    source: str | None
    mean: np.ndarray | None
    std: np.ndarray | None

    @property
    def n_frames(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def input_size(self) -> int:
        return int(self.inputs.shape[1])


def _output_names(attrs: Any, k: int, class_names: list[str] | None, loc: Location) -> list[str]:
    """Names of the K outputs of float targets: ``target_names``, else ``class_names``, else
    ``output0`` ... (a stored list must have K entries)."""
    for name, names in (("target_names", None), ("class_names", class_names)):
        if name not in attrs:
            continue
        if names is None:
            names = decode_strings(attrs[name], loc.attr(name))
        if len(names) != k:
            raise DataError(
                f"{loc.attr(name)} has {len(names)} names but dataset 'targets' has {k} columns"
            )
        return names
    return [f"output{i}" for i in range(k)]


def validate_split(
    f: Any, path: pathlib.Path, group: str | None, kind: TargetKind | None = None
) -> SplitLayout:
    """Find the split in the open file ``f`` and check its structure (not the big arrays' values).

    ``kind`` is the kind of targets to read (None: the one the file holds,
    :func:`~seqprop.data.targets.detect_kind`). The rules run in a fixed
    order (so a file breaking several always gets the same message): which
    group, format attributes, required datasets, dtypes and shapes, tags,
    sequence lengths, optional attributes.
    """
    root, group = locate_split(f, path, group)
    loc = Location(path, group)
    if kind is None or kind not in LAYOUTS:  # label sequences: read next to the file's targets
        kind = detect_kind(root) or TargetKind.FRAME_CLASS
    layout = target_layout(kind)
    class_names = check_format_attrs(root.attrs, loc, class_valued=False)
    inputs, targets, seq_lengths, seq_tags = required_datasets(root, loc, layout)
    n_frames, n_in = check_shapes(inputs, seq_lengths, seq_tags, loc)
    k = check_target_structure(
        layout, targets, n_frames, int(seq_lengths.shape[0]), loc.dataset(layout.dataset)
    )
    if layout.class_valued and class_names is None:
        raise DataError(f"{loc.attr('class_names')} is missing (required by {FORMAT})")
    if k is not None:
        class_names = _output_names(root.attrs, k, class_names, loc)
    tags = decode_strings(seq_tags[()], loc.dataset("seq_tags"))
    lengths, offsets = check_lengths(whole_lengths(seq_lengths[()], loc), n_frames, tags, loc)
    feature_names, source, stats = optional_attrs(root.attrs, n_in, loc)
    return SplitLayout(
        location=loc,
        target=layout,
        inputs=inputs,
        targets=targets,
        lengths=lengths,
        offsets=offsets,
        tags=tags,
        class_names=class_names,
        feature_names=feature_names,
        source=source,
        mean=stats.get("mean"),
        std=stats.get("std"),
    )


# ------------------------------------------------------------------ value rules
def _sequence_of(offsets: np.ndarray, frame: int) -> int:
    return int(np.searchsorted(offsets, frame, side="right")) - 1


def check_inputs_finite(
    blocks: Iterable[tuple[int, np.ndarray]],
    offsets: np.ndarray,
    tags: list[str],
    loc: Location,
) -> None:
    """Every input finite once read as float32; ``blocks`` yields (first frame, raw inputs block)."""
    for start, block in blocks:
        if block.dtype != np.float32:
            with np.errstate(over="ignore", invalid="ignore"):
                block = block.astype(np.float32)
        finite = np.isfinite(block)
        if not finite.all():
            r, c = (int(v) for v in np.argwhere(~finite)[0])
            frame = start + r
            i = _sequence_of(offsets, frame)
            what = "NaN" if np.isnan(block[r, c]) else "infinite (in float32)"
            raise DataError(
                f"{loc.dataset('inputs')}: {tag_text(tags, i)} frame {frame - offsets[i]} "
                f"(file frame {frame}) feature {c} is {what}"
            )
