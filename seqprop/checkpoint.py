"""Checkpoints and model files (HDF5), written atomically.

One file format serves two purposes, told apart by the ``content`` attribute:

* ``content = "model"``: a trained network ready for evaluation and
  prediction (``best.h5`` in a run directory): its parameters, the
  :func:`~seqprop.network.make_network` spec, class names, feature
  normalisation and target delay;
* ``content = "training"``: everything a run needs to continue exactly where
  it stopped (``checkpoint.h5``): the above plus the optimiser's name and
  state, the shuffling generator's state, the epoch and position within it,
  the epoch's sequence order, the running sums of the epoch, the history so
  far and the best weights with their score.

Layout (HDF5 root), ``format_version = 2``:

=========================  ==============================================
``attrs``                  ``format = "seqprop.checkpoint"``,
                           ``format_version = 2``, ``content``,
                           ``seqprop_version``, ``epoch``, ``delay``
                           (model files also ``score``: validation frame
                           error, NaN when unknown)
``parameters``             (P,) flat parameter vector (network dtype)
``spec``                   JSON string: ``make_network`` keyword arguments
``class_names``            (K,) UTF-8 strings
``norm_mean/norm_std``     (I,) float64, only when normalisation is used
``config``                 JSON string: the run configuration
training only:
``optimizer``              group: the optimiser's state
                           (:meth:`seqprop.optim.Optimizer.state_dict`);
                           attribute ``name`` (``train.optimizer``), each
                           number of the state an attribute (for SGD
                           ``learning_rate``, ``momentum``, ``n_steps``),
                           each array a dataset (for SGD ``velocity``, (P,)
                           in the network's dtype)
``best_parameters``        (P,) best-on-validation weights (if any epoch ended)
``order``                  (N_e,) int64: the current epoch's sequence order
``order_offsets``          (n_batches + 1,) int64: batch boundaries in ``order``
``state``                  JSON string: epoch, position, RNG state, epoch
                           sums, history, best score and epoch, epochs
                           without improvement, finished, stop reason
=========================  ==============================================

Version 1 (seqprop 0.1.0) differs only in where a training file keeps the
optimiser: the SGD velocity as a root dataset ``velocity`` and the name and
numbers (``name``, ``learning_rate``, ``momentum``, ``n_steps``) under
``"optimizer"`` in the ``state`` JSON. Both versions are read; files are
written as version 2.

Every file is written to a temporary name in the destination's directory,
flushed, fsync'ed and renamed over the destination (:func:`atomic_output`), so
a crash at any moment leaves either the previous file or the new one, never a
mixture.

HDF5 never sees a failed write: :func:`h5_file` hands HDF5 a Python file
that records the first write error (a full disk, a quota) instead of raising
it, and raises it as one :class:`~seqprop.errors.OutputError` naming the file
once HDF5 has closed. (HDF5 told of a failed write while closing leaves its
library state corrupt, and the process may crash later.) The same path serves
every HDF5 writer of seqprop: checkpoints and models here, predictions
(:func:`seqprop.evaluation.write_predictions`) and dataset files
(:func:`seqprop.data.write_dataset`); it streams, so a file of any size needs
no more memory than HDF5's own buffers.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import io
import json
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from seqprop.errors import CheckpointError, OutputError

__all__ = [
    "BEST_NAME",
    "CHECKPOINT_NAME",
    "FORMAT",
    "FORMAT_VERSION",
    "TMP_MARK",
    "ModelMeta",
    "StopReason",
    "TrainingState",
    "atomic_output",
    "find_model_file",
    "h5_file",
    "json_clean",
    "load_model",
    "load_training_state",
    "output_error",
    "remove_stale_temporaries",
    "save_model",
    "save_training_state",
    "write_text_atomic",
]

FORMAT = "seqprop.checkpoint"
FORMAT_VERSION = 2
"""Version of the layout this seqprop writes (see the module docstring)."""
READABLE_VERSIONS = (1, 2)
"""Versions this seqprop reads: 1 (seqprop 0.1.0) and 2."""
CHECKPOINT_NAME = "checkpoint.h5"
"""Name of the training checkpoint inside a run directory."""
BEST_NAME = "best.h5"
"""Name of the best-on-validation model inside a run directory."""
TMP_MARK = ".tmp-"


# ------------------------------------------------------------------ atomicity
def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def output_error(path: str | os.PathLike[str], exc: OSError) -> OutputError:
    """A one-line :class:`OutputError` naming ``path`` for a failed write ``exc``."""
    if isinstance(exc, OutputError):
        return exc
    if exc.errno == errno.ENOSPC:
        why = "no space left on device"
    elif exc.errno == errno.EDQUOT:
        why = "disk quota exceeded"
    else:
        why = (exc.strerror or str(exc) or type(exc).__name__).splitlines()[0]
    err = OutputError(f"{path}: cannot write: {why}")
    err.errno = exc.errno
    return err


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync and rename it to ``path``.

    If the body raises (or the process dies), ``path`` is untouched; the
    temporary file is removed on an exception (a killed process leaves it,
    :func:`remove_stale_temporaries` clears it later). A failed write, sync
    or rename (a full disk ...) raises :class:`OutputError` naming ``path``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}")
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OutputError:
        raise
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG):
            raise output_error(path, exc) from None
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


_PAGE = 1 << 16
_OVERLAY_PAGES = 4096  # 256 MiB of pages kept in memory after a failed write, at most


class _RecordingFile(io.RawIOBase):
    """A binary file for h5py's ``fileobj`` driver that records write errors instead of raising.

    After the first failed write, writes go to pages in memory that reads
    consult, so HDF5 reads back what it wrote (its metadata) and finishes
    and closes normally; :attr:`error` holds the failure. Once the pages
    reach 256 MiB, larger writes (raw data, which HDF5 does not read back)
    are dropped. Nothing after the failure reaches the disk.
    """

    def __init__(self, fh: Any) -> None:
        super().__init__()
        self._fh = fh
        self._pos = 0
        self.error: OSError | None = None
        self._pages: dict[int, bytearray] = {}

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, pos: int, whence: int = 0) -> int:
        if whence == 0:
            self._pos = pos
        elif whence == 1:
            self._pos += pos
        else:
            self._pos = os.fstat(self._fh.fileno()).st_size + pos
        return self._pos

    def tell(self) -> int:
        return self._pos

    def _disk(self, offset: int, n: int) -> bytes:
        try:
            data = os.pread(self._fh.fileno(), n, offset)
        except OSError:
            data = b""
        return data + bytes(n - len(data))

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        n = view.nbytes
        if not self._pages:
            data = os.pread(self._fh.fileno(), n, self._pos)
            view[: len(data)] = data
            self._pos += len(data)
            return len(data)
        done = 0
        while done < n:
            offset = self._pos + done
            page, at = divmod(offset, _PAGE)
            take = min(n - done, _PAGE - at)
            stored = self._pages.get(page)
            chunk = stored[at : at + take] if stored is not None else self._disk(offset, take)
            view[done : done + take] = chunk
            done += take
        self._pos += n
        return n

    def _keep(self, data: memoryview) -> None:
        """Write ``data`` at the position into the in-memory pages."""
        n = data.nbytes
        if len(self._pages) >= _OVERLAY_PAGES and n >= _PAGE:
            return
        done = 0
        while done < n:
            offset = self._pos + done
            page, at = divmod(offset, _PAGE)
            take = min(n - done, _PAGE - at)
            stored = self._pages.get(page)
            if stored is None:
                stored = self._pages[page] = bytearray(self._disk(page * _PAGE, _PAGE))
            stored[at : at + take] = data[done : done + take]
            done += take

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        n = view.nbytes
        if self.error is None:
            try:
                done = 0
                while done < n:  # a raw file may write fewer bytes than given
                    done += os.pwrite(self._fh.fileno(), view[done:], self._pos + done)
            except OSError as exc:
                self.error = exc
        if self.error is not None:
            self._keep(view)
        self._pos += n
        return n

    def truncate(self, size: int | None = None) -> int:
        size = self._pos if size is None else size
        if self.error is None:
            try:
                os.ftruncate(self._fh.fileno(), size)
            except OSError as exc:
                self.error = exc
        return size

    def flush(self) -> None:
        pass


@contextlib.contextmanager
def h5_file(
    tmp: str | os.PathLike[str], dest: str | os.PathLike[str], mode: str = "w", **kwargs: Any
) -> Iterator[Any]:
    """Open ``tmp`` as an HDF5 file to write (``mode`` ``"w"`` or ``"r+"``) that HDF5 writes
    through a :class:`_RecordingFile`.

    On leaving the block the file is closed; if any write failed (a full disk),
    :class:`OutputError` naming ``dest`` (the file the user asked for) is
    raised, also in place of an error the body raised meanwhile. ``kwargs``
    go to ``h5py.File``.
    """
    import h5py

    if mode not in ("w", "r+"):
        raise ValueError(f"mode must be 'w' or 'r+', got {mode!r}")
    try:
        fh = open(tmp, "w+b" if mode == "w" else "r+b", buffering=0)  # noqa: SIM115
    except OSError as exc:
        raise output_error(dest, exc) from None
    rec = _RecordingFile(fh)
    try:
        try:
            f = h5py.File(rec, mode, **kwargs)
        except (OSError, RuntimeError, ValueError) as exc:
            if rec.error is not None:
                raise output_error(dest, rec.error) from None
            raise OSError(f"{dest}: cannot open as HDF5 for writing ({exc})") from None
        try:
            with f:
                yield f
        except BaseException:
            if rec.error is not None:
                raise output_error(dest, rec.error) from None
            raise
        if rec.error is not None:
            raise output_error(dest, rec.error) from None
    finally:
        fh.close()


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_output`; returns the path."""
    path = Path(path)
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def json_clean(value: Any) -> Any:
    """A copy of ``value`` that strict JSON accepts.

    NaN and infinite floats become ``None``, numpy scalars and arrays Python
    numbers and lists, tuples lists, mapping keys strings.
    """
    if isinstance(value, Mapping):
        return {str(k): json_clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_clean(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def remove_stale_temporaries(directory: str | os.PathLike[str]) -> list[Path]:
    """Delete temporary files an interrupted :func:`atomic_output` left in ``directory``."""
    removed = []
    directory = Path(directory)
    if not directory.is_dir():
        return removed
    for p in directory.iterdir():
        if p.name.startswith(".") and TMP_MARK in p.name and p.is_file():
            with contextlib.suppress(OSError):
                p.unlink()
                removed.append(p)
    return removed


# ------------------------------------------------------------------ contents
@dataclass
class ModelMeta:
    """What a model file says about its network, besides the weights.

    Attributes
    ----------
    path : Path
        The file read.
    content : {"model", "training"}
    spec : dict
        ``make_network`` keyword arguments.
    class_names : list of str
        K class names, in output order.
    mean, std : (I,) float64 ndarray or None
        Feature normalisation applied to inputs before the network.
    delay : int
        Target delay in frames (outputs lag the targets by this much).
    config : dict or None
        The run configuration (nested dict) the model was trained with.
    epoch : int
        Epoch the weights come from (0 = before training).
    score : float or None
        Validation frame error of these weights, when known.
    """

    path: Path
    content: str
    spec: dict[str, Any]
    class_names: list[str]
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    delay: int = 0
    config: dict[str, Any] | None = None
    epoch: int = 0
    score: float | None = None

    @property
    def input_size(self) -> int:
        return int(self.spec["input_size"])

    @property
    def num_classes(self) -> int:
        return int(self.spec["num_classes"])


class StopReason(enum.StrEnum):
    """Why a run ended (:attr:`TrainingState.stop_reason`)."""

    EARLY_STOPPING = "early stopping"
    """No new best validation score in ``train.n_iter_no_change`` epochs."""
    MAX_EPOCHS = "max_epochs"
    """``train.max_epochs`` epochs done."""

    @classmethod
    def from_stored(cls, text: str) -> StopReason | None:
        """The reason a checkpoint stores ("" = none); seqprop 0.1.0 stored sentences."""
        for reason in cls:
            if text.startswith(reason.value):
                return reason
        return None


@dataclass
class TrainingState:
    """The complete state of a training run between two weight updates.

    Attributes
    ----------
    config : dict
        Resolved run configuration.
    spec : dict
        ``make_network`` keyword arguments (without ``random_state``).
    class_names : list of str
    mean, std : (I,) ndarray or None
        Normalisation computed on the training set.
    parameters : (P,) ndarray
        Current weights.
    optimizer_name : str
        The optimiser (a key of :data:`seqprop.optim.OPTIMIZERS`).
    optimizer_state : dict
        Its :meth:`~seqprop.optim.Optimizer.state_dict`: names to ndarrays
        and numbers (int, float or bool).
    rng_state : dict
        ``numpy.random.Generator.bit_generator.state`` of the shuffling
        generator, after the current epoch's order was drawn.
    epoch : int
        Completed epochs.
    position : int
        Batches of the current epoch already trained on (0 when no epoch is
        in progress).
    order, order_offsets : ndarray or None
        Current epoch's sequence order and batch boundaries (None between epochs).
    epoch_sums : dict
        Running sums of the epoch in progress (loss, frames, errors, seconds ...).
    history : list of dict
        One record per completed epoch (as in ``metrics.jsonl``).
    best_parameters : (P,) ndarray or None
    best_score : float
        Best validation frame error so far (inf before the first epoch ends).
    best_epoch : int
        Epoch of ``best_parameters`` (0 = none yet).
    n_no_change : int
        Epochs since the last improvement.
    finished : bool
        The run ended (``stop_reason`` says why).
    stop_reason : StopReason or None
    """

    config: dict[str, Any]
    spec: dict[str, Any]
    class_names: list[str]
    parameters: np.ndarray
    optimizer_name: str
    optimizer_state: dict[str, Any]
    rng_state: dict[str, Any]
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    epoch: int = 0
    position: int = 0
    order: np.ndarray | None = None
    order_offsets: np.ndarray | None = None
    epoch_sums: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    best_parameters: np.ndarray | None = None
    best_score: float = float("inf")
    best_epoch: int = 0
    n_no_change: int = 0
    finished: bool = False
    stop_reason: StopReason | None = None


# ------------------------------------------------------------------ writing
def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, allow_nan=True)


def _write_common(
    f: Any,
    *,
    content: str,
    parameters: np.ndarray,
    spec: dict[str, Any],
    class_names: list[str],
    mean: np.ndarray | None,
    std: np.ndarray | None,
    delay: int,
    config: dict[str, Any] | None,
    epoch: int,
) -> None:
    import h5py

    from seqprop import __version__

    f.attrs["format"] = FORMAT
    f.attrs["format_version"] = FORMAT_VERSION
    f.attrs["content"] = content
    f.attrs["seqprop_version"] = __version__
    f.attrs["epoch"] = int(epoch)
    f.attrs["delay"] = int(delay)
    f.create_dataset("parameters", data=np.ascontiguousarray(parameters))
    f.create_dataset("spec", data=_json(spec))
    f.create_dataset(
        "class_names",
        data=np.array([str(c) for c in class_names], dtype=object),
        dtype=h5py.string_dtype("utf-8"),
    )
    if mean is not None and std is not None:
        f.create_dataset("norm_mean", data=np.asarray(mean, dtype=np.float64))
        f.create_dataset("norm_std", data=np.asarray(std, dtype=np.float64))
    f.create_dataset("config", data=_json(config))


def save_model(
    path: str | os.PathLike[str],
    parameters: np.ndarray,
    *,
    spec: dict[str, Any],
    class_names: list[str],
    mean: np.ndarray | None = None,
    std: np.ndarray | None = None,
    delay: int = 0,
    config: dict[str, Any] | None = None,
    epoch: int = 0,
    score: float | None = None,
) -> Path:
    """Write a model file (``content = "model"``) atomically.

    Parameters
    ----------
    path : path
        Destination (overwritten atomically).
    parameters : (P,) ndarray
        Flat weights, as ``net.flat_parameters``.
    spec : dict
        ``net.spec`` (rebuilds the network).
    class_names : list of K str
    mean, std : (I,) ndarray, optional
        Normalisation to apply to inputs.
    delay : int
        Target delay in frames.
    config : dict, optional
        Training configuration, kept for reference.
    epoch : int
        Epoch the weights come from.
    score : float, optional
        Validation frame error of the weights.
    """

    path = Path(path)
    with atomic_output(path) as tmp, h5_file(tmp, path) as f:
        _write_common(
            f,
            content="model",
            parameters=parameters,
            spec=spec,
            class_names=class_names,
            mean=mean,
            std=std,
            delay=delay,
            config=config,
            epoch=epoch,
        )
        f.attrs["score"] = np.nan if score is None else float(score)
    return path


_OPTIMIZER_GROUP = "optimizer"
_OPTIMIZER_NAME_ATTR = "name"


def _is_state_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating, np.bool_))


def _check_optimizer_state(name: Any, state: Mapping[str, Any]) -> None:
    """ValueError unless ``state`` is a flat mapping of arrays and numbers the group can hold."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"optimizer name must be a non-empty string, got {name!r}")
    for key, value in state.items():
        if not isinstance(key, str) or not key or "/" in key or key == _OPTIMIZER_NAME_ATTR:
            raise ValueError(
                f"optimizer state key {key!r}: must be a non-empty string without '/', "
                f"other than {_OPTIMIZER_NAME_ATTR!r}"
            )
        if not (isinstance(value, np.ndarray) or _is_state_number(value)):
            raise ValueError(
                f"optimizer state {key!r}: must be a numpy array or a number, "
                f"got {type(value).__name__}"
            )


def _write_optimizer(f: Any, name: str, state: Mapping[str, Any]) -> None:
    """The ``optimizer`` group: name and numbers as attributes, arrays as datasets."""
    group = f.create_group(_OPTIMIZER_GROUP)
    group.attrs[_OPTIMIZER_NAME_ATTR] = name
    for key in sorted(state):
        value = state[key]
        if isinstance(value, np.ndarray):
            group.create_dataset(key, data=np.ascontiguousarray(value))
        else:
            group.attrs[key] = value


def save_training_state(path: str | os.PathLike[str], state: TrainingState) -> Path:
    """Write a training checkpoint (``content = "training"``) atomically."""
    path = Path(path)
    delay = int((state.config or {}).get("model", {}).get("delay", 0))
    scalars = {
        "epoch": int(state.epoch),
        "position": int(state.position),
        "rng_state": state.rng_state,
        "epoch_sums": state.epoch_sums,
        "history": state.history,
        "best_score": float(state.best_score),
        "best_epoch": int(state.best_epoch),
        "n_no_change": int(state.n_no_change),
        "finished": bool(state.finished),
        "stop_reason": "" if state.stop_reason is None else state.stop_reason.value,
    }
    _check_optimizer_state(state.optimizer_name, state.optimizer_state)
    with atomic_output(path) as tmp, h5_file(tmp, path) as f:
        _write_common(
            f,
            content="training",
            parameters=state.parameters,
            spec=state.spec,
            class_names=state.class_names,
            mean=state.mean,
            std=state.std,
            delay=delay,
            config=state.config,
            epoch=state.epoch,
        )
        _write_optimizer(f, state.optimizer_name, state.optimizer_state)
        if state.best_parameters is not None:
            f.create_dataset("best_parameters", data=np.ascontiguousarray(state.best_parameters))
        if state.order is not None:
            f.create_dataset("order", data=np.asarray(state.order, dtype=np.int64))
            f.create_dataset("order_offsets", data=np.asarray(state.order_offsets, dtype=np.int64))
        f.create_dataset("state", data=_json(scalars))
    return path


# ------------------------------------------------------------------ reading
def _open(path: Path) -> Any:
    import h5py

    if path.is_dir():
        raise CheckpointError(f"{path} is a directory, not a checkpoint file")
    if not path.exists():
        raise CheckpointError(f"{path}: no such file")
    try:
        f = h5py.File(path, "r")
    except BlockingIOError:
        raise CheckpointError(
            f"{path}: locked by another program that has it open for writing; wait until it "
            "has finished (HDF5 file locking)"
        ) from None
    except OSError as exc:
        raise CheckpointError(
            f"{path} is not a seqprop checkpoint (not a readable HDF5 file: {exc})"
        ) from None
    if f.attrs.get("format") != FORMAT:
        f.close()
        raise CheckpointError(
            f"{path} is not a seqprop checkpoint (HDF5 without format = {FORMAT!r}; "
            "a dataset file perhaps?)"
        )
    version = f.attrs.get("format_version")
    if isinstance(version, np.generic):
        version = version.item()
    if version not in READABLE_VERSIONS:
        f.close()
        raise CheckpointError(
            f"{path}: checkpoint format version {version!r} is not supported "
            f"(this seqprop reads versions {', '.join(map(str, READABLE_VERSIONS))})"
        )
    return f


def _read_json(f: Any, name: str, path: Path) -> Any:
    if name not in f:
        raise CheckpointError(f"{path}: checkpoint lacks {name!r}")
    raw = f[name][()]
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    try:
        return json.loads(raw)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: {name!r} is not valid JSON: {exc}") from None


def _read_array(f: Any, name: str, path: Path, required: bool = True) -> np.ndarray | None:
    if name not in f:
        if required:
            raise CheckpointError(f"{path}: checkpoint lacks the dataset {name!r}")
        return None
    return np.asarray(f[name][()])


def _read_common(f: Any, path: Path) -> dict[str, Any]:
    content = f.attrs.get("content")
    if isinstance(content, bytes):
        content = content.decode()
    if content not in ("model", "training"):
        raise CheckpointError(f"{path}: unknown checkpoint content {content!r}")
    spec = _read_json(f, "spec", path)
    if not isinstance(spec, dict) or "kind" not in spec:
        raise CheckpointError(f"{path}: 'spec' does not describe a network")
    names = _read_array(f, "class_names", path)
    class_names = [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names]
    return {
        "content": content,
        "parameters": _read_array(f, "parameters", path),
        "spec": spec,
        "class_names": class_names,
        "mean": _read_array(f, "norm_mean", path, required=False),
        "std": _read_array(f, "norm_std", path, required=False),
        "delay": int(f.attrs.get("delay", 0)),
        "config": _read_json(f, "config", path),
        "epoch": int(f.attrs.get("epoch", 0)),
    }


def _read_optimizer(f: Any, path: Path, state_json: Mapping[str, Any]) -> tuple[str, dict]:
    """The optimiser's name and state dict, from either layout (see the module docstring)."""
    import h5py

    if int(f.attrs["format_version"]) == 1:
        scalars = state_json.get("optimizer")
        if not isinstance(scalars, dict):
            raise CheckpointError(f"{path}: incomplete training state (no optimizer state)")
        scalars = dict(scalars)
        name = scalars.pop("name", "sgd")  # 0.1.0 had only SGD
        return str(name), {**scalars, "velocity": _read_array(f, "velocity", path)}
    group = f.get(_OPTIMIZER_GROUP)
    if not isinstance(group, h5py.Group):
        raise CheckpointError(f"{path}: checkpoint lacks the group {_OPTIMIZER_GROUP!r}")
    name = group.attrs.get(_OPTIMIZER_NAME_ATTR)
    if isinstance(name, bytes):
        name = name.decode("utf-8")
    if not isinstance(name, str) or not name:
        raise CheckpointError(f"{path}: the {_OPTIMIZER_GROUP!r} group does not name its optimizer")
    state: dict[str, Any] = {}
    for key, value in group.attrs.items():
        if key != _OPTIMIZER_NAME_ATTR:
            state[key] = value.item() if isinstance(value, np.generic) else value
    for key, item in group.items():
        if key in state or not isinstance(item, h5py.Dataset):
            raise CheckpointError(f"{path}: optimizer state {key!r} is not one array")
        state[key] = np.asarray(item[()])
    return name, state


def load_training_state(path: str | os.PathLike[str]) -> TrainingState:
    """Read a training checkpoint written by :func:`save_training_state`.

    Raises
    ------
    CheckpointError
        Missing file, not HDF5, not a seqprop checkpoint, or a model file
        (which holds no training state).
    """
    path = Path(path)
    try:
        return _load_training_state(path)
    except (OSError, KeyError, RuntimeError) as exc:
        raise CheckpointError(
            f"{path}: cannot read the checkpoint, truncated or corrupt? ({exc})"
        ) from None


def _load_training_state(path: Path) -> TrainingState:
    with _open(path) as f:
        common = _read_common(f, path)
        if common["content"] != "training":
            raise CheckpointError(
                f"{path} is a model file, not a training checkpoint (it cannot be resumed)"
            )
        s = _read_json(f, "state", path)
        if not isinstance(s, dict):
            raise CheckpointError(f"{path}: 'state' is not a JSON object")
        optimizer_name, optimizer_state = _read_optimizer(f, path, s)
        try:
            return TrainingState(
                config=common["config"],
                spec=common["spec"],
                class_names=common["class_names"],
                mean=common["mean"],
                std=common["std"],
                parameters=common["parameters"],
                optimizer_name=optimizer_name,
                optimizer_state=optimizer_state,
                rng_state=s["rng_state"],
                epoch=int(s["epoch"]),
                position=int(s["position"]),
                order=_read_array(f, "order", path, required=False),
                order_offsets=_read_array(f, "order_offsets", path, required=False),
                epoch_sums=s["epoch_sums"],
                history=s["history"],
                best_parameters=_read_array(f, "best_parameters", path, required=False),
                best_score=float(s["best_score"]),
                best_epoch=int(s["best_epoch"]),
                n_no_change=int(s["n_no_change"]),
                finished=bool(s["finished"]),
                stop_reason=StopReason.from_stored(str(s.get("stop_reason", ""))),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{path}: incomplete training state ({exc})") from None


def find_model_file(path: str | os.PathLike[str]) -> Path:
    """The model file for ``path``: itself if a file; in a run directory its ``best.h5``,
    else its ``checkpoint.h5``.

    Raises
    ------
    CheckpointError
        Nothing usable at ``path``.
    """
    path = Path(path)
    if path.is_dir():
        for name in (BEST_NAME, CHECKPOINT_NAME):
            if (path / name).is_file():
                return path / name
        raise CheckpointError(
            f"{path} is a directory without {BEST_NAME} or {CHECKPOINT_NAME}: not a run directory "
            "with a trained model"
        )
    if not path.exists():
        raise CheckpointError(f"{path}: no such file or directory")
    return path


def load_model(path: str | os.PathLike[str], *, which: str = "best") -> tuple[Any, ModelMeta]:
    """Rebuild a trained network from a model file, checkpoint or run directory.

    Parameters
    ----------
    path : path
        A model file, a training checkpoint, or a run directory (its
        ``best.h5``, else its ``checkpoint.h5``).
    which : {"best", "last"}
        For a training checkpoint: the best-on-validation weights (when an
        epoch has ended) or the current ones. Model files hold one set.

    Returns
    -------
    net : seqprop.network.Network
    meta : ModelMeta

    Raises
    ------
    CheckpointError
        One line naming the file: missing, not HDF5, not a seqprop
        checkpoint, or inconsistent with its own network spec.
    """
    if which not in ("best", "last"):
        raise ValueError(f"which must be 'best' or 'last', got {which!r}")
    path = find_model_file(path)
    try:
        return _load_model(path, which)
    except (OSError, KeyError, RuntimeError) as exc:
        raise CheckpointError(
            f"{path}: cannot read the model, truncated or corrupt? ({exc})"
        ) from None


def _load_model(path: Path, which: str) -> tuple[Any, ModelMeta]:
    from seqprop.network import make_network

    with _open(path) as f:
        common = _read_common(f, path)
        parameters = common["parameters"]
        score = f.attrs.get("score")
        epoch = common["epoch"]
        if common["content"] == "training":
            state = _read_json(f, "state", path)
            score = None
            if which == "best" and "best_parameters" in f:
                parameters = np.asarray(f["best_parameters"][()])
                epoch = int(state.get("best_epoch", epoch))
                score = state.get("best_score")
    spec = dict(common["spec"])
    try:
        net = make_network(**spec)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: cannot rebuild the network from its spec: {exc}") from None
    if parameters.shape != net.flat_parameters.shape:
        raise CheckpointError(
            f"{path}: holds {parameters.size} parameters, its network spec needs "
            f"{net.num_parameters}"
        )
    if len(common["class_names"]) != net.num_classes:
        raise CheckpointError(
            f"{path}: {len(common['class_names'])} class names for {net.num_classes} outputs"
        )
    net.flat_parameters[...] = parameters
    mean, std = common["mean"], common["std"]
    for name, arr in (("norm_mean", mean), ("norm_std", std)):
        if arr is not None and arr.shape != (net.input_size,):
            raise CheckpointError(
                f"{path}: {name} has shape {arr.shape}, the network has {net.input_size} inputs"
            )
    if score is not None:
        score = float(score)
        if np.isnan(score):
            score = None
    meta = ModelMeta(
        path=path,
        content=common["content"],
        spec=spec,
        class_names=common["class_names"],
        mean=mean,
        std=std,
        delay=common["delay"],
        config=common["config"],
        epoch=epoch,
        score=score,
    )
    return net, meta
