"""``seqprop prepare arrays``: NumPy arrays (``.npz``) into the HDF5 sequence format.

For data that is not a corpus with a recipe: a ``.npz`` file (``numpy.savez``)
holding the sequences and their targets becomes ``OUT_DIR/NAME.h5`` (and, with
``--validation FRACTION``, ``OUT_DIR/validation.h5`` holding a stratified
random part of the sequences). The README's section "Your own data" shows it.

Arrays of the ``.npz`` file (``N`` sequences, ``I`` features):

``inputs`` (required)
    an object array (or list) of ``N`` float arrays ``(T_i, I)``; or one float
    array ``(N, T, I)`` of sequences of equal length (with ``lengths`` (N,),
    the first ``lengths[i]`` frames of each);
``seq_targets``
    ``(N,)``, a class per sequence (integers in ``[-1, K)``, or strings:
    class names, numbered in sorted order), for the ``sequence`` head;
``targets``
    per frame: an object array of ``N`` arrays ``(T_i,)`` of integer classes
    (``softmax``) or ``(T_i, K)`` of floats (``logistic`` / ``squared_error``;
    a row of NaN = not scored); or one array ``(N, T)`` / ``(N, T, K)``;
``class_names``, ``target_names``, ``feature_names``, ``tags`` (optional)
    arrays of strings (``--class-names`` overrides ``class_names``).

Give ``seq_targets``, ``targets`` or both. Object arrays need
``allow_pickle``: only open files you trust.

The split is stratified by the sequence class when there is one: of each
class, ``round(FRACTION * n_class)`` sequences go to the validation set,
drawn with ``numpy.random.default_rng(SEED)``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from seqprop.corpora import registry

__all__ = ["ArraysCorpus", "load_arrays", "stratified_split"]


@registry.register
class ArraysCorpus(registry.Corpus):
    """``seqprop prepare arrays IN.npz OUT_DIR``: :func:`load_arrays` and a stratified split."""

    name = "arrays"
    summary = "NumPy .npz arrays (sequences + targets of any kind) into HDF5 datasets"
    description = """\
Turn a NumPy .npz file into seqprop's HDF5 format: 'inputs' (an object array of
(T_i, I) sequences, or (N, T, I) with optional 'lengths'), and 'seq_targets'
(N,) (a class per sequence: integers or strings) and/or 'targets' (per frame:
(T_i,) integer classes or (T_i, K) floats, NaN row = not scored). Optional:
'class_names', 'target_names', 'feature_names', 'tags'. Writes OUT_DIR/NAME.h5
and, with --validation, OUT_DIR/validation.h5 (stratified by sequence class)."""
    epilog = """\
examples:
  seqprop prepare arrays train.npz data/ --validation 0.2 --seed 0
  seqprop prepare arrays test.npz data/ --name test"""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("npz", metavar="IN.npz", help="the arrays (numpy.savez)")
        parser.add_argument("out_dir", metavar="OUT_DIR", help="output directory")
        parser.add_argument(
            "--name", default="train", help="name of the main output file, NAME.h5 (train)"
        )
        parser.add_argument(
            "--validation",
            type=float,
            default=0.0,
            metavar="FRACTION",
            help="hold out this fraction of the sequences as validation.h5 (stratified)",
        )
        parser.add_argument("--seed", type=int, default=0, help="seed of the split (0)")
        parser.add_argument(
            "--class-names",
            metavar="A,B,...",
            help="class names, comma separated (default: the file's, else 0, 1, ...)",
        )
        parser.add_argument("--overwrite", action="store_true", help="replace existing files")

    def prepare(self, args: argparse.Namespace, *, progress: bool = False) -> registry.Prepared:
        from seqprop.data import write_dataset
        from seqprop.errors import ConfigError

        if not 0.0 <= args.validation < 1.0:
            raise ConfigError(f"--validation must be in [0, 1), got {args.validation}")
        if args.seed < 0:
            raise ConfigError(f"--seed must be >= 0, got {args.seed}")
        names = None
        if args.class_names is not None:
            names = [n.strip() for n in args.class_names.split(",")]
        t0 = time.perf_counter()
        data = load_arrays(args.npz, class_names=names)
        out = Path(args.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        parts = {args.name: list(range(len(data["inputs"])))}
        if args.validation > 0:
            train, valid = stratified_split(
                len(data["inputs"]), args.validation, args.seed, data.get("seq_targets")
            )
            if not valid or not train:
                raise ConfigError(
                    f"--validation {args.validation} leaves "
                    f"{'no sequence for validation' if not valid else 'no training sequence'} "
                    f"of the {len(data['inputs'])}"
                )
            parts = {args.name: train, "validation": valid}
        files, n_seqs, n_frames = {}, {}, {}
        for split, idx in parts.items():
            path = out / f"{split}.h5"
            write_dataset(path, **_subset(data, idx), overwrite=args.overwrite)
            files[split] = path
            n_seqs[split] = len(idx)
            n_frames[split] = int(sum(len(data["inputs"][i]) for i in idx))
        return registry.Prepared(
            files=files,
            n_utterances=n_seqs,
            n_frames=n_frames,
            headline=f"converted {args.npz} in {time.perf_counter() - t0:.1f} s",
        )


def _subset(data: dict[str, Any], idx: list[int]) -> dict[str, Any]:
    """``write_dataset`` arguments for the sequences ``idx``."""
    import numpy as np

    out: dict[str, Any] = {"source": data["source"]}
    for key in ("inputs", "targets", "tags"):
        if data.get(key) is not None:
            out[key] = [data[key][i] for i in idx]
    if data.get("seq_targets") is not None:
        out["seq_targets"] = np.asarray(data["seq_targets"])[idx]
    for key in ("class_names", "target_names", "feature_names"):
        if data.get(key) is not None:
            out[key] = data[key]
    return out


def stratified_split(
    n: int, fraction: float, seed: int, classes: Any = None
) -> tuple[list[int], list[int]]:
    """Indices (kept, held out), each sorted: ``round(fraction * n_c)`` of each class ``c``
    held out (classes: (N,) ints, -1 = unlabelled counts as a class; None: all one class)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    labels = np.zeros(n, dtype=np.int64) if classes is None else np.asarray(classes)
    held: list[int] = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        k = int(round(fraction * members.size))
        held.extend(rng.permutation(members)[:k].tolist())
    held_set = set(held)
    return [i for i in range(n) if i not in held_set], sorted(held)


def _ragged(value: Any, lengths: Any, key: str, where: str) -> list:
    """A list of per-sequence arrays from an object array / list, or a dense (N, T, ...) array."""
    import numpy as np

    from seqprop.errors import DataError

    arr = value
    if isinstance(arr, np.ndarray) and arr.dtype != object:
        if arr.ndim < 2:
            raise DataError(
                f"{where}: '{key}' must be an object array of per-sequence arrays or a dense "
                f"(N, T, ...) array, got shape {arr.shape}"
            )
        if lengths is None:
            return list(arr)
        return [arr[i, : int(n)] for i, n in enumerate(lengths)]
    return [np.asarray(v) for v in arr]


def _strings(value: Any, key: str, where: str) -> list[str]:
    import numpy as np

    from seqprop.errors import DataError

    arr = np.asarray(value)
    if arr.ndim != 1 or arr.dtype.kind not in "USO":
        raise DataError(f"{where}: '{key}' must be a 1-D array of strings, got {arr.dtype}")
    return [str(v) for v in arr.tolist()]


def load_arrays(path: str | Path, *, class_names: list[str] | None = None) -> dict[str, Any]:
    """Read a ``.npz`` file into :func:`~seqprop.data.write_dataset` arguments (module doc).

    Raises
    ------
    DataError
        Missing file or array, wrong shapes or kinds, naming the file and array.
    """
    import numpy as np

    from seqprop.errors import DataError

    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        npz = np.load(path, allow_pickle=True)
        arrays = {k: npz[k] for k in npz.files}
    except Exception as exc:  # noqa: BLE001 - numpy raises many kinds for a bad file
        raise DataError(f"{path}: not a readable .npz file ({exc})") from None
    if "inputs" not in arrays:
        raise DataError(f"{where}: no array 'inputs' (the sequences); arrays: {sorted(arrays)}")
    if "seq_targets" not in arrays and "targets" not in arrays:
        raise DataError(
            f"{where}: no targets: give 'seq_targets' (a class per sequence) and/or "
            f"'targets' (per frame); arrays: {sorted(arrays)}"
        )
    lengths = arrays.get("lengths")
    inputs = _ragged(arrays["inputs"], lengths, "inputs", where)
    n = len(inputs)
    if lengths is not None and np.asarray(lengths).shape != (n,):
        raise DataError(f"{where}: 'lengths' must have shape ({n},)")
    out: dict[str, Any] = {"inputs": inputs, "source": f"seqprop prepare arrays {path.name}"}
    if "targets" in arrays:
        targets = _ragged(arrays["targets"], lengths, "targets", where)
        if len(targets) != n:
            raise DataError(f"{where}: 'targets' holds {len(targets)} sequences, 'inputs' {n}")
        out["targets"] = targets
    for key in ("class_names", "target_names", "feature_names", "tags"):
        if key in arrays:
            out[key] = _strings(arrays[key], key, where)
    if class_names is not None:
        out["class_names"] = class_names
    if "seq_targets" in arrays:
        seq = np.asarray(arrays["seq_targets"])
        if seq.shape != (n,):
            raise DataError(
                f"{where}: 'seq_targets' must have shape ({n},), one class per sequence, "
                f"got {seq.shape}"
            )
        if seq.dtype.kind in "USO":  # class names: numbered in sorted order
            names = sorted({str(v) for v in seq.tolist()})
            if out.get("class_names") is None:
                out["class_names"] = names
            index = {c: i for i, c in enumerate(out["class_names"])}
            missing = [str(v) for v in seq.tolist() if str(v) not in index]
            if missing:
                raise DataError(f"{where}: 'seq_targets' holds {missing[0]!r}, not a class name")
            seq = np.array([index[str(v)] for v in seq.tolist()], dtype=np.int64)
        elif seq.dtype.kind not in "iu":
            raise DataError(f"{where}: 'seq_targets' must be integers or strings, got {seq.dtype}")
        out["seq_targets"] = seq
    _default_class_names(out)
    return out


def _default_class_names(out: dict[str, Any]) -> None:
    """``0``, ``1``, ... up to the largest class, when class targets come without names."""
    import numpy as np

    if out.get("class_names") is not None:
        return
    largest = -1
    if out.get("seq_targets") is not None:
        largest = max(largest, int(np.max(out["seq_targets"])))
    targets = out.get("targets")
    if targets and np.asarray(targets[0]).dtype.kind in "iu":
        largest = max(largest, *(int(np.max(t, initial=-1)) for t in targets))
    if largest >= 0 or out.get("seq_targets") is not None:
        out["class_names"] = [str(k) for k in range(max(largest + 1, 1))]
